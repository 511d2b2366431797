"""Quickstart: one circuit on several devices of the embedded default fleet, through one interface.

Run:  python examples/quickstart.py
"""

from __future__ import annotations

import asyncio

from qiskit import QuantumCircuit

import multiqpu


def ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n, name=f"ghz{n}")
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    qc.measure_all()
    return qc


async def main() -> None:
    circuit = ghz(3)

    # A single device by spec: IBM's Torino, as a fake backend with a real calibration snapshot.
    torino = multiqpu.device("ibm:fake_torino")
    result = await torino.run([circuit], shots=2000)
    print(f"{torino.spec}: {dict(sorted(result[0].counts.items()))}")

    # A 7-qubit ideal simulator; shots=None gives exact probabilities.
    ideal = multiqpu.device("local:ideal", num_qubits=7)
    exact = await ideal.run([circuit], shots=None)
    print(f"{ideal.spec} (exact): {exact[0].probabilities}")

    # The embedded default fleet: every device, one interface, run concurrently.
    fleet = multiqpu.Fleet.local(time_scale=0.0)
    results = await asyncio.gather(*(d.run([circuit], shots=1000) for d in fleet))
    for dev, res in zip(fleet, results, strict=True):
        counts = res[0].counts
        good = (counts.get("000", 0) + counts.get("111", 0)) / 1000
        cal = dev.calibration()
        est = cal.estimated_fidelity(dev.transpile(circuit))
        print(f"{dev.spec:24s} P(000)+P(111) = {good:.3f}   estimated fidelity = {est:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
