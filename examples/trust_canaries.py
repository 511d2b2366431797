"""Canary circuits and quarantine: catch a device that silently corrupts its results.

One device of the fleet flips 5 % of the bits it measures (a FaultyDevice with
``BitFlips(0.05)``). With ``trust=multiqpu.Trust()`` the scheduler mixes canary circuits (mirror
circuits with one known outcome) into the jobs, tests each device's canary results against what
its own calibration predicts, and quarantines the liar: it gets no new work and what it returned
since its last passed check runs again elsewhere. Honest noisy devices (an IBM fake backend)
pass. See docs/trust.md.
"""

from __future__ import annotations

import asyncio

from qiskit import QuantumCircuit

import multiqpu
from multiqpu.testing.faults import BitFlips, FaultyDevice


def tagged(k: int) -> QuantumCircuit:
    """A 3-qubit circuit whose ideal output is the basis state k (mod 8)."""
    qc = QuantumCircuit(3)
    for q in range(3):
        if (k >> q) & 1:
            qc.x(q)
    qc.measure_all()
    return qc


async def main() -> None:
    liar = FaultyDevice(
        multiqpu.device("local:ideal", num_qubits=4, label="inner"),
        name="liar",
        corrupt=BitFlips(0.05),
        seed=1,
    )
    fleet = multiqpu.Fleet(
        [
            multiqpu.device("local:ideal", num_qubits=4, seed=2),
            multiqpu.device("ibm:fake_torino", seed=3),  # calibrated noise is not a fault
            liar,
        ]
    )
    circuits = [tagged(k) for k in range(120)]
    result = await fleet.sample(circuits, shots=500, trust=multiqpu.Trust(), journal=False)
    trust = result.report.trust
    assert trust is not None
    print(f"canary shots: {trust.canary_shots} ({100 * trust.overhead:.1f} % of all shots)")
    for v in trust.verdicts:
        state = f"FLAGGED: {v.reason}" if v.flagged else "passed"
        print(f"  {v.device}: {v.canaries} canaries, {v.failures}/{v.canary_shots} missed; {state}")
        if v.rerun:
            print(f"    {len(v.rerun)} of its results ran again elsewhere")
    used = sorted({r.device for r in result})
    print(f"results came from: {', '.join(used)}")
    assert liar.spec in trust.flagged and liar.spec not in used


if __name__ == "__main__":
    asyncio.run(main())
