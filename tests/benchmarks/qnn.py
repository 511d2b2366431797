"""Benchmark: data-parallel QNN training on 1, 2, 4, 8 and 16 simulated QPUs (virtual clock),
and model-parallel (cut) training against uncut training.

Workloads (``tests/benchmarks/qnn_tasks.py``): an 8-qubit re-uploading classifier
(2 layers, 32 weights, 65 circuits per sample with parameter-shift gradients) on
scikit-learn's breast-cancer data reduced to 8 features by PCA (400 training / 169 test
samples), and an 8-qubit classifier of transverse-field Ising ground states (prepared by a
4-layer Hamiltonian variational circuit; 64 training / 32 test states) by phase. Fleets:
devices drawn like the scheduler benchmark's reference fleet (IBM Heron/Eagle archetypes in
sessions, IQM Garnet and Rigetti Ankaa-3 queueing every task; per-job overheads 3-12 s,
speeds +-25 %, queue medians 5 s to ~6 min); device 0 is a Heron r2 at its archetype
figures, and the N-device fleet is the first N devices of the seed's 16.

Training: Adam 0.1, batch 32 (8 on the 64-state quantum task), 1024 shots, 3 epochs
(classical) or 8 (quantum), the trainer's default strategy (``Trainer()`` as a user gets
it) unless ``--compare`` also runs the others at 8 devices. Results are exact simulations
with shot noise drawn per estimate (binomial for one Pauli term).

Figures (each over the seeds, paired by seed):

* ``speedup.N`` = mean over seeds of T(1 device) / T(N devices), T the virtual time of the
  whole training; ``speedup_se.N`` its standard error, ``speedup_range.N`` the smallest
  and largest seed, ``speedup_per_seed.N`` every seed's (and ``accuracy_gap_per_seed.N``);
* ``accuracy.N``: mean exact test accuracy of the trained weights (noise-free evaluation);
  ``accuracy_gap_paired.N``: mean over seeds of accuracy(N) - accuracy(1) on the same seed
  (same initial weights and data order), ``accuracy_gap_paired_se.N`` its standard error;
* ``quantum_task_accuracy.N``: mean test accuracy on the Ising phase task;
* ``cut_training_matches_uncut``: a 3-qubit classifier trained through cutting on 2-qubit
  devices (every circuit through the estimate pipeline, cut in two) against the same model
  trained uncut on a 3-qubit device: 4 samples, batch 2, 3 epochs (6 synchronous Adam
  steps, learning rate 0.2), 2,000 shots; same initial weights, data order and shots; the uncut
  and the cut trainings are each repeated with ``CUT_REPEATS`` device seeds, and the mean
  final loss (exact, on the training samples) of the cut runs must lie within 2 standard
  errors of the uncut mean (the standard error of the difference of the two means). Until
  2026-12-04 one cut run was compared against the spread of the uncut runs alone; cut runs
  vary more (each estimate is a quasi-probability sum over sub-experiments), so that test
  failed without any bias (cut runs 0.086-0.093 around the exact-gradient training's 0.090).

Seeds: development used seeds 0-4 (``--seeds dev``); the reported figures are on seeds
100-104, never used while developing (default); ``--seeds FIRST-LAST`` runs another range
(200-204 for the figures of 2026-12-05, never used before; 300-304 for round 5's,
400-404 for round 6's, developed on seeds 10-39; 500-504 for round 7's, developed on
10-39, 200-204, 300-304 and 400-404). ``--quick`` (for the tests):
2 seeds, 1, 4 and 8 devices, 1 epoch on 128 samples, 2 cut repeats. The curves are drawn to
docs/qnn_scaling.png (``--plot PATH`` to change, ``--plot ''`` for none).

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

DEVICES = (1, 2, 4, 8, 16)
DEV_SEEDS = (0, 1, 2, 3, 4)
FRESH_SEEDS = (100, 101, 102, 103, 104)
SHOTS = 1024
EPOCHS = 3
QUANTUM_EPOCHS = 8
CUT_REPEATS = 6
STRATEGIES: dict[str, dict[str, Any]] = {
    "default": {},
    "async": {"aggregation": "async", "staleness": "none"},
    "async_scale": {"aggregation": "async", "staleness": "scale"},
    "async_compensate": {"aggregation": "async", "staleness": "compensate"},
    "sync": {"aggregation": "sync", "backup": 0, "pipeline": 0},
    "sync_backup": {"aggregation": "sync", "backup": "auto", "pipeline": 0},
    "sync_pipelined": {"aggregation": "sync", "backup": 0, "pipeline": 1},
    "sync_pipelined_backup": {"aggregation": "sync", "backup": "auto", "pipeline": 1},
    "local": {"aggregation": "local"},
}


def run(task: str, strategy: str, n: int, seed: int, quick: bool) -> dict[str, Any]:
    """Train once; virtual seconds, exact test accuracy, final loss, staleness, shares."""
    import qnn_tasks as tasks

    from multiqpu.qnn import Trainer, VirtualExecutor, variational_classifier

    if task == "classical":
        Xtr, ytr, Xte, yte = tasks.breast_cancer()
        model = variational_classifier(8, 2, layers=tasks.LAYERS)
        batch, epochs = 32, EPOCHS
    else:
        A, y, _ = tasks.ising_phases(96)
        Xtr, ytr, Xte, yte = A[:64], y[:64], A[64:], y[64:]
        model = tasks.ising_model()
        batch, epochs = 8, QUANTUM_EPOCHS
    if quick:
        Xtr, ytr, epochs = Xtr[:128], ytr[:128], 1
    trainer = Trainer(
        model,  # type: ignore[arg-type]
        executor=VirtualExecutor(tasks.fleet(n, seed), seed=seed),  # type: ignore[arg-type]
        shots=SHOTS,
        batch_size=batch,
        learning_rate=0.1,
        progress=False,
        seed=seed,
        **STRATEGIES[strategy],
    )
    history = trainer.fit(Xtr, ytr, epochs=epochs)
    return {
        "seconds": trainer.executor.now(),
        "accuracy": trainer.exact_score(Xte, yte),
        "loss": history.epochs[-1].loss,
        "staleness": float(np.mean([e.staleness for e in history.epochs])),
        "aggregation": trainer.aggregation,
        "backup": trainer.backup,
        "pipeline": trainer.pipeline,
    }


def _curve(task: str, strategy: str, devices: tuple[int, ...], seeds: tuple[int, ...],
           quick: bool) -> dict[int, list[dict[str, Any]]]:  # fmt: skip
    return {n: [run(task, strategy, n, s, quick) for s in seeds] for n in devices}


def _summary(runs: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    base = runs[min(runs)]
    out: dict[str, Any] = {"speedup": {}, "speedup_se": {}, "speedup_range": {},
                           "speedup_per_seed": {}, "accuracy": {}, "accuracy_gap_paired": {},
                           "accuracy_gap_paired_se": {}, "accuracy_gap_per_seed": {},
                           "staleness": {}}  # fmt: skip
    for n, rs in runs.items():
        sp = [b["seconds"] / r["seconds"] for b, r in zip(base, rs, strict=True)]
        gap = [r["accuracy"] - b["accuracy"] for b, r in zip(base, rs, strict=True)]
        k = str(n)
        out["speedup"][k] = round(float(np.mean(sp)), 2)
        out["speedup_range"][k] = [round(min(sp), 2), round(max(sp), 2)]
        out["speedup_se"][k] = round(_se(sp), 3)
        out["speedup_per_seed"][k] = [round(v, 2) for v in sp]
        out["accuracy_gap_per_seed"][k] = [round(v, 4) for v in gap]
        out["accuracy"][k] = round(float(np.mean([r["accuracy"] for r in rs])), 3)
        out["accuracy_gap_paired"][k] = round(float(np.mean(gap)), 4)
        out["accuracy_gap_paired_se"][k] = round(_se(gap), 4)
        out["staleness"][k] = round(float(np.mean([r["staleness"] for r in rs])), 2)
    return out


def _se(values: list[float]) -> float:
    """The standard error of the mean of ``values`` (0 for one value)."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def cut_training(repeats: int) -> dict[str, Any]:
    """Cut training on 2-qubit devices vs uncut training on a 3-qubit device."""
    import multiqpu
    from multiqpu.pool import DevicePool
    from multiqpu.qnn import Trainer, variational_classifier

    rng = np.random.default_rng(11)
    # two clusters of angles, one per class
    X = np.concatenate([rng.normal(0.6, 0.25, (2, 3)), rng.normal(2.5, 0.25, (2, 3))])
    y = np.array([0, 0, 1, 1])
    model = variational_classifier(3, 2, layers=1)
    kw: dict[str, Any] = {"shots": 2000, "batch_size": 2, "learning_rate": 0.2,
                          "progress": False, "seed": 5, "aggregation": "sync"}  # fmt: skip

    def final_loss(trainer: Trainer) -> float:
        p = trainer.loss.probabilities(model.exact_outputs(X, trainer.weights))
        return float(np.mean(-np.log(p[np.arange(len(y)), y])))

    uncut = []
    for r in range(repeats):
        fleet = DevicePool([multiqpu.device("local:ideal", num_qubits=3, seed=100 + r)])
        t = Trainer(model, fleet, **kw)
        t.fit(X, y, epochs=3)
        uncut.append(final_loss(t))
    start = time.perf_counter()
    cut_losses = []
    for r in range(repeats):  # the cut run has its own shot noise: repeat it as well
        small = DevicePool([multiqpu.device("local:ideal", num_qubits=2, seed=7 + 2 * r + i,
                                            label=f"two{i}") for i in range(2)])  # fmt: skip
        cut = Trainer(model, small, cut_options={"use_scheduler": False}, **kw)
        cut.fit(X, y, epochs=3)
        cut_losses.append(final_loss(cut))
    mean, sd = float(np.mean(uncut)), float(np.std(uncut, ddof=1))
    cut_mean, cut_sd = float(np.mean(cut_losses)), float(np.std(cut_losses, ddof=1))
    se = float(np.sqrt(sd**2 / repeats + cut_sd**2 / repeats))  # of the difference of means
    initial = float(np.mean(-np.log(cut.loss.probabilities(
        model.exact_outputs(X, model.init_weights(5)))[np.arange(len(y)), y])))  # fmt: skip
    return {
        "cut_training_matches_uncut": bool(abs(cut_mean - mean) <= 2 * se),
        "cut_loss": round(cut_mean, 4),
        "cut_loss_sd": round(cut_sd, 4),
        "uncut_loss_mean": round(mean, 4),
        "uncut_loss_sd": round(sd, 4),
        "initial_loss": round(initial, 4),
        "cut_z": round((cut_mean - mean) / se, 2) if se > 0 else None,
        "cut_wall_s": round(time.perf_counter() - start, 1),
        "cut_executor": cut.executor.names[0],
    }


def plot(path: str, curves: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_s, ax_a) = plt.subplots(1, 2, figsize=(10, 4))
    for label, c in curves.items():
        ns = [int(k) for k in c["speedup"]]
        ax_s.plot(ns, list(c["speedup"].values()), "o-", label=label)
        ax_a.errorbar(ns, list(c["accuracy_gap_paired"].values()),
                      yerr=[2 * v for v in c["accuracy_gap_paired_se"].values()],
                      fmt="o-", capsize=3, label=label)  # fmt: skip
    top = max(int(k) for c in curves.values() for k in c["speedup"])
    ax_s.plot([1, top], [1, top], ":", color="grey", label="linear")
    ax_s.set(xlabel="devices", ylabel="speedup (virtual time)", title="speedup")
    ax_a.axhline(0, color="grey", lw=0.8)
    ax_a.axhline(-0.02, color="red", ls=":", lw=0.8, label="-0.02")
    ax_a.set(xlabel="devices", ylabel="accuracy(N) - accuracy(1), paired",
             title="accuracy gap (mean, 2 s.e.)")  # fmt: skip
    for ax in (ax_s, ax_a):
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _seeds(name: str) -> tuple[int, ...]:
    if name == "dev":
        return DEV_SEEDS
    if name == "fresh":
        return FRESH_SEEDS
    first, _, last = name.partition("-")
    if not (first.isdigit() and last.isdigit() and int(first) <= int(last)):
        raise SystemExit(f"--seeds: dev, fresh or FIRST-LAST, not {name!r}")
    return tuple(range(int(first), int(last) + 1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", default="fresh",
                        help="dev, fresh, or a range FIRST-LAST of other fresh seeds")  # fmt: skip
    parser.add_argument("--compare", action="store_true",
                        help="also run every strategy at 8 devices")  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--plot", default=os.path.join(root, "docs", "qnn_scaling.png"))
    args = parser.parse_args()
    start = time.perf_counter()
    seeds = _seeds(args.seeds)
    devices = DEVICES
    if args.quick:
        seeds, devices = seeds[:2], (1, 4, 8)
    top = max(devices)
    classical = _summary(_curve("classical", "default", devices, seeds, args.quick))
    quantum = _summary(_curve("quantum", "default", (1, 8), seeds, args.quick))
    out: dict[str, Any] = {
        "speedup.8": classical["speedup"]["8"],
        f"speedup.{top}": classical["speedup"][str(top)],
        "speedup_se.8": classical["speedup_se"]["8"],
        f"speedup_se.{top}": classical["speedup_se"][str(top)],
        "accuracy_gap_paired.8": classical["accuracy_gap_paired"]["8"],
        "accuracy_gap_paired_se.8": classical["accuracy_gap_paired_se"]["8"],
        "quantum_task_accuracy.8": quantum["accuracy"]["8"],
    }
    out.update(cut_training(2 if args.quick else CUT_REPEATS))
    out["classical"] = classical
    out["quantum"] = quantum
    if args.compare:
        out["strategies_at_8"] = {
            name: _summary(_curve("classical", name, (1, 8), seeds, args.quick))
            for name in STRATEGIES
            if name != "default"
        }
    if args.plot:
        curves = {"breast cancer (8 qubits)": classical, "Ising phases (8 qubits)": quantum}
        plot(args.plot, curves)
    first = run("classical", "default", 2, seeds[0], True)
    out["settings"] = {
        "command": "python tests/benchmarks/qnn.py " + " ".join(sys.argv[1:]),
        "seeds": list(seeds),
        "seed_set": "development" if args.seeds == "dev" else "fresh (unused in development)",
        "devices": list(devices),
        "shots": SHOTS,
        "epochs": {
            "classical": 1 if args.quick else EPOCHS,
            "quantum": 1 if args.quick else QUANTUM_EPOCHS,
        },
        "default_strategy": {
            "aggregation": first["aggregation"],
            "backup": "auto",
            "pipeline": first["pipeline"],
        },
    }
    out["wall_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    sys.path.insert(0, os.path.dirname(os.path.dirname(here)))
    main()
