"""Scale-out on Ray: the same seeded cut estimate on the local engine and on Ray (identical
numbers), a fleet of simulator actors the scheduler uses as ordinary devices, and a
"what if" sweep fanned out over Ray tasks. See docs/scale-out.md.

Needs the ray extra (pip install 'multiqpu[ray]'). Without a cluster this starts a local
Ray instance on 2 CPUs; set RAY_ADDRESS (or [engine] address = "auto" in the config
file) to use a cluster.

Run:  python examples/scale_out.py
"""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
from qiskit.circuit.library import efficient_su2

import multiqpu
from multiqpu.engine import RayEngine, simulate_many

FAST = os.environ.get("MULTIQPU_EXAMPLE_FAST") == "1"


def two_simulators() -> list[multiqpu.Device]:
    """Two seeded 4-qubit simulators: too narrow for the circuit, so it is cut."""
    return [
        multiqpu.device("local:ideal", num_qubits=4, seed=1, label="left"),
        multiqpu.device("local:ideal", num_qubits=4, seed=2, label="right"),
    ]


async def main() -> None:
    circuit = efficient_su2(6, reps=2, entanglement="linear")
    circuit = circuit.assign_parameters(
        np.random.default_rng(7).uniform(-np.pi, np.pi, circuit.num_parameters)
    )
    observables = ["ZZZZZZ", "XXIIXX"]
    shots = 40_000 if FAST else 200_000
    ray = RayEngine(num_cpus=2)  # Ray starts here, on first use, not at import

    # 1. One estimate, two engines: sub-experiments simulated and folded as Ray tasks.
    for engine in ("local", ray):
        t0 = time.perf_counter()
        result = await multiqpu.Fleet(two_simulators()).estimate(
            circuit, observables, shots=shots, engine=engine, use_scheduler=False
        )
        name = engine if isinstance(engine, str) else "ray"
        print(f"{name:5s} engine: values {result.values}, std errors {result.std_errors} "
              f"({result.report.subexperiments} sub-experiments, "
              f"{time.perf_counter() - t0:.1f} s)")  # fmt: skip

    # 2. A fleet of simulator actors (half a CPU each), scheduled like any devices.
    fleet = multiqpu.Fleet(ray.devices(two_simulators(), num_cpus=0.5))
    ghz = efficient_su2(4, reps=1).assign_parameters([0.1] * 16)
    ghz.measure_all()
    sampled = await fleet.sample([ghz] * 8, shots=1000)
    print("actors:", ", ".join(f"{d.spec} ({type(d).__name__})" for d in fleet.devices),
          "| circuits per device:", {s: sum(r.device == s for r in sampled)
                                     for s in fleet.pool.specs})  # fmt: skip

    # 3. A "what if" sweep: one virtual-clock scheduler run per seed, as Ray tasks.
    runs = simulate_many(
        [{"devices": 6, "circuits": 200 if FAST else 1000, "seed": s} for s in range(4)],
        engine=ray,
    )
    print("simulated makespans (h):", [round(r["makespan_s"] / 3600, 2) for r in runs])


if __name__ == "__main__":
    asyncio.run(main())
