"""Data placement: a private shard's circuits run only on local simulators.

With angle encoding the features of a data point *are* the gate angles of its circuit, so
sending the circuit to a cloud QPU discloses them. A ``multiqpu.Placement`` rule names the
devices that may receive such work; the scheduler never sends it elsewhere (hedges,
failover and split shots included), and a rule no device satisfies is refused before
anything is submitted. The Qiskit primitives, the PennyLane device and QNN training take
rules too; in training, one rule per sample keeps a private shard on its devices while the
public samples use the whole fleet. See docs/trust.md.
"""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit

import multiqpu
from multiqpu.scheduler import JobRequest, run_sync


def encoded(features: np.ndarray, name: str) -> QuantumCircuit:
    qc = QuantumCircuit(len(features), name=name)
    for q, x in enumerate(features):
        qc.ry(float(x), q)  # the features are the angles
    qc.cx(0, 1)
    qc.measure_all()
    return qc


def main() -> None:
    fleet = multiqpu.Fleet.from_config()
    rng = np.random.default_rng(0)
    private = [encoded(rng.uniform(0, np.pi, 2), f"private-{i}") for i in range(6)]
    public = [encoded(rng.uniform(0, np.pi, 2), f"public-{i}") for i in range(6)]
    local_only = multiqpu.Placement(["local:*"], name="private")
    print(f"fleet: {', '.join(d.spec for d in fleet)}")

    # one rule for a whole call ...
    result = fleet.sample_sync(private, shots=500, placement=local_only)
    print("private shard (sample):", sorted({r.device for r in result.results}))

    # ... or per circuit, mixed with unrestricted work in one run
    jobs = [JobRequest(c, 500, placement=local_only) for c in private] + public
    mixed = run_sync(fleet, jobs)
    print("private shard (run):   ", sorted({r.device for r in mixed.results[:6]}))
    print("public shard (run):    ", sorted({r.device for r in mixed.results[6:]}))
    assert all(local_only.allows(r.device) for r in mixed.results[:6])

    # the Qiskit primitives and the PennyLane device take a rule for all their circuits
    sampler = fleet.sampler(placement=local_only)
    pub = sampler.run([private[0]], shots=200).result()[0]
    print("private shard (sampler):", sorted(pub.metadata["devices"]))
    try:
        import pennylane as qml
    except ImportError:
        qml = None
    if qml is not None:
        dev = qml.device("multiqpu.fleet", wires=2, fleet=fleet, placement=local_only)

        @qml.set_shots(200)
        @qml.qnode(dev)
        def circuit(x: np.ndarray) -> object:
            qml.RY(x[0], wires=0)
            qml.RY(x[1], wires=1)
            qml.CNOT(wires=[0, 1])
            return qml.expval(qml.PauliZ(1))

        print(f"private shard (PennyLane): <Z1> = {float(circuit(rng.uniform(0, 1, 2))):+.3f}")

    # QNN training: one rule per sample (None: any device of the trainer)
    from multiqpu.qnn import Trainer, variational_classifier

    X = rng.uniform(0, np.pi, (12, 2))
    y = (X[:, 0] > X[:, 1]).astype(int)
    rules = [local_only if i % 3 == 0 else None for i in range(len(X))]  # a private shard
    trainer = Trainer(variational_classifier(2, 2, layers=1), fleet, shots=128, batch_size=6)
    history = trainer.fit(X, y, epochs=1, placement=rules)
    samples = dict(zip(history.devices, history.epochs[-1].samples, strict=True))
    print("QNN training, samples per device:", samples)

    # a rule no device of the fleet satisfies: refused, nothing submitted
    try:
        fleet.sample_sync(private, placement=multiqpu.Placement(["aws:*"], name="aws-only"))
    except multiqpu.PlacementError as exc:
        print(f"refused: {exc}")


if __name__ == "__main__":
    main()
