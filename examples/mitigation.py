"""Per-device error mitigation on the default fleet's noisy devices.

Each circuit runs where the scheduler puts it; its results are then corrected with the
calibration of the device that produced them (readout calibration circuits and folded
circuits run on that same device), and only then combined. The result carries the
unmitigated and readout-only values from the same run, and a report of what mitigation cost.

Run:  python examples/mitigation.py      (MULTIQPU_EXAMPLE_FAST=1: fewer shots)
"""

from __future__ import annotations

import asyncio
import os
import tempfile

from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu

FAST = os.environ.get("MULTIQPU_EXAMPLE_FAST") == "1"


def ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    return qc


async def main() -> None:
    # The default fleet without its ideal simulator: only noisy devices, each biased its
    # own way (fake IBM backends with real calibration data, a Braket emulator).
    fleet = multiqpu.Fleet([d for d in multiqpu.Fleet.local(queues=False) if not d.exact])
    # Readout calibrations are cached across runs; a temporary folder keeps this example
    # from touching your cache.
    with tempfile.TemporaryDirectory(prefix="multiqpu-example-") as cache:
        await run(fleet, [multiqpu.Readout(cache_dir=cache), multiqpu.ZNE(scales=(1, 3, 5))])


async def run(fleet: multiqpu.Fleet, mitigation: list[multiqpu.Mitigation]) -> None:

    n = 4
    labels = ["Z" * n, "X" * n]
    exact = [Statevector(ghz(n)).expectation_value(SparsePauliOp(o)).real for o in labels]
    shots = 8_000 if FAST else 40_000
    res = await fleet.estimate(ghz(n), labels, shots=shots, mitigation=mitigation)
    print(f"GHZ-{n} parities {', '.join(labels)} (exact {exact[0]:.0f} and {exact[1]:.0f}):")
    for name, stage in res.stages.items():
        values = ", ".join(
            f"{v:.4f} ± {s:.4f}" for v, s in zip(stage.values, stage.std_errors, strict=True)
        )
        print(f"  {name:12s} {values}   ({stage.shots:,} circuit shots)")
    print(res.report)

    # A second run reuses the calibrations measured above for the qubits it measures again
    # (a device or qubits not calibrated before are calibrated now).
    again = await fleet.estimate(ghz(n), "Z" * n, shots=shots // 2, mitigation=mitigation)
    sources = [f"{c.device} {c.source}" for c in again.report.calibrations]
    print(f"second run: {again.value:.4f} ± {again.std_error:.4f}; calibrations: "
          f"{', '.join(sources)}; calibration shots {again.report.shots_calibration}")  # fmt: skip

    # Shards: every circuit of a batch corrected on its own device (M3 quasi-distributions).
    batch = []
    for bits in ("1011", "0110", "1111"):
        qc = QuantumCircuit(4)
        for q, b in enumerate(reversed(bits)):
            if b == "1":
                qc.x(q)
        qc.measure_all()
        batch.append(qc)
    sample = await fleet.sample(batch, shots=2_000 if FAST else 8_000, mitigation=mitigation[:1])
    for bits, item in zip(("1011", "0110", "1111"), sample, strict=True):
        best = max(item.quasi_dist, key=lambda k: item.quasi_dist[k])
        raw = item.counts.get(bits, 0) / item.result.shots
        print(f"|{bits}> on {item.device}: raw P={raw:.3f}, "
              f"mitigated P={item.quasi_dist.get(bits, 0.0):.3f} (mode {best})")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
