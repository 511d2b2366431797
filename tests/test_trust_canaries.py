"""Canary circuits, the sequential test and quarantine (multiqpu.trust), with real devices:
local ideal simulators, IBM fake backends (calibrated noise) and FaultyDevice corruption.

Reduced versions of the benchmark keys of tests/benchmarks/trust.py: detection of a device
flipping 5 % of bits, no false flags on honest noisy devices, the canary shot overhead, and a
cut estimate with one corrupting device that stays within 4 standard errors of exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu
from multiqpu._canary import canary_failures, make_canary, predicted_fidelity
from multiqpu._sync import run_sync
from multiqpu.errors import InvalidInputError, UntrustedDeviceError
from multiqpu.journal import Journal
from multiqpu.testing.faults import BitFlips, Drift, FaultyDevice, UniformCounts
from multiqpu.trust import CanaryTest, Trust, consistency

SHOTS = 500


def tagged(k: int, width: int = 3) -> QuantumCircuit:
    """A circuit whose ideal output is the basis state ``k`` (mod 2**width)."""
    qc = QuantumCircuit(width)
    for q in range(width):
        if (k >> q) & 1:
            qc.x(q)
    qc.measure_all()
    return qc


def fleet_with(liar: multiqpu.Device | None, n_honest: int = 2) -> multiqpu.Fleet:
    honest = [
        multiqpu.device("local:ideal", num_qubits=4, seed=10 + i, label=f"ideal{i}")
        for i in range(n_honest)
    ]
    return multiqpu.Fleet(honest + ([liar] if liar is not None else []))


def liar_device(corrupt: object = None, seed: int = 3) -> FaultyDevice:
    inner = multiqpu.device("local:ideal", num_qubits=4, seed=7, label="inner")
    return FaultyDevice(inner, name="liar", corrupt=corrupt or BitFlips(0.05), seed=seed)


# ------------------------------------------------------------------------- the parts
def test_a_canary_mirrors_to_its_expected_bitstring() -> None:
    rng = np.random.default_rng(1)
    for width, layers in ((1, 1), (3, 2), (5, 4)):
        canary = make_canary(width, layers, rng)
        body = canary.circuit.remove_final_measurements(inplace=False)
        probs = Statevector(body).probabilities_dict()
        assert probs[canary.expected] == pytest.approx(1.0)
        assert canary.circuit.num_nonlocal_gates() >= 2 * (layers if width > 1 else 0)


def test_calibration_predicts_a_noisy_backend_canary() -> None:
    """The honest failure rate of a fake backend stays under the test's prediction q0."""
    device = multiqpu.device("ibm:fake_torino", seed=2)
    trust = Trust()
    canary = make_canary(4, 2, np.random.default_rng(3))
    fidelity = predicted_fidelity(device, canary.circuit)
    assert 0.5 < fidelity < 1.0
    result = run_sync(device.run([canary.circuit], 4000))
    failures, shots = canary_failures(result[0].counts, canary.expected)
    assert failures / shots < trust.predicted_failure(fidelity)


def test_sequential_test_false_flags_and_detection() -> None:
    """Honest streams at the predicted rate are (almost) never flagged; streams with 5 %
    bit flips on 4 bits are flagged within a few hundred shots."""
    rng = np.random.default_rng(4)
    q0, width = 0.06, 4
    false_flags = 0
    for _ in range(300):
        test = CanaryTest(alpha=1e-3)
        for _ in range(40):
            test.update(int(rng.binomial(50, q0 / 1.5)), 50, q0 * 1.0, width)
        false_flags += test.flagged
    assert false_flags <= 3
    q_bad = 1 - (1 - q0 / 1.5) * 0.95**width
    detected = []
    for _ in range(100):
        test = CanaryTest(alpha=1e-3)
        while not test.flagged and test.shots < 5000:
            test.update(int(rng.binomial(10, q_bad)), 10, q0, width)
        detected.append(test.flagged_at_shots)
    assert None not in detected
    assert float(np.median(detected)) <= 200


async def test_drift_that_starts_mid_run_is_caught_after_it_starts() -> None:
    """Honest for 10 jobs, then bit flips growing 1 % per job: the floored statistic flags the
    device soon after the drift starts, not before."""
    trust = Trust()
    inner = multiqpu.device("local:ideal", num_qubits=4, seed=6, label="drifting")
    device = FaultyDevice(inner, corrupt=Drift(start_after_jobs=10, p_per_job=0.01), seed=2)
    rng = np.random.default_rng(7)
    test = CanaryTest(alpha=trust.alpha, min_flip=trust.min_flip)
    for _ in range(40):
        canary = make_canary(3, 2, rng)
        result = await device.run([canary.circuit], 100)
        q0 = trust.predicted_failure(predicted_fidelity(inner, canary.circuit))
        test.update(*canary_failures(result[0].counts, canary.expected), q0, canary.width)
        if test.flagged:
            break
    assert test.flagged_at_shots is not None
    assert 1000 < test.flagged_at_shots <= 1000 + 800
    assert test.floor_hits > 0


def test_consistency_allows_noise_but_not_corruption() -> None:
    a = {"00": 480, "11": 520}
    assert consistency(a, {"00": 510, "11": 490}).consistent
    noisy = {"00": 380, "11": 400, "01": 110, "10": 110}  # 22 % of shots off the ideal
    assert not consistency(a, noisy).consistent
    assert consistency(a, noisy, fidelity_a=0.99, fidelity_b=0.8).consistent
    assert not consistency(a, {"01": 500, "10": 500}, fidelity_b=0.9).consistent


def test_bad_trust_options_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="mode"):
        Trust(mode="ignore")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="canary_rate"):
        Trust(canary_rate=0.9)
    with pytest.raises(InvalidInputError, match="trust"):
        run_sync(fleet_with(None).sample([tagged(1)], shots=10, trust="yes"))


# ------------------------------------------------------------------------- through the scheduler
async def test_quarantine_moves_a_corrupting_devices_work_and_records_it(tmp_path) -> None:
    liar = liar_device()
    fleet = fleet_with(liar)
    circuits = [tagged(k) for k in range(120)]
    journal = Journal(tmp_path / "j.sqlite")
    res = await fleet.sample(circuits, shots=SHOTS, trust=Trust(), journal=journal)
    trust = res.report.trust
    assert trust is not None and trust.flagged == (liar.spec,)
    verdict = next(v for v in trust.verdicts if v.device == liar.spec)
    assert "canary shots missed their ideal outcome" in (verdict.reason or "")
    assert liar.spec in res.report.dropped_devices or all(r.device != liar.spec for r in res)
    # every circuit's result is exact (ideal devices) and none is the liar's
    for k, r in enumerate(res):
        assert r.device != liar.spec
        assert dict(r.result.counts) == {format(k % 8, "03b"): SHOTS}
    # what the liar returned before it was caught ran again elsewhere, and the journal says so
    assert verdict.rerun, "the liar's first job carried user circuits"
    jobs = journal.jobs(res.run_id)
    quarantined = [j for j in jobs if j.state == "quarantined"]
    assert quarantined and all(j.device == liar.spec for j in quarantined)
    assert all("canary" in (j.error or "") for j in quarantined)
    done = journal.done_results(res.run_id)
    assert all(done[i][0] != liar.spec for i in verdict.rerun)
    assert trust.overhead <= 0.04 + 1e-9
    # the next run on this fleet gives the flagged device nothing
    again = await fleet.sample(circuits[:30], shots=SHOTS, trust=Trust(), journal=False)
    assert all(r.device != liar.spec for r in again)


async def test_fail_mode_stops_the_run() -> None:
    fleet = fleet_with(liar_device(UniformCounts()))
    with pytest.raises(UntrustedDeviceError, match="liar"):
        await fleet.sample(
            [tagged(k) for k in range(120)], shots=SHOTS, trust=Trust(mode="fail"), journal=False
        )


async def test_flag_mode_reports_but_keeps_results() -> None:
    liar = liar_device()
    fleet = fleet_with(liar)
    res = await fleet.sample(
        [tagged(k) for k in range(120)], shots=SHOTS, trust=Trust(mode="flag"), journal=False
    )
    assert res.report.trust is not None and res.report.trust.flagged == (liar.spec,)
    assert res.report.trust.verdicts[-1].rerun == ()


async def test_honest_noisy_backends_pass() -> None:
    fleet = multiqpu.Fleet(
        [
            multiqpu.device("ibm:fake_torino", seed=1),
            multiqpu.device("ibm:fake_sherbrooke", seed=2),
            multiqpu.device("ibm:fake_kyiv", seed=3),
        ]
    )
    rng = np.random.default_rng(5)
    circuits = []
    for _ in range(60):
        qc = QuantumCircuit(3)
        for q in range(3):
            qc.ry(float(rng.uniform(0, math.pi)), q)
        qc.cx(0, 1)
        qc.cx(1, 2)
        qc.measure_all()
        circuits.append(qc)
    res = await fleet.sample(circuits, shots=1000, trust=Trust(canary_rate=0.05), journal=False)
    trust = res.report.trust
    assert trust is not None and trust.flagged == ()
    assert sum(v.canaries for v in trust.verdicts) >= 1
    assert 0 < trust.overhead <= 0.05


async def test_cut_estimate_with_a_corrupting_device_stays_within_4_sigma() -> None:
    """One device of four flips 5 % of bits; with trust the cut estimate stays within 4
    standard errors of the exact value."""
    liar = FaultyDevice(
        multiqpu.device("local:ideal", num_qubits=3, seed=9, label="inner3"),
        name="liar",
        corrupt=BitFlips(0.05),
        seed=4,
    )
    honest = [
        multiqpu.device("local:ideal", num_qubits=3, seed=20 + i, label=f"small{i}")
        for i in range(3)
    ]
    fleet = multiqpu.Fleet([*honest, liar])
    qc = QuantumCircuit(5)
    for q in range(5):
        qc.ry(0.3 + 0.2 * q, q)
    for q in range(4):
        qc.cx(q, q + 1)
    obs = SparsePauliOp("ZZZZZ")
    exact = float(Statevector(qc).expectation_value(obs).real)
    out = await fleet.estimate(qc, obs, shots=200_000, trust=Trust(), seed=1)
    value, se = float(out.values[0]), float(out.std_errors[0])
    assert abs(value - exact) <= 4 * se
    reports = out.report.scheduler_reports
    assert any(r.trust is not None and liar.spec in r.trust.flagged for r in reports)


async def test_a_run_recorded_with_trust_resumes(tmp_path) -> None:
    """The trust option is recorded with the run and read back on resume (which runs no
    canaries: the report of a resumed run has no trust section)."""
    fleet = fleet_with(None)
    journal = Journal(tmp_path / "j.sqlite")
    first = await fleet.sample([tagged(k) for k in range(60)], shots=SHOTS, trust=True,
                               journal=journal)  # fmt: skip
    assert first.report.trust is not None and first.report.trust.canary_shots > 0
    again = await fleet.resume(first.run_id, journal=journal)
    assert [dict(r.result.counts) for r in again] == [dict(r.result.counts) for r in first]
    assert again.report.trust is None
