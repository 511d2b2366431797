"""Chaos on purpose: a fleet whose devices fail, throttle, duplicate, delay and hang, and one
exact answer per circuit all the same.

Six FaultyDevices wrap local ideal simulators: 20 % of submissions fail transiently on each,
one throttles (Retry-After), one is lost mid-run, one hangs, one delivers late results and
ignores cancellation, one loses acknowledgements (the provider runs the job, the retry runs it
again). The circuits ask for exact probabilities, so every answer must equal the fault-free
one. See docs/reliability.md.
"""

from __future__ import annotations

import asyncio

from qiskit import QuantumCircuit

import multiqpu
from multiqpu.testing.faults import FaultyDevice


def circuit(k: int) -> QuantumCircuit:
    qc = QuantumCircuit(3)
    qc.ry(0.2 + 0.1 * k, 0)
    qc.cx(0, 1)
    qc.measure_all()
    return qc


async def main() -> None:
    limits = multiqpu.DeviceLimits(max_circuits_per_job=1)

    def ideal(k: int) -> multiqpu.Device:
        return multiqpu.device("local:ideal", num_qubits=3, limits=limits, label=f"ideal-{k}")

    p = 0.2
    devices = [
        FaultyDevice(ideal(0), name="flaky", transient_failures=p, seed=1),
        FaultyDevice(ideal(1), name="throttled", throttle=0.3, retry_after_s=0.01, seed=2),
        FaultyDevice(ideal(2), name="dies", transient_failures=p, fail_after=1, seed=3),
        FaultyDevice(ideal(3), name="stuck", hang=True),
        FaultyDevice(ideal(4), name="late", late_results=0.2, late_s=1.0, seed=5),
        FaultyDevice(ideal(5), name="dup", lost_acks=0.3, seed=6),
    ]
    circuits = [circuit(k) for k in range(60)]
    result = await multiqpu.Fleet(devices).sample(
        circuits, shots=None, journal=False, retries=12, backoff_s=0.002, job_timeout_s=0.5,
        cache=False,
    )  # fmt: skip
    clean = await multiqpu.Fleet([ideal(9)]).sample(circuits, shots=None, journal=False)
    same = all(
        a.result.probabilities == b.result.probabilities
        for a, b in zip(result.results, clean.results, strict=True)
    )
    print(f"{len(result.results)} results for {len(circuits)} circuits, fault-free equal: {same}")
    for d in devices:
        injected = {k: v for k, v in d.faults.items() if v}
        print(f"  {d.spec}: {len(d.submissions)} jobs accepted, faults {injected}")
    assert same and len(result.results) == len(circuits)


if __name__ == "__main__":
    asyncio.run(main())
