"""Data placement: a rule names the devices that may receive a circuit, and nothing else
ever does: every submission is recorded by a wrapper device on a mixed fleet with a
device that loses its jobs (failover), one that never returns them (hedging), retries and
shot splitting, and no circuit carrying a restricted shard's features reaches a
disallowed device. A rule no device can satisfy is refused before anything is submitted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit

import multiqpu
from multiqpu import Placement, PlacementError
from multiqpu.delegating import DelegatingDevice
from multiqpu.device import Device, Job
from multiqpu.errors import ConfigError
from multiqpu.scheduler import JobRequest, run_sync
from multiqpu.testing.faults import FaultyDevice

PRIVATE = Placement(["local:*"], name="private")


class Recording(DelegatingDevice):
    """Records every circuit submitted to it, by name (the feature carriers are named)."""

    def __init__(self, inner: Device) -> None:
        super().__init__(inner)
        self.seen: list[str] = []

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        self.seen.extend(c.name for c in circuits)
        return await super()._submit(circuits, shots)


def mixed_fleet() -> list[Recording]:
    ideal = multiqpu.device("local:ideal")
    # the local devices are slower than the disallowed braket:sv (also ideal), so a
    # scheduler free to choose would send restricted work there
    return [
        Recording(FaultyDevice(ideal, name="ideal", delay_s=(0.1, 0.3), seed=3)),
        # loses every job after its second (its first is a probe, alone: the lane cap): the
        # work of the jobs in flight then fails over
        Recording(FaultyDevice(ideal, name="lossy", fail_after=2, fail_in_flight=True)),
        # transient submission errors: retries
        Recording(FaultyDevice(ideal, name="flaky", transient_failures=2, seed=1)),
        # slow: its jobs are stragglers for hedging
        Recording(FaultyDevice(ideal, name="slow", delay_s=(0.2, 0.6), seed=2)),
        Recording(multiqpu.device("ibm:fake_manila")),
        Recording(multiqpu.device("braket:sv")),
    ]


def encoded(features: np.ndarray, name: str) -> QuantumCircuit:
    """Angle encoding: the features are the gate angles."""
    qc = QuantumCircuit(len(features), name=name)
    for q, x in enumerate(features):
        qc.ry(float(x), q)
    for q in range(len(features) - 1):
        qc.cx(q, q + 1)
    qc.measure_all()
    return qc


def shard(n: int, seed: int, prefix: str) -> list[QuantumCircuit]:
    rng = np.random.default_rng(seed)
    return [encoded(rng.uniform(0, np.pi, 3), f"{prefix}-{i}") for i in range(n)]


def where(fleet: Sequence[Recording], prefix: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in fleet:
        n = sum(1 for name in d.seen if name.startswith(prefix))
        if n:
            out[d.spec] = n
    return out


def assert_only_allowed(fleet: Sequence[Recording], prefix: str, rule: Placement) -> None:
    seen = where(fleet, prefix)
    assert seen, "no circuit carrying the shard was recorded: the scan saw nothing"
    leaked = {spec: n for spec, n in seen.items() if not rule.allows(spec)}
    assert not leaked, f"restricted circuits reached disallowed devices: {leaked}"


def test_no_restricted_circuit_reaches_a_disallowed_device() -> None:
    fleet = mixed_fleet()
    private, public = shard(24, 0, "private"), shard(24, 1, "public")
    # interleaved, so that restricted circuits meet every device as it falls idle
    jobs: list[object] = []
    for p, q in zip(public, private, strict=True):
        jobs += [p, JobRequest(q, 256, placement=PRIVATE)]
    result = run_sync(fleet, jobs, shots=256, hedging=True, retries=5)
    assert len(result.results) == 48
    assert all(sum(r.counts.values()) == 256 for r in result.results)
    for r in result.results[1::2]:
        assert PRIVATE.allows(r.device)
    assert_only_allowed(fleet, "private", PRIVATE)
    # the public shard was free to go anywhere, and the run did use the wider fleet
    assert set(where(fleet, "public")) - {d.spec for d in fleet if PRIVATE.allows(d)}
    lossy = next(d.inner for d in fleet if d.name == "lossy")
    assert isinstance(lossy, FaultyDevice) and lossy.attempts >= 2  # it did lose its work
    report = result.report
    print(
        f"failovers {report.failovers}, retries {report.retries}, hedges {report.hedges}, "
        f"steals {report.steals}"
    )
    assert report.failovers > 0 and report.retries > 0


def test_sample_with_split_shots_stays_inside() -> None:
    # (split parts are pinned to their device, so the device that loses jobs is left out:
    # a lost pinned part fails the run whatever the placement)
    fleet = [d for d in mixed_fleet() if d.name != "lossy"]
    private = shard(4, 2, "private")
    result = multiqpu.Fleet(fleet).sample_sync(
        private, shots=40_000, placement=PRIVATE, split_shots=True, hedging=True
    )
    assert all(sum(r.counts.values()) == 40_000 for r in result.results)
    assert_only_allowed(fleet, "private", PRIVATE)
    assert len(where(fleet, "private")) >= 2  # the shots really were split (over local ones)


def test_estimate_with_split_shots_stays_inside() -> None:
    from qiskit.quantum_info import SparsePauliOp, Statevector

    fleet = mixed_fleet()
    circuit = encoded(np.array([0.3, 1.1, 2.0]), "private-est").remove_final_measurements(
        inplace=False
    )
    assert circuit is not None
    circuit.name = "private-est"
    obs = SparsePauliOp("ZZI")
    res = multiqpu._sync.run_sync(
        multiqpu.Fleet(fleet).estimate(
            circuit, obs, shots=20_000, placement=PRIVATE, split_shots=True, cut="never"
        )
    )
    exact = float(np.real(Statevector(circuit).expectation_value(obs)))
    value, se = float(np.ravel(res.values)[0]), float(np.ravel(res.std_errors)[0])
    assert abs(value - exact) < 5 * se + 1e-9
    # estimate's sub-experiments carry the circuit's features, renamed or not: every one counts
    used = {d.spec for d in fleet if d.seen}
    assert used and all(PRIVATE.allows(s) for s in used), used


def test_unsatisfiable_rules_are_refused_before_submission() -> None:
    fleet = mixed_fleet()
    with pytest.raises(PlacementError, match=r"placement 'aws-only'.*allows no device"):
        multiqpu.Fleet(fleet).sample_sync(
            shard(2, 3, "private"), placement=Placement(["aws:*"], name="aws-only")
        )
    wide = encoded(np.linspace(0.1, 1.0, 6), "private-wide")
    manila = Placement(["ibm:fake_manila"], name="manila")
    with pytest.raises(PlacementError, match=r"placement 'manila'.*circuit 1 .*6 qubits"):
        run_sync(fleet, [shard(1, 4, "public")[0], JobRequest(wide, 100, placement=manila)])
    with pytest.raises(PlacementError, match=r"placement 'none'.*circuit 0.*no device"):
        run_sync(fleet, [JobRequest(wide, 100, devices=["braket:sv"], placement=Placement(
            "local:*", name="none"))])  # fmt: skip
    assert all(not d.seen for d in fleet), "a refused run submitted something"


def test_glob_rules_match_specs_and_names() -> None:
    rule = Placement(["local:*", "ibm:fake_man*"])
    assert rule.allows("local:ideal") and rule.allows("ibm:fake_manila")
    assert not rule.allows("ibm:fake_kyiv") and not rule.allows("braket:sv")
    assert "local:*" in str(rule)
    with pytest.raises(ConfigError, match="non-empty list"):
        Placement([])


def test_named_rules_from_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from multiqpu.config import load_config
    from multiqpu.placement import load_placements

    cfg = tmp_path / "config.toml"
    cfg.write_text('[placement.private]\nallow = ["local:*"]\n')
    monkeypatch.setenv("MULTIQPU_CONFIG", str(cfg))
    assert load_placements() == {"private": Placement(["local:*"], name="private")}
    fleet = mixed_fleet()
    multiqpu.Fleet(fleet).sample_sync(shard(3, 5, "private"), shots=100, placement="private")
    assert_only_allowed(fleet, "private", PRIVATE)
    with pytest.raises(ConfigError, match=r"no \[placement.secret\] table.*private"):
        multiqpu.Fleet(fleet).sample_sync(shard(1, 6, "x"), placement="secret")
    cfg.write_text("[placement.private]\nallow = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert str(cfg) in str(err.value) and "placement.private.allow" in str(err.value)
    assert "non-empty list of device patterns" in str(err.value)
    cfg.write_text('[placement.private]\nallow = ["local:*"]\ndeny = ["ibm:*"]\n')
    with pytest.raises(ConfigError, match="unknown key 'deny'"):
        load_config(cfg)


def test_qnn_training_keeps_the_dataset_on_allowed_devices() -> None:
    from multiqpu.qnn import Trainer, variational_classifier

    # (the QNN executor does not retry injected submission errors: flaky and lossy stay out)
    fleet = [d for d in mixed_fleet() if d.name not in ("flaky", "lossy")]
    rng = np.random.default_rng(7)
    X = rng.uniform(0, np.pi, (8, 2))
    y = (X[:, 0] > X[:, 1]).astype(int)
    model = variational_classifier(2, 2, layers=1)
    trainer = Trainer(model, fleet, shots=64, batch_size=4, seed=0, placement=PRIVATE)
    trainer.fit(X, y, epochs=1)
    trainer.score(X[:4], y[:4])
    used = {d.spec for d in fleet if d.seen}
    assert used and all(PRIVATE.allows(s) for s in used), used  # every circuit holds features
    with pytest.raises(multiqpu.InvalidInputError, match="explicit executor"):
        Trainer(model, executor=trainer.executor, placement=PRIVATE)


def test_resume_keeps_the_rules_recorded_with_the_run(tmp_path: Path) -> None:
    from multiqpu.journal import Journal
    from multiqpu.placement import ALLOWED_KEY
    from multiqpu.scheduler import resume_sync

    private, public = shard(6, 8, "private"), shard(6, 9, "public")
    jobs = [JobRequest(c, 128, placement=PRIVATE) for c in private] + public
    # (the recorded run is replayed below with the public circuits first)
    with Journal(tmp_path / "journal.sqlite") as journal:
        first = run_sync(mixed_fleet(), jobs, shots=128, journal=journal)
        options = dict(journal.run_info(first.report.run_id).options)
        allowed = options[ALLOWED_KEY]
        assert all(a is not None and all(PRIVATE.allows(s) for s in a) for a in allowed[:6])
        assert allowed[6:] == [None] * 6
        # the same circuits, recorded but interrupted before any job (public ones first, so
        # the restricted ones meet idle disallowed devices): resume runs them all
        options[ALLOWED_KEY] = allowed[6:] + allowed[:6]
        journal.start_run(
            "interrupted", circuits=public + private, shots=[128] * 12, options=options
        )
        fleet = mixed_fleet()
        again = resume_sync(fleet, "interrupted", journal=journal)
    assert len(again.results) == 12
    assert_only_allowed(fleet, "private", PRIVATE)


def test_plan_is_made_on_the_allowed_devices() -> None:
    from qiskit.quantum_info import SparsePauliOp

    fleet = mixed_fleet()
    circuit = encoded(np.array([0.3, 1.1, 2.0]), "private-plan").remove_final_measurements(
        inplace=False
    )
    assert circuit is not None
    the_plan = multiqpu.Fleet(fleet).plan(circuit, SparsePauliOp("ZZI"), placement=PRIVATE)
    assert the_plan.devices and all(PRIVATE.allows(s) for s in the_plan.devices)
    assert all(not d.seen for d in fleet)  # a plan submits nothing


def test_distribution_runs_on_the_allowed_devices() -> None:
    from multiqpu._sync import run_sync as in_thread
    from multiqpu.pipeline import distribution

    fleet = mixed_fleet()
    circuit = encoded(np.array([0.4, 1.3]), "private-dist")
    res = in_thread(distribution(fleet, circuit, shots=4000, placement=PRIVATE, cut="never"))
    from qiskit.quantum_info import Statevector

    exact = Statevector(circuit.remove_final_measurements(inplace=False)).probabilities()
    assert np.all(np.abs(res.probabilities - exact) <= 5 * res.std_errors + 1e-9)
    used = {d.spec for d in fleet if d.seen}  # sub-experiments are renamed: every one counts
    assert used and all(PRIVATE.allows(s) for s in used), used
