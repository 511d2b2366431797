"""A batch of GHZ circuits on the embedded default fleet, scheduled (for ``multiqpu demo``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.pool import PoolLike
    from multiqpu.scheduler._report import SampleResult

__all__ = ["demo_batch", "ghz_batch"]


def ghz_batch(count: int, qubits: int = 3) -> list[QuantumCircuit]:
    """``count`` GHZ circuits of ``qubits`` qubits, each with a distinct final phase (so they
    are distinct circuits of one structure, like shards of a workload)."""
    from qiskit import QuantumCircuit

    out = []
    for i in range(count):
        qc = QuantumCircuit(qubits, name=f"ghz{qubits}_{i}")
        qc.h(0)
        for q in range(qubits - 1):
            qc.cx(q, q + 1)
        qc.rz(0.01 * i, qubits - 1)  # diagonal before measurement: same distribution
        qc.measure_all()
        out.append(qc)
    return out


async def demo_batch(
    fleet: PoolLike = None,
    *,
    circuits: int = 40,
    qubits: int = 3,
    shots: int = 2000,
    time_scale: float | None = None,
    policy: str = "balanced",
    **options: Any,
) -> SampleResult:
    """Schedule ``circuits`` GHZ circuits over ``fleet`` (anything ``fleet=`` takes: a
    DevicePool, a Fleet, devices; default: the QPU-like devices of the embedded default
    fleet, each behind its simulated, time-scaled queue; the noiseless simulator is left out,
    it would win every circuit). ``result.report`` shows where they went: the balanced policy
    keeps the run's mean estimated fidelity within 2 % of the most accurate placement (no
    circuit more than 10 % below its best device) and, within that budget, prefers the
    devices expected to finish first (short queues), unless that plan would take more than
    ``max_slowdown`` times the fastest plan's: then it gives up the least fidelity it must
    (``result.report.bound_by``)."""
    from multiqpu.pool import DevicePool, as_pool, local_devices
    from multiqpu.scheduler._api import sample

    if fleet is None:
        pool = DevicePool(d for d in local_devices(time_scale=time_scale) if not d.exact)
    else:
        pool = as_pool(fleet)
    options.setdefault("journal", None)
    return await sample(pool, ghz_batch(circuits, qubits), shots, policy, **options)
