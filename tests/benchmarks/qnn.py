"""Benchmark: data-parallel QNN training on 1, 2, 4 and 8 simulated QPUs (virtual clock).

A 2-qubit data re-uploading classifier (3 layers, 12 weights, 25 circuits per sample with
parameter-shift gradients) learns scikit-learn's make_moons (400 training, 100 test
points) with Adam, batch 32, 512 shots, for a few epochs. Each simulated device waits in a
lognormal queue (median 5 s, sigma 0.8) per job, pays 2 s per job and 0.2 ms per shot (about
0.1 s per circuit), runs one job at a time and takes up to 2 jobs in flight; results are
exact simulations sampled with the shots. Device speeds vary by +-20% (device 0 is the
reference speed), so N devices are N different QPUs.

The trainer runs with its defaults: asynchronous shards are sized and kept in flight by the
rules of multiqpu/qnn/_pipeline.py (per-job overhead at most 10 % of a shard's measured run
time, ceil(queue wait / run time) + 1 shards in flight within the device's limit of 2,
expected staleness at most max_staleness - 1 = 3 versions); the JSON line reports the plan
the trainer ended with on each fleet (first seed) under ``settings``.

Epoch time is virtual seconds (the mean over the epochs); speedup(N) = T(1) / T(N) in the
same aggregation mode. Accuracy is exact (noise-free evaluation of the trained weights on
the test set), mean over the seeds. Prints one JSON line; ``speedup``/``accuracy`` are the
asynchronous (K-async, bounded staleness) trainer, ``sync`` holds the synchronous one.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

DEVICES = (1, 2, 4, 8)
EPOCHS = 4
SEEDS = (0, 1, 2)


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    X, y = make_moons(500, noise=0.1, random_state=0)
    X = (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi
    return X[:400], y[:400], X[400:], y[400:]


def fleet(n: int, seed: int) -> list[object]:
    from multiqpu.qnn import VirtualDevice

    rng = np.random.default_rng(1000 + seed)
    speeds = np.concatenate([[1.0], rng.uniform(0.8, 1.2, 7)])
    return [VirtualDevice(f"sim{i}", shot_s=2e-4 / speeds[i]) for i in range(n)]


def run(aggregation: str, n: int, seed: int) -> tuple[float, float, float, dict[str, object]]:
    from multiqpu.qnn import Trainer, VirtualExecutor, variational_classifier

    Xtr, ytr, Xte, yte = data()
    model = variational_classifier(2, 2, layers=3)
    trainer = Trainer(
        model,
        executor=VirtualExecutor(fleet(n, seed), seed=seed),  # type: ignore[arg-type]
        shots=512,
        batch_size=32,
        learning_rate=0.1,
        aggregation=aggregation,  # type: ignore[arg-type]
        progress=False,
        seed=seed,
    )
    history = trainer.fit(Xtr, ytr, epochs=EPOCHS)
    epoch_s = float(np.mean([e.seconds for e in history.epochs]))
    info = {
        "plan": trainer.plan.to_dict() if trainer.plan is not None else None,
        "dropped": sum(e.dropped for e in history.epochs),
        "updates": trainer.version,
        "max_staleness": trainer.max_staleness,
    }
    return epoch_s, trainer.exact_score(Xte, yte), history.epochs[-1].loss, info


def main() -> None:
    start = time.perf_counter()
    from multiqpu.qnn._pipeline import MAX_OVERHEAD

    out: dict[str, object] = {"devices": list(DEVICES), "epochs": EPOCHS, "seeds": len(SEEDS)}
    settings: dict[str, object] = {
        "command": "python tests/benchmarks/qnn.py",
        "model": "variational_classifier(2, 2, layers=3)",
        "data": "make_moons(500, noise=0.1, random_state=0), 400 train / 100 test",
        "shots": 512,
        "batch_size": 32,
        "learning_rate": 0.1,
        "optimizer": "adam",
        "seeds": list(SEEDS),
        "fleet": "VirtualDevice(queue median 5 s, sigma 0.8, overhead 2 s/job, "
        "0.2 ms/shot / speed U(0.8,1.2), 2 jobs in flight max)",
        "max_overhead": MAX_OVERHEAD,
    }
    for aggregation in ("async", "sync"):
        times: dict[int, float] = {}
        acc: dict[int, list[float]] = {}
        infos: dict[int, list[dict[str, object]]] = {}
        for n in DEVICES:
            runs = [run(aggregation, n, s) for s in SEEDS]
            times[n] = float(np.mean([r[0] for r in runs]))
            acc[n] = [r[1] for r in runs]
            infos[n] = [r[3] for r in runs]
        block = {
            "epoch_s": {str(n): round(t, 1) for n, t in times.items()},
            "speedup": {str(n): round(times[1] / t, 2) for n, t in times.items()},
            "efficiency": {str(n): round(times[1] / t / n, 3) for n, t in times.items()},
            "accuracy": {str(n): round(float(np.mean(a)), 3) for n, a in acc.items()},
            "accuracy_std": {str(n): round(float(np.std(a)), 3) for n, a in acc.items()},
            "accuracy_per_seed": {str(n): [round(x, 3) for x in a] for n, a in acc.items()},
        }
        if aggregation == "async":
            out.update(block)
            out["dropped"] = {str(n): [i["dropped"] for i in v] for n, v in infos.items()}
            settings["max_staleness"] = infos[1][0]["max_staleness"]
            settings["plan"] = {str(n): v[0]["plan"] for n, v in infos.items()}
        else:
            out["sync"] = block
    speed = out["speedup"]
    assert isinstance(speed, dict)
    out["target_met"] = all(speed[str(n)] >= 0.8 * n for n in DEVICES)
    out["settings"] = settings
    out["wall_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    main()
