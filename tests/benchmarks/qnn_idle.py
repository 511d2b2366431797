"""Where the time of data-parallel QNN training goes, per device, on the virtual clock.

The workload, fleets and training are ``tests/benchmarks/qnn.py``'s classical task (breast
cancer, 8 qubits, batch 32, 1,024 shots, 3 epochs, the trainer's default strategy). Every
job of the N-device run is recorded (submitted, started, finished, run time) and each
device's share of the whole training time ``T`` is split into:

* ``work``: running circuits (a job's run time less its per-job overhead);
* ``overhead``: the per-job overheads;
* ``starved``: idle with no job handed to it yet (waiting for the trainer's next step);
* ``queue``: idle while its next job is still in its queue wait;
* ``tail``: idle after its last job (the end of training);
* ``left_out``: devices that were given no job at all.

The shares are weighted by device speed (reference time per shot / the device's), so
``work * speed * T1_factor`` is the speedup (``T1_factor``: the one-device run's time over
its pure work, about 1.02). Also the step times (p50 / p90 / max, seconds) and how many
seconds of ``T`` the steps spent above the median step (``stall_share``; the two steps of
a fused pair, taken at one instant, count as one): the cost of the
lognormal queue tails that hold a barrier.

``python tests/benchmarks/qnn_idle.py [--devices 16] [--seeds dev|fresh] [--replicas R]``
(replica ``r`` draws the queue waits with executor seed ``seed + 1000 r`` on the same
fleet; ``--quick``: 8 devices, one seed). Prints one JSON line: the means over runs and
each run's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

REF_SHOT_S = 2.6e-4  # the reference device's (a Heron r2's) time per shot
PARTS = ("work", "overhead", "starved", "queue", "tail", "left_out")


def _recording_executor(devices: list[Any], seed: int) -> Any:
    from multiqpu.qnn import VirtualExecutor

    class Recording(VirtualExecutor):
        """A VirtualExecutor that keeps every job's times (benchmark instrumentation)."""

        def __init__(self) -> None:
            super().__init__(devices, seed=seed)
            self.jobs: list[tuple[int, float, float, float, float]] = []

        def start(self, d: int, work: Any, shots: int | None, tag: Any) -> None:
            super().start(d, work, shots, tag)
            dev = self.spec[d]
            run_s = dev.overhead_s + len(work) * (shots or 1000) * dev.shot_s
            end = self._lane_free[d]
            self.jobs.append((d, self.now(), end - run_s, end, run_s))

    return Recording()


def profile(n: int, seed: int, replica: int) -> dict[str, Any]:
    """Train once on ``n`` devices and once on one; the split of the N-device run's time."""
    import qnn_tasks as tasks

    from multiqpu.qnn import Trainer, variational_classifier

    Xtr, ytr, _, _ = tasks.breast_cancer()
    model = variational_classifier(8, 2, layers=tasks.LAYERS)
    runs = {}
    for size in (1, n):
        ex = _recording_executor(tasks.fleet(size, seed), seed + 1000 * replica)
        trainer = Trainer(model, executor=ex, shots=1024, batch_size=32,  # type: ignore[arg-type]
                          learning_rate=0.1, progress=False, seed=seed)  # fmt: skip
        steps: list[float] = []
        step = trainer.server.step

        def timed(grad: Any, factor: float = 1.0, _s: Any = step, _t: Any = steps,
                  _e: Any = ex) -> None:  # fmt: skip
            _t.append(_e.now())
            _s(grad, factor)

        trainer.server.step = timed  # type: ignore[method-assign]
        trainer.fit(Xtr, ytr, epochs=3)
        runs[size] = (ex, steps)
    ex1, _ = runs[1]
    ex, steps = runs[n]
    gaps = np.diff([0.0, *sorted(set(steps))])  # a fused pair's two steps: one barrier
    T1, T = ex1.now(), ex.now()
    speed = np.array([REF_SHOT_S / dev.shot_s for dev in ex.spec])
    split = dict.fromkeys(PARTS, 0.0)
    for d in range(n):
        jobs = sorted((j for j in ex.jobs if j[0] == d), key=lambda j: j[2])
        w = speed[d] / speed.sum()
        if not jobs:
            split["left_out"] += w
            continue
        over = len(jobs) * ex.spec[d].overhead_s
        split["overhead"] += w * over / T
        split["work"] += w * (sum(j[4] for j in jobs) - over) / T
        free = 0.0
        for _, sent, begin, end, _ in jobs:
            if begin > free:  # idle from free to begin: before the job was sent, starved
                starved = max(0.0, min(sent, begin) - free)
                split["starved"] += w * starved / T
                split["queue"] += w * (begin - free - starved) / T
            free = max(free, end)
        split["tail"] += w * (T - free) / T
    work1 = sum(j[4] - ex1.spec[0].overhead_s for j in ex1.jobs)
    return {
        "devices": n,
        "seed": seed,
        "replica": replica,
        "speedup": round(T1 / T, 3),
        "speed": round(float(speed.sum()), 2),
        "T1_factor": round(T1 / work1, 4),
        "step_s": [round(float(np.percentile(gaps, q)), 1) for q in (50, 90, 100)],
        "stall_share": round(float(np.sum(np.maximum(gaps - np.median(gaps), 0.0))) / T, 4),
        **{k: round(v, 4) for k, v in split.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=16)
    parser.add_argument("--seeds", choices=("dev", "fresh"), default="dev")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import qnn

    start = time.perf_counter()
    seeds = qnn.DEV_SEEDS if args.seeds == "dev" else qnn.FRESH_SEEDS
    n = args.devices
    if args.quick:
        seeds, n = seeds[:1], 8
    runs = [profile(n, s, r) for s in seeds for r in range(args.replicas)]
    out: dict[str, Any] = {
        "devices": n,
        "speedup": round(float(np.mean([r["speedup"] for r in runs])), 3),
        **{k: round(float(np.mean([r[k] for r in runs])), 4) for k in (*PARTS, "stall_share")},
        "runs": runs,
        "command": "python tests/benchmarks/qnn_idle.py " + " ".join(sys.argv[1:]),
        "seeds": list(seeds),
        "wall_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    sys.path.insert(0, os.path.dirname(os.path.dirname(here)))
    main()
