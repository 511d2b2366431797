"""``multiqpu simulate``: ask the scheduler "what if" on simulated devices, in virtual time."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_simulate_command", "run_simulate"]

_POLICIES = ("balanced", "fastest", "most_accurate", "cheapest")


def _count(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_simulate_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register ``simulate`` on the ``multiqpu`` parser's subcommands."""
    sim = commands.add_parser(
        "simulate",
        parents=[common],
        help="what if: the scheduler on N simulated devices and M circuits, in virtual time",
        description=(
            "Run multiqpu's scheduler (the same placement core as fleet.sample) against "
            "simulated QPUs on a virtual clock: heavy-tailed queues with a daily cycle, "
            "speeds, noise, failures. With 10 devices the benchmark's reference fleet is used; "
            "other counts draw devices from the same archetypes (IBM Heron/Eagle, IQM, "
            "Rigetti, IonQ). Prints the makespan, per-device work and mean fidelity."
        ),
    )
    sim.add_argument("--devices", type=_count, default=10, metavar="N", help="default: 10")
    sim.add_argument("--circuits", type=_count, default=2000, metavar="M", help="default: 2000")
    sim.add_argument("--shots", type=_count, default=4000, help="per circuit (default: 4000)")
    sim.add_argument("--policy", choices=_POLICIES, default="balanced")
    sim.add_argument("--seed", type=int, default=0, help="queue and workload seed (default: 0)")
    sim.add_argument(
        "--history", action="store_true", help="start from what a run two hours earlier learned"
    )
    sim.add_argument(
        "--compare", action="store_true", help="also run least-busy and round-robin baselines"
    )
    sim.add_argument("--bound", action="store_true", help="compute the fluid lower bound")
    sim.add_argument("--json", action="store_true", help="print a JSON object")
    sim.add_argument(
        "--seeds",
        type=_count,
        default=1,
        metavar="K",
        help="a sweep: K runs, seeds SEED..SEED+K-1, one engine task each (default: 1)",
    )
    sim.add_argument(
        "--engine",
        choices=("local", "ray"),
        default=None,
        help="where a sweep's runs go (default: $MULTIQPU_ENGINE, the config file, local)",
    )
    sim.set_defaults(handler=run_simulate)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _sweep(args: argparse.Namespace) -> int:
    """``--seeds K``: K independent runs fanned out over the engine; per-seed makespans and
    their p50/p90/max."""
    import numpy as np

    from multiqpu.engine import simulate_many

    common = {"devices": args.devices, "circuits": args.circuits, "shots": args.shots,
              "policy": args.policy, "history": args.history, "bound": args.bound,
              "compare": args.compare}  # fmt: skip
    seeds = list(range(args.seed, args.seed + args.seeds))
    rows = simulate_many([{**common, "seed": s} for s in seeds], engine=args.engine)
    spans = np.array([r["makespan_s"] for r in rows])
    p50, p90, top = (float(np.percentile(spans, q)) for q in (50, 90, 100))
    summary: dict[str, Any] = {
        "seeds": seeds,
        "makespan_s": [float(x) for x in spans],
        "makespan_p50_p90_max_s": [p50, p90, top],
        "mean_fidelity": [float(r["mean_fidelity"]) for r in rows],
        "lower_bound_s": [r["lower_bound_s"] for r in rows],
        "baselines": [r["baselines"] for r in rows],
    }
    if args.json:
        json.dump(summary, sys.stdout, default=float)
        sys.stdout.write("\n")
        return 0
    from multiqpu.cli._format import console

    out = console()
    for seed, span, row in zip(seeds, spans, rows, strict=True):
        extra = "".join(
            f", {name.replace('_', '-')} {_hours(base['makespan_s'])}"
            for name, base in row["baselines"].items()
        )
        if row["lower_bound_s"] is not None:
            extra += f", fluid bound {_hours(row['lower_bound_s'])}"
        out.print(
            f"seed {seed}: makespan {_hours(float(span))}, mean fidelity "
            f"{row['mean_fidelity']:.4f}{extra}"
        )
    out.print(f"makespan p50 {_hours(p50)}, p90 {_hours(p90)}, max {_hours(top)}")
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    from multiqpu.scheduler import simulate

    if args.seeds > 1 or args.engine is not None:
        return _sweep(args)
    result = simulate(
        args.devices,
        args.circuits,
        shots=args.shots,
        policy=args.policy,
        seed=args.seed,
        history=args.history,
        compare=args.compare,
        bound=args.bound,
    )
    data: dict[str, Any] = result.to_dict()
    if args.json:
        json.dump(data, sys.stdout, default=float)
        sys.stdout.write("\n")
        return 0
    from rich.table import Table

    from multiqpu.cli._format import console

    out = console()
    table = Table(
        title=f"{result.circuits} circuits on {result.devices} simulated devices "
        f"({result.policy}): makespan {_hours(result.makespan_s)}",
        title_justify="left",
    )
    for name in ("device", "jobs", "circuits", "mean wait", "busy", "mean fidelity"):
        table.add_column(name, justify="left" if name == "device" else "right")
    for row in result.per_device:
        if not row["jobs"]:
            continue
        table.add_row(
            str(row["device"]),
            str(row["jobs"]),
            str(row["circuits"]),
            _hours(row["mean_wait_s"] or 0.0),
            _hours(row["busy_s"]),
            f"{row['mean_fidelity']:.3f}" if row["mean_fidelity"] is not None else "-",
        )
    out.print(table)
    lines = [
        f"mean estimated fidelity {result.mean_fidelity:.4f}; {result.jobs} jobs, "
        f"{result.hedges} hedges, {result.steals} steals; {result.placements_per_s:,.0f} "
        f"placements/s; simulated in {result.wall_s:.1f} s"
    ]
    if result.lower_bound_s is not None:
        lines.append(
            f"fluid lower bound {_hours(result.lower_bound_s)} "
            f"(makespan is {result.makespan_s / result.lower_bound_s:.2f}x)"
        )
    for name, base in result.baselines.items():
        lines.append(
            f"{name.replace('_', '-')}: makespan {_hours(base['makespan_s'])} "
            f"({base['makespan_s'] / result.makespan_s:.1f}x slower), mean fidelity "
            f"{base['mean_fidelity']:.4f}"
        )
    for line in lines:
        out.print(line)
    return 0
