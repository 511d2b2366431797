"""Shot-wise distribution: more shots than any device takes in one job, split into parts on
one device or spread over several, merged honestly (docs/shots.md).

Run:  python examples/shots.py
"""

from __future__ import annotations

import asyncio
import os

from qiskit import QuantumCircuit

import multiqpu
from multiqpu.errors import IncompatibleResultsError

FAST = os.environ.get("MULTIQPU_EXAMPLE_FAST") == "1"


def ghz3() -> QuantumCircuit:
    qc = QuantumCircuit(3, name="ghz3")
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.measure_all()
    return qc


async def main() -> None:
    # the embedded default fleet's noisy devices (caps: 100,000 shots a job on IBM, 20,000
    # on the Braket emulator), behind their simulated, time-scaled queues
    fleet = multiqpu.Fleet([d for d in multiqpu.Fleet.local(time_scale=1e-5) if not d.exact])
    shots = 200_000 if FAST else 400_000

    # 1. above every cap: parts on one device (the policy's choice), counts an exact sum
    result = await fleet.sample([ghz3()], shots=shots)
    r = result[0]
    share = r.parts[0]
    print(f"{r.shots} shots of ghz3 on {r.device}: {share.parts} parts, jobs {share.job_ids}")
    p = (r.counts.get("000", 0) + r.counts.get("111", 0)) / r.shots
    print(f"  P(000)+P(111) = {p:.4f}; journal run {result.run_id} holds the parts")

    # 2. sooner: spread over the devices (policy "fastest" or split_shots=True); per-device
    # counts are kept, and merged only if they agree within shot noise
    fast = (await fleet.sample([ghz3()], shots=shots, split_shots=True, policy="fastest"))[0]
    for s in fast.parts:
        p = (s.counts.get("000", 0) + s.counts.get("111", 0)) / s.shots
        print(f"  {s.device:18s} {s.shots:7d} shots  P(000)+P(111) = {p:.4f}")
    c = fast.compatibility
    assert c is not None
    print(f"  homogeneity: chi2 = {c.statistic:.0f} on {c.dof} dof, p = {c.p_value:.2g}")
    try:
        print(f"  merged: {sum(fast.counts.values())} counts")
    except IncompatibleResultsError as exc:
        print(f"  not merged: {str(exc)[:90]}...")

    # 3. an estimate over devices: each device's share corrected there, then combined with
    # inverse-variance weights; the spread between devices is reported
    qc = ghz3().remove_final_measurements(inplace=False)
    est = await fleet.estimate(
        qc, ["ZZI", "IZZ"], shots=40_000 if FAST else 200_000, split_shots=True,
        mitigation=[multiqpu.Readout()],
    )  # fmt: skip
    for k, label in enumerate(est.labels):
        comb = est.combined[k]
        print(
            f"  <{label}> = {est.values[k]:.4f} +- {est.std_errors[k]:.4f} (exact 1); spread "
            f"between devices {comb.spread:.4f}, consistent: {comb.consistent}"
        )
    print("  per device:", ", ".join(f"{p.device} {p.values[0]:.3f}" for p in est.per_device))

    # 4. a device lost mid-run: the parts pinned to it fail over to a live device that fits,
    # and the merge records where each part ran (and tests the two shares)
    from multiqpu.testing.faults import FaultyDevice

    one = multiqpu.DeviceLimits(max_shots=50_000, max_circuits_per_job=1, max_concurrent_jobs=1)
    small = multiqpu.DeviceLimits(max_shots=20_000, max_circuits_per_job=1, max_concurrent_jobs=1)
    dies = FaultyDevice(
        multiqpu.device("local:ideal", label="big", num_qubits=3, limits=one, seed=5),
        name="dies", fail_after=1,
    )  # fmt: skip
    backup = multiqpu.device("local:ideal", label="backup", num_qubits=3, limits=small, seed=6)
    lost = await multiqpu.Fleet([dies, backup]).sample([ghz3()], shots=150_000, journal=None)
    for s in lost[0].parts:
        print(f"  {s.device:14s} {s.shots:7d} shots in {s.parts} part(s)")
    print(f"  lost: {lost.report.extra['lost_devices']}, merged: {lost[0].merged}")


if __name__ == "__main__":
    asyncio.run(main())
