"""The scheduler: a batch of circuits placed across the embedded default fleet, the run report,
the job journal, and a "what if" question on a virtual clock.

Run:  python examples/scheduler.py
"""

from __future__ import annotations

import asyncio
import os

from qiskit import QuantumCircuit

import multiqpu
from multiqpu.journal import Journal
from multiqpu.scheduler import simulate

FAST = os.environ.get("MULTIQPU_EXAMPLE_FAST") == "1"


def circuit(i: int) -> QuantumCircuit:
    """A 3-qubit GHZ with a distinct phase: a stand-in for one shard or fragment."""
    qc = QuantumCircuit(3, name=f"shard{i}")
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.rz(0.05 * i, 2)
    qc.measure_all()
    return qc


async def main() -> None:
    # the embedded default fleet's noisy devices (the noiseless simulator would win every
    # circuit), each behind its simulated, time-scaled queue
    fleet = multiqpu.Fleet([d for d in multiqpu.Fleet.local(time_scale=1e-5) if not d.exact])
    circuits = [circuit(i) for i in range(12 if FAST else 40)]

    # balanced (the default): the earliest finish while the run's mean estimated fidelity
    # stays within 2 % of the most accurate placement, but never a plan more than
    # max_slowdown (1.5) x slower than the fastest one; the report says which limit bound it
    result = await fleet.sample(circuits, shots=1000)
    print(result.report)  # per device: jobs, circuits, queue report, waits, est. fidelity
    print(f"bound by: {result.report.bound_by}")
    first = result[0]
    p_ghz = (first.counts.get("000", 0) + first.counts.get("111", 0)) / 1000
    print(f"circuit 0 ran on {first.device} (job {first.job_id}): P(000)+P(111) = {p_ghz:.3f}")

    # every run is in the job journal ($MULTIQPU_JOURNAL or the user data directory):
    # `multiqpu runs` lists it, `multiqpu resume RUN_ID` finishes it after a crash
    with Journal() as journal:
        info = journal.run_info(result.run_id)
    print(f"journal: run {info.run_id} is {info.state}, {info.n_done}/{info.n_tasks} done")

    # other policies: fastest, most_accurate, cheapest (with budget_usd=...)
    accurate = await fleet.sample(circuits, shots=1000, policy="most_accurate")
    print(
        f"mean est. fidelity: balanced {result.report.mean_estimated_fidelity:.3f}, "
        f"most_accurate {accurate.report.mean_estimated_fidelity:.3f}"
    )

    # what if: 10 simulated QPUs (IBM Heron/Eagle, IQM, Rigetti, ...) and 2,000 circuits,
    # in virtual time, against the least-busy device and round-robin on the same queues
    sim = simulate(10, 500 if FAST else 2000, shots=4000, compare=True)
    least = sim.baselines["least_busy"]["makespan_s"]
    print(
        f"what if ({sim.circuits} circuits on {sim.devices} simulated QPUs): makespan "
        f"{sim.makespan_s / 60:.0f} min vs {least / 60:.0f} min on the least-busy device "
        f"({least / sim.makespan_s:.1f}x), computed in {sim.wall_s:.1f} s"
    )


if __name__ == "__main__":
    asyncio.run(main())
