"""Data placement: a private shard's circuits run only on local simulators.

With angle encoding the features of a data point *are* the gate angles of its circuit, so
sending the circuit to a cloud QPU discloses them. A ``multiqpu.Placement`` rule names the
devices that may receive such work; the scheduler never sends it elsewhere (hedges,
failover and split shots included), and a rule no device satisfies is refused before
anything is submitted. See docs/trust.md.
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

    # a rule no device of the fleet satisfies: refused, nothing submitted
    try:
        fleet.sample_sync(private, placement=multiqpu.Placement(["aws:*"], name="aws-only"))
    except multiqpu.PlacementError as exc:
        print(f"refused: {exc}")


if __name__ == "__main__":
    main()
