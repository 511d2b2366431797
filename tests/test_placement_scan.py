"""Issue 11's placement acceptance: a test that scans EVERY submission and proves that no
circuit carrying a restricted shard's features reaches a disallowed device, across every
entry point that submits circuits: ``sample`` and ``estimate`` (with and without cutting),
mitigation (readout calibration circuits, ZNE folds, twirls), the Qiskit primitives, the
PennyLane device, and QNN training with per-sample (per-shard) rules.

How a circuit "carries" a shard: features are angle-encoded (``ry(x)``), so a circuit
carries feature ``x`` when one of its gate angles is ``+-x`` modulo ``pi/2`` (folds invert
gates, transpilers add multiples of ``pi/2``). Every feature is a distinct random number,
so a match by chance is out of reach. The scan is never vacuous: each test also checks
that the restricted features ARE seen on the allowed devices, and that the disallowed
devices do receive (and the scan does see) the public shard's features, so the fleet would
have used them had the rule not held them back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu
from multiqpu import Placement, PlacementError
from multiqpu._sync import run_sync
from multiqpu.delegating import DelegatingDevice
from multiqpu.device import Device, Job
from multiqpu.testing.faults import FaultyDevice

PRIVATE = Placement(["local:*"], name="private")


class Recording(DelegatingDevice):
    """Keeps every circuit submitted to it (the scan's input)."""

    def __init__(self, inner: Device) -> None:
        super().__init__(inner)
        self.seen: list[QuantumCircuit] = []

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        self.seen.extend(circuits)
        return await super()._submit(circuits, shots)


def fleet() -> list[Recording]:
    """Allowed: two slow local devices (one noisy: mitigation has something to correct);
    disallowed and faster: an ideal Braket simulator and an IBM fake backend."""
    ideal = multiqpu.device("local:ideal")
    return [
        Recording(FaultyDevice(ideal, name="ideal", delay_s=(0.05, 0.15), seed=3)),
        Recording(multiqpu.device("local:noisy", num_qubits=5, readout_error=0.03, seed=1)),
        Recording(multiqpu.device("braket:sv")),
        Recording(multiqpu.device("ibm:fake_manila")),
    ]


def angles(circuit: QuantumCircuit) -> Iterable[float]:
    for inst in circuit.data:
        for p in inst.operation.params:
            try:
                yield float(p)
            except (TypeError, ValueError):
                continue
        block = getattr(inst.operation, "blocks", ())
        for b in block:
            yield from angles(b)


def carries(circuit: QuantumCircuit, features: np.ndarray) -> bool:
    q = math.pi / 2
    for a in angles(circuit):
        for s in (a, -a):
            r = np.abs(((s - features) + q / 2) % q - q / 2)
            if np.any(r < 1e-7):
                return True
    return False


def scan(devices: Sequence[Recording], features: np.ndarray) -> dict[str, int]:
    """Per device spec, how many submitted circuits carry any of ``features``."""
    out: dict[str, int] = {}
    for d in devices:
        n = sum(carries(c, features) for c in d.seen)
        if n:
            out[d.spec] = n
    return out


def check(
    devices: Sequence[Recording],
    private: np.ndarray,
    public: np.ndarray | None,
    rule: Placement = PRIVATE,
) -> None:
    seen = scan(devices, private)
    assert seen, "the scan saw no restricted circuit at all"
    leaked = {s: n for s, n in seen.items() if not rule.allows(s)}
    assert not leaked, f"restricted features reached disallowed devices: {leaked}"
    if public is not None:  # the disallowed devices were used, and the scan sees there
        assert set(scan(devices, public)) - {d.spec for d in devices if rule.allows(d)}


def features(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 2.9, n)


def encoded(x: np.ndarray, measure: bool = True) -> QuantumCircuit:
    qc = QuantumCircuit(len(x))
    for q, v in enumerate(x):
        qc.ry(float(v), q)
    for q in range(len(x) - 1):
        qc.cx(q, q + 1)
    if measure:
        qc.measure_all()
    return qc


def test_the_detector_finds_features_after_folding_and_transpiling() -> None:
    x = features(0, 3)
    qc = encoded(x)
    manila = multiqpu.device("ibm:fake_manila")
    assert carries(qc, x) and carries(manila.transpile(qc), x)
    assert carries(encoded(x, measure=False).inverse(), x)
    assert not carries(qc, features(1, 3))


def test_sample_and_estimate_with_cutting() -> None:
    devices = fleet()
    priv, pub = features(10, 12).reshape(4, 3), features(11, 12).reshape(4, 3)
    f = multiqpu.Fleet(devices)
    f.sample_sync([encoded(x) for x in pub], shots=200)
    f.sample_sync([encoded(x) for x in priv], shots=200, placement=PRIVATE)
    wide = encoded(features(12, 4), measure=False)
    res = run_sync(f.estimate(wide, SparsePauliOp("ZZZZ"), shots=8000, cut="always",
                              max_fragment_qubits=2, placement=PRIVATE))  # fmt: skip
    exact = float(np.real(Statevector(wide).expectation_value(SparsePauliOp("ZZZZ"))))
    assert abs(float(np.ravel(res.values)[0]) - exact) <= 5 * float(np.ravel(res.std_errors)[0])
    check(devices, np.concatenate([priv.ravel(), features(12, 4)]), pub.ravel())


def test_mitigation_calibration_and_folded_circuits() -> None:
    # the rule allows the noisy local device only: the ideal one would need no mitigation
    noisy = Placement(["local:noisy"], name="noisy")
    devices = fleet()
    priv, pub = features(20, 6).reshape(2, 3), features(21, 24).reshape(8, 3)
    multiqpu.Fleet(devices).sample_sync([encoded(x) for x in pub], shots=300)
    outside = [d for d in devices if not noisy.allows(d)]
    before = [len(d.seen) for d in outside]
    f = multiqpu.Fleet(devices)
    mitigation = [multiqpu.Readout(cache=False), multiqpu.ZNE()]
    run_sync(f.sample([encoded(x) for x in priv], shots=300, mitigation=mitigation,
                      placement=noisy))  # fmt: skip
    circuit = encoded(features(22, 3), measure=False)
    run_sync(f.estimate(circuit, SparsePauliOp("ZZI"), shots=4000, mitigation=mitigation,
                        placement=noisy, cut="never"))  # fmt: skip
    # readout calibration circuits carry no features; they too stayed on allowed devices
    assert [len(d.seen) for d in outside] == before
    seen = [c for d in devices if noisy.allows(d) for c in d.seen]
    everything = np.concatenate([priv.ravel(), pub.ravel(), features(22, 3)])
    assert any(not carries(c, everything) for c in seen)  # calibration circuits were sent
    base = encoded(priv[0]).size()
    assert any(carries(c, priv.ravel()) and c.size() > base for c in seen)  # and ZNE folds
    check(devices, np.concatenate([priv.ravel(), features(22, 3)]), pub.ravel(), noisy)


def test_primitives() -> None:
    devices = fleet()
    f = multiqpu.Fleet(devices)
    priv, pub = features(30, 3), features(31, 24).reshape(8, 3)
    f.sampler().run([encoded(x) for x in pub], shots=300).result()
    f.sampler(placement=PRIVATE).run([encoded(priv)], shots=300).result()
    est = f.estimator(placement=PRIVATE, default_precision=0.02)
    circuit = encoded(features(32, 3), measure=False)
    ev = est.run([(circuit, SparsePauliOp("ZZI"))]).result()[0].data
    exact = float(np.real(Statevector(circuit).expectation_value(SparsePauliOp("ZZI"))))
    assert abs(float(ev.evs) - exact) <= 5 * float(ev.stds)
    mitigated = f.estimator(placement=PRIVATE, mitigation=multiqpu.Readout())
    mitigated.run([(encoded(features(33, 3), measure=False), SparsePauliOp("ZII"))]).result()
    check(devices, np.concatenate([priv, features(32, 3), features(33, 3)]), pub.ravel())
    with pytest.raises(PlacementError, match=r"placement 'private'.*circuit 0.*40 qubits"):
        est.run([(encoded(features(34, 40), measure=False), SparsePauliOp("Z" * 40))])
    with pytest.raises(PlacementError, match=r"placement 'aws'.*allows no device"):
        f.sampler(placement=Placement("aws:*", name="aws"))


def test_pennylane_device() -> None:
    qml = pytest.importorskip("pennylane")
    devices = fleet()
    priv, pub = features(40, 2), features(41, 16).reshape(2, 8)

    def node(dev: object) -> object:
        @qml.set_shots(400)  # type: ignore[misc]
        @qml.qnode(dev)  # type: ignore[misc]
        def f(x: np.ndarray) -> object:
            qml.RY(x[0], wires=0)
            qml.RY(x[1], wires=1)
            qml.CNOT(wires=[0, 1])
            return qml.expval(qml.PauliZ(1))

        return f

    # (a broadcast input: eight tapes in one batch, spread over the fleet)
    node(qml.device("multiqpu.fleet", wires=2, fleet=devices))(pub)
    private_dev = qml.device("multiqpu.fleet", wires=2, fleet=devices, placement=PRIVATE)
    value = float(node(private_dev)(priv))
    assert abs(value - math.cos(priv[0]) * math.cos(priv[1])) < 0.25
    check(devices, priv, pub.ravel())


def test_qnn_training_with_per_sample_rules() -> None:
    from multiqpu.qnn import Trainer, variational_classifier

    devices = fleet()
    rng = np.random.default_rng(5)
    X = rng.uniform(0.2, 2.9, (12, 2))
    y = (X[:, 0] > X[:, 1]).astype(int)
    private = np.arange(12) % 3 == 0  # every third sample is a private shard's
    rules = [PRIVATE if p else None for p in private]
    model = variational_classifier(2, 2, layers=1)
    t = Trainer(model, devices, shots=64, batch_size=6, seed=0, backup=0)
    t.fit(X, y, epochs=2, placement=rules)
    t.score(X, y, placement=rules)
    check(devices, X[private].ravel(), X[~private].ravel())
    # a rule no device of the trainer meets: refused before anything runs
    before = sum(len(d.seen) for d in devices)
    with pytest.raises(PlacementError, match=r"placement 'aws'.*sample 1.*allows no device"):
        t.fit(X, y, placement=[None, Placement("aws:*", name="aws")] + [None] * 10)
    assert sum(len(d.seen) for d in devices) == before
    with pytest.raises(multiqpu.InvalidInputError, match="aggregation='sync'"):
        Trainer(model, devices, aggregation="async").fit(X, y, placement=rules)
    with pytest.raises(multiqpu.InvalidInputError, match="12 samples but 2 placement rules"):
        t.fit(X, y, placement=rules[:2])
