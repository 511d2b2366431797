"""Benchmark: the scheduler on a simulated 10-device fleet (virtual clock) and on a small real
fleet (Aer devices behind time-scaled simulated queues).

Virtual clock (multiqpu.scheduler.simulate): the reference fleet (4 IBM Heron r2, 2 Heron r1,
2 Eagle r3, an IQM Garnet, a Rigetti Ankaa-3; figures from the vendors' device pages, queues
drawn from multiqpu's queue-model tiers, see docs/scheduler.md), 2,000 mixed circuits (2-12
qubits) of 40,000 shots each. The IBM devices run our jobs in Session mode (the first job
queues, later ones are prioritised while the session lives); the Braket ones queue every
task. No IonQ Forte: at $0.08 and 20 ms a shot nobody assembles that fleet for this job (see
``multiqpu.scheduler._fleets``); a fourth Heron r2 takes its place. The scheduler starts from
what it learned on the same fleet two hours earlier (``history``); cold-start figures for
queue seed 0 are reported too. Compared with: (a) every circuit on the least-busy device
(fewest pending jobs, qiskit-ibm-runtime's ``least_busy()`` rule), (b) round-robin, (c)
fluid lower bounds, and the ``most_accurate`` policy for fidelity.

Headline figures are medians over 16 queue seeds (one seed's queues are one draw of a noisy
process; ``seed_0``, ``worst`` and ``seeds_meeting_target`` are printed too).

Lower bounds (``multiqpu.scheduler._bounds``; each device starts at the earliest time any job
could start on its real simulated queue, then works without pause at its real speed; work is
divisible): ``lower_bound_s`` is the bound for the devices ``balanced`` may use (above its
per-circuit floor) among schedules that lose no more estimated fidelity than the run did, so
no schedule as accurate as ours can beat it; the unconstrained bound (every device, any
fidelity) gives ``lower_bound_speedup_vs_least_busy``, the most any scheduler could reach;
``budget_lower_bound_speedup_vs_least_busy`` is the same with the 2 % fidelity budget (the
most any scheduler within the fidelity target could reach).

``fidelity_vs_most_accurate`` = (mean over the 2,000 circuits of the estimated fidelity on the
device that ran each circuit, balanced policy) / (the same mean under ``most_accurate``).

Queued copies (``redundancy``, on by default in the virtual clock) and sessions are part of
``balanced`` as the library runs it; nothing is switched on for the benchmark only.

40,000 shots a circuit is our choice (the sub-experiments of a circuit cut with sampling
overhead ~81 need shots of that order). With 10,000 (``shots_10000``) the queue waits weigh
more: even the bound within the fidelity budget is ~5x faster than least-busy there, so no
scheduler reaches 6x on that workload.

Also: placement throughput and peak RSS of virtual runs of 10,000 and 1,000,000 circuits
(each in a fresh process), and the real async executor vs round-robin on 4 local Aer devices
behind QueuedDevice (3 queue seeds, median).

Prints one JSON line. Run: ``python tests/benchmarks/scheduler.py`` (a few minutes on 2 cores;
``--quick``: 4 queue seeds and no 1M-circuit run).
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import subprocess
import sys
import time

SHOTS = 40_000  # the sub-experiments of a circuit cut with sampling overhead ~81
OTHER_SHOTS = 10_000  # also reported
N = 2_000
SEEDS = range(16)

_MEMORY_CHILD = """
import os, resource, sys, threading, time
from multiqpu.scheduler._whatif import simulate

def rss_mb():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

n = int(sys.argv[1])
simulate(10, 100, shots=4000)  # warm every import and cache first
before = rss_mb()
peak = [before]
done = threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.02)

threading.Thread(target=sample, daemon=True).start()
t = time.perf_counter()
r = simulate(10, n, shots=4000)
wall = time.perf_counter() - t
done.set()
peak[0] = max(peak[0], rss_mb())
print(before, peak[0], wall, r.placements_per_s, r.jobs)
"""


def budget_bound(seed: int, margin: float = 0.02, shots: int = SHOTS) -> float:
    """The fluid lower bound over every device for schedules whose mean estimated fidelity
    is within ``margin`` of ``most_accurate``'s (on the same queues as ``simulate``)."""
    import numpy as np

    from multiqpu.scheduler._fleets import reference_fleet
    from multiqpu.scheduler._simfleet import Workload
    from multiqpu.scheduler._tables import StreamSource
    from multiqpu.scheduler._virtual import QueueProcess, tables_for
    from multiqpu.scheduler._whatif import lower_bound

    fleet = reference_fleet()
    workload = Workload.mixed(N, shots=shots)
    counts = StreamSource(N, workload.probabilities(), seed=seed + 1).class_counts(
        len(workload.circuits)
    )
    t = tables_for(fleet, workload)
    top = np.where(t.fits, t.fidelity, -np.inf).max(axis=1)
    queues = QueueProcess(fleet, seed=seed + 2, epoch_s=10 * 3600.0)
    return lower_bound(
        fleet,
        workload,
        queues,
        policy="fastest",
        counts=counts,
        fidelity_loss=margin * float(counts @ top),
    )


def virtual(seed: int, *, history: bool, shots: int = SHOTS) -> dict[str, float]:
    from multiqpu.scheduler._whatif import simulate

    bal = simulate(10, N, shots=shots, seed=seed, history=history, compare=True, bound=True)
    fast = simulate(10, N, shots=shots, seed=seed, history=history, policy="fastest", bound=True)
    acc = simulate(10, N, shots=shots, seed=seed, history=history, policy="most_accurate")
    lb_any = fast.lower_bound_s or float("nan")
    lb_budget = budget_bound(seed, shots=shots)
    least = bal.baselines["least_busy"]["makespan_s"]
    return {
        "makespan_s": bal.makespan_s,
        "lower_bound_s": bal.lower_bound_s or float("nan"),
        "makespan_vs_lower_bound": bal.makespan_s / (bal.lower_bound_s or float("nan")),
        "makespan_vs_unconstrained_lower_bound": bal.makespan_s / lb_any,
        "fastest_makespan_vs_lower_bound": fast.makespan_s / lb_any,
        "speedup_vs_least_busy": least / bal.makespan_s,
        "fastest_speedup_vs_least_busy": least / fast.makespan_s,
        "lower_bound_speedup_vs_least_busy": least / lb_any,
        "budget_lower_bound_speedup_vs_least_busy": least / lb_budget,
        "speedup_vs_round_robin": bal.baselines["round_robin"]["makespan_s"] / bal.makespan_s,
        "fidelity_vs_most_accurate": bal.mean_fidelity / acc.mean_fidelity,
        "mean_fidelity": bal.mean_fidelity,
        "least_busy_mean_fidelity": bal.baselines["least_busy"]["mean_fidelity"],
        "placements_per_s": bal.placements_per_s,
        "hedges": bal.hedges,
        "wall_s": bal.wall_s,
    }


def memory(n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(n)], capture_output=True, text=True, check=True
    ).stdout.split()
    base, peak, wall, pps, jobs = map(float, out)
    return {
        "rss_before_mb": round(base, 1),
        "peak_rss_mb": round(peak, 1),
        "growth_mb": round(peak - base, 1),
        "wall_s": round(wall, 2),
        "placements_per_s": round(pps),
        "jobs": int(jobs),
    }


async def real_fleet(rep: int = 0) -> dict[str, object]:
    """4 noisy Aer devices (5 qubits, uniform noise; the idle one is the noisiest, as idle
    devices often are) behind simulated IBM-style queues of the four busyness tiers (median
    20 s, 4 min, 15 min, 45 min), time scale 2e-3 (45 min of queue -> 5.4 s); 80 circuits x
    1000 shots. multiqpu (balanced) vs round-robin (circuit i on device i mod 4, each
    device's share in jobs of at most max_circuits_per_job, all submitted at once)."""
    from qiskit import QuantumCircuit

    import multiqpu
    from multiqpu.fleet import Fleet
    from multiqpu.queue_model import QueuedDevice, QueueModel

    tiers = [(20.0, 2.0), (240.0, 40.0), (900.0, 250.0), (2700.0, 1200.0)]
    noise = [(0.04, 0.03), (0.015, 0.01), (0.01, 0.006), (0.008, 0.005)]  # readout, 2q

    def build() -> list[multiqpu.Device]:
        out = []
        for k, ((wait, pending), (ro, e2)) in enumerate(zip(tiers, noise, strict=True)):
            inner = multiqpu.device(
                "local:noisy",
                num_qubits=5,
                readout_error=ro,
                gate_error_2q=e2,
                gate_error_1q=e2 / 10,
                seed=k,
                label=f"qpu{k}",
            )
            model = QueueModel(
                median_wait_s=wait,
                sigma=0.3,
                pending_mean=pending,
                time_scale=2e-3,
                seed=100 * rep + k,
                daily_amplitude=0.0,
            )
            out.append(QueuedDevice(inner, model))
        return out

    def circuit(i: int) -> QuantumCircuit:
        n = 2 + i % 3
        qc = QuantumCircuit(n)
        qc.h(0)
        for q in range(n - 1):
            qc.cx(q, q + 1)
        qc.rz(0.1 * (i % 4), 0)
        qc.measure_all()
        return qc

    circuits = [circuit(i) for i in range(80)]

    async def warm(devices: list[multiqpu.Device]) -> None:  # simulators and transpilers
        for d in devices:
            inner = d.inner  # type: ignore[attr-defined]
            await inner.run(circuits[:12], 10)

    devices = build()
    await warm(devices)
    t = time.perf_counter()
    result = await Fleet(devices).sample(circuits, shots=1000, journal=None)
    ours = time.perf_counter() - t

    rr_devices = build()
    await warm(rr_devices)
    t = time.perf_counter()

    async def share(k: int, dev: multiqpu.Device) -> None:
        mine = circuits[k :: len(rr_devices)]
        size = dev.limits.max_circuits_per_job
        await asyncio.gather(
            *(dev.run(mine[a : a + size], 1000) for a in range(0, len(mine), size))
        )

    await asyncio.gather(*(share(k, d) for k, d in enumerate(rr_devices)))
    rr = time.perf_counter() - t
    return {
        "real_makespan_s": ours,
        "real_round_robin_makespan_s": rr,
        "real_speedup_vs_round_robin": rr / ours,
        "real_circuits_per_device": {d.device: d.circuits for d in result.report.devices},
        "real_mean_estimated_fidelity": result.report.mean_estimated_fidelity,
    }


def summary(
    sweep: list[dict[str, float]], keys: tuple[str, ...]
) -> tuple[dict[str, float], dict[str, float]]:
    """Medians and worst values over queue seeds (worst: highest for ratios to a bound,
    lowest for speedups and fidelity)."""
    median = {k: round(statistics.median(r[k] for r in sweep), 4) for k in keys}
    worst = {
        k: round(
            max(r[k] for r in sweep)
            if "lower_bound" in k and "speedup" not in k
            else min(r[k] for r in sweep),
            4,
        )
        for k in keys
    }
    return median, worst


KEYS = (
    "makespan_vs_lower_bound",
    "makespan_vs_unconstrained_lower_bound",
    "fastest_makespan_vs_lower_bound",
    "speedup_vs_least_busy",
    "lower_bound_speedup_vs_least_busy",
    "budget_lower_bound_speedup_vs_least_busy",
    "speedup_vs_round_robin",
    "fidelity_vs_most_accurate",
)
TARGETS = {  # the targets, counted per queue seed
    "makespan_vs_lower_bound": lambda v: v <= 1.15,
    "speedup_vs_least_busy": lambda v: v >= 6.0,
    "fidelity_vs_most_accurate": lambda v: v >= 0.98,
}


def sweep(seeds: range, shots: int) -> dict[str, object]:
    runs = [virtual(s, history=True, shots=shots) for s in seeds]
    median, worst = summary(runs, KEYS)
    return {
        "median": median,
        "worst": worst,
        "seed_0": {k: round(runs[0][k], 4) for k in KEYS},
        "seeds_meeting_target": {k: sum(1 for r in runs if ok(r[k])) for k, ok in TARGETS.items()},
        "seeds": len(runs),
        "placements_per_s": round(statistics.median(r["placements_per_s"] for r in runs)),
    }


def main() -> None:
    quick = "--quick" in sys.argv
    seeds = range(4) if quick else SEEDS
    t0 = time.perf_counter()
    head = sweep(seeds, SHOTS)
    out: dict[str, object] = {
        "benchmark": "scheduler",
        "devices": 10,
        "circuits": N,
        "shots": SHOTS,
        "scenario": f"reference fleet, warm, median over {len(seeds)} queue seeds",
    }
    out.update(head.pop("median"))  # type: ignore[arg-type]
    out["placements_per_s"] = head.pop("placements_per_s")
    out.update(head)
    cold = virtual(0, history=False)
    out["cold_seed_0"] = {
        k: round(cold[k], 4)
        for k in (
            "makespan_vs_lower_bound",
            "speedup_vs_least_busy",
            "speedup_vs_round_robin",
            "fidelity_vs_most_accurate",
        )
    }
    # the same with 10,000 shots a circuit (see the module docstring), not the headline
    out[f"shots_{OTHER_SHOTS}"] = sweep(seeds, OTHER_SHOTS)
    if not quick:
        small, large = memory(10_000), memory(1_000_000)
        out["memory"] = {
            "10k": small,
            "1M": large,
            "peak_rss_ratio_1M_vs_10k": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3),
        }
        out["placements_per_s_1M"] = round(large["placements_per_s"])
    reps = [asyncio.run(real_fleet(rep)) for rep in range(3)]
    ratios = sorted(float(r["real_speedup_vs_round_robin"]) for r in reps)  # type: ignore[arg-type]
    out.update(reps[0])
    out["real_speedup_vs_round_robin_3_queue_seeds"] = [round(x, 3) for x in ratios]
    out["real_speedup_vs_round_robin"] = round(ratios[1], 3)  # the median
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    out["python"] = platform.python_version()
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
