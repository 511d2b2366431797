"""``multiqpu demo``: one GHZ circuit on every default device at once, then a batch of GHZ
circuits placed by the scheduler (its run report shows which devices it preferred and why)."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.cli import _format as fmt
from multiqpu.errors import MultiQPUError

__all__ = [
    "FLOOR",
    "MARGIN",
    "ghz",
    "ghz_fidelity",
    "run_demo",
    "run_on_device",
    "run_on_fleet",
    "schedule_batch",
]

MARGIN = 0.02  # the balanced policy's default fidelity margin (the run's mean)
FLOOR = 0.10  # and its per-circuit floor below the best device (5 margins)

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import Device
    from multiqpu.fleet import Fleet


def ghz(n: int) -> QuantumCircuit:
    """|0...0> + |1...1> over ``n`` qubits, measured."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n, name=f"ghz{n}")
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    qc.measure_all()
    return qc


def run_demo(args: argparse.Namespace) -> int:
    from multiqpu.fleet import Fleet

    fleet = Fleet.local(time_scale=args.time_scale)
    circuit = ghz(args.qubits)
    if not args.json:
        fmt.console().print(
            f"Running a {args.qubits}-qubit GHZ circuit ({args.shots} shots) on "
            f"{len(fleet)} devices at once: {', '.join(d.spec for d in fleet)}"
        )
    summary = asyncio.run(run_on_fleet(fleet, circuit, args.shots))
    if not args.json:
        _print_table(summary)
    failed = any(d["status"] == "failed" for d in summary["devices"])
    if args.batch:
        try:
            estimates = {r["spec"]: r["estimated_fidelity"] for r in summary["devices"]}
            summary["scheduled"] = asyncio.run(
                schedule_batch(
                    fleet,
                    args.batch,
                    args.qubits,
                    args.shots,
                    quiet=args.json,
                    estimates=estimates,
                )
            )
        except MultiQPUError as exc:
            summary["scheduled"] = {"error": fmt.one_line(exc)}
            failed = True
            if not args.json:
                fmt.console().print(f"[red]scheduled batch failed[/red]: {fmt.one_line(exc)}")
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 1 if failed else 0


async def schedule_batch(
    fleet: Fleet,
    count: int,
    qubits: int,
    shots: int,
    *,
    quiet: bool = False,
    estimates: dict[str, float | None] | None = None,
) -> dict[str, Any]:
    """``count`` GHZ circuits placed by the scheduler (balanced policy) on the fleet's
    QPU-like devices; prints the run report unless ``quiet`` (``estimates``: each device's
    estimated fidelity for one such circuit, to say why a device was left alone); a
    JSON-ready summary."""
    from multiqpu.scheduler import demo_batch

    # a sub-pool shares what the fleet's pool learned about its devices
    qpus = fleet.pool.where(lambda d: not d.exact and d.num_qubits >= qubits)
    if not quiet:
        fmt.console().print(
            f"\nScheduling {count} GHZ circuits ({shots} shots each) over "
            f"{len(qpus)} noisy devices with the balanced policy "
            "(the noiseless simulator is left out: it would win every circuit)..."
        )
    result = await demo_batch(
        qpus, circuits=count, qubits=qubits, shots=shots, journal=True, cache=False
    )
    report = result.report
    if not quiet:
        _print_report(report, estimates or {})
    return report.to_dict()


def _print_report(report: Any, estimates: dict[str, float | None]) -> None:
    console = fmt.console()
    console.print()
    console.print(report.table())
    used = sorted(
        (d for d in report.devices if d.circuits),
        key=lambda d: -d.circuits,
    )
    idle = [d for d in report.devices if not d.circuits]
    if used:
        top = used[0]
        console.print(
            f"Most work went to {top.device} ({top.circuits} of {report.circuits} circuits, "
            f"est. fidelity {top.mean_estimated_fidelity or 0:.3f}, "
            f"reported queue {fmt.seconds(top.reported_wait_s)})."
        )
    known = [f for f in estimates.values() if f is not None and f < 1.0]
    best = max(known) if known else None
    if best is not None and report.mean_estimated_fidelity is not None:
        console.print(
            f"Mean est. fidelity {report.mean_estimated_fidelity:.3f} against {best:.3f} on "
            f"the best device: balanced keeps the run's mean within {MARGIN:.0%} of the most "
            f"accurate placement and no circuit more than {FLOOR:.0%} below its best device, "
            "and within that finishes as early as it can (short queues first), unless that "
            "plan would take more than max_slowdown (1.5x) the fastest plan's time: then it "
            "gives up the least fidelity it must."
        )
        if report.bound_by:
            console.print(f"This run was bound by {report.bound_by} (report.limits).")
    floor = (1.0 - FLOOR) * best if best is not None else None
    for d in idle:
        est = estimates.get(d.device)
        queue = f"reported queue {fmt.seconds(d.reported_wait_s)}"
        if est is not None and floor is not None and est < floor and not report.bound_by:
            why = (
                f"too noisy, est. fidelity {est:.3f} is more than {FLOOR:.0%} below the "
                f"best ({best:.3f})"
            )
        elif est is not None and best is not None:
            why = (
                f"est. fidelity {est:.3f}: the fidelity budget or the finishing time "
                "favoured the others"
            )
        else:
            why = "not needed"
        console.print(f"Left alone: {d.device} ({queue}): {why}.")
    console.print(
        f"[dim]Recorded in the job journal as run {report.run_id}: see multiqpu runs.[/dim]"
    )


async def run_on_fleet(fleet: Fleet, circuit: QuantumCircuit, shots: int) -> dict[str, Any]:
    """Run ``circuit`` on every device concurrently; a JSON-ready summary."""
    start = time.perf_counter()
    rows = await asyncio.gather(*(run_on_device(d, circuit, shots) for d in fleet))
    return {
        "circuit": circuit.name,
        "qubits": circuit.num_qubits,
        "shots": shots,
        "wall_s": time.perf_counter() - start,
        "devices": list(rows),
    }


def ghz_fidelity(distribution: dict[str, float], n: int) -> float:
    """P(0...0) + P(1...1): the GHZ population fidelity."""
    return distribution.get("0" * n, 0.0) + distribution.get("1" * n, 0.0)


async def run_on_device(dev: Device, circuit: QuantumCircuit, shots: int) -> dict[str, Any]:
    """One device's row. Failures are reported in the row, not raised."""
    row: dict[str, Any] = {
        "spec": dev.spec,
        "provider": dev.provider,
        "status": "ok",
        "queue_wait_s": None,
        "run_s": None,
        "estimated_fidelity": None,
        "fidelity": None,
        "fidelity_se": None,
        "cost_usd": None,
        "counts": None,
        "error": None,
    }
    n = circuit.num_qubits
    if n > dev.num_qubits:
        row.update(status="skipped", error=f"needs {n} qubits, device has {dev.num_qubits}")
        return row
    try:
        result = await dev.run([circuit], shots=shots)
        # after the run the device's transpilation is cached
        isa = await asyncio.to_thread(dev.transpile, circuit)
        row["estimated_fidelity"] = dev.calibration().estimated_fidelity(isa)
        row["cost_usd"] = dev.estimate_cost([circuit], shots).total_usd
    except MultiQPUError as exc:
        row.update(status="failed", error=fmt.one_line(exc))
        return row
    res = result[0]
    fidelity = ghz_fidelity(res.distribution(), n)
    sampled = res.shots or sum(res.counts.values())
    row.update(
        queue_wait_s=result.timings.queue_s,
        run_s=result.timings.execution_s,
        fidelity=fidelity,
        fidelity_se=(
            math.sqrt(fidelity * (1 - fidelity) / sampled)
            if res.probabilities is None and sampled
            else 0.0
        ),
        counts=dict(sorted(res.counts.items(), key=lambda kv: -kv[1])),
    )
    return row


def _fidelity_text(row: dict[str, Any]) -> str:
    if row["fidelity"] is None:
        return "-"
    return f"{row['fidelity']:.3f} ± {row['fidelity_se']:.3f}"


def _print_table(summary: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    rows: Sequence[dict[str, Any]] = summary["devices"]
    table = Table(
        title=f"{summary['qubits']}-qubit GHZ, {summary['shots']} shots per device",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    table.add_column("Device", no_wrap=True)
    table.add_column("Queue wait", justify="right", no_wrap=True)
    table.add_column("Run time", justify="right", no_wrap=True)
    table.add_column("Est. fidelity", justify="right")
    table.add_column("Measured F", justify="right", no_wrap=True)
    table.add_column("Cost", justify="right")
    for row in rows:
        if row["status"] != "ok":
            style = "yellow" if row["status"] == "skipped" else "red"
            table.add_row(row["spec"], f"[{style}]{row['status']}[/{style}]", "", "", "", "")
            continue
        est = row["estimated_fidelity"]
        table.add_row(
            row["spec"],
            fmt.seconds(row["queue_wait_s"]),
            fmt.seconds(row["run_s"]),
            "-" if est is None else f"{est:.3f}",
            _fidelity_text(row),
            "free" if not row["cost_usd"] else fmt.usd(row["cost_usd"]),
        )
    console = fmt.console()
    console.print()
    console.print(table)
    console.print()
    done = [r for r in rows if r["status"] == "ok"]
    busy = sum((r["queue_wait_s"] or 0) + (r["run_s"] or 0) for r in done)
    console.print(
        f"{len(done)} of {len(rows)} devices finished in {summary['wall_s']:.1f} s "
        f"(their queue waits and run times add up to {busy:.1f} s: they ran concurrently)."
    )
    noisy = [r for r in done if r["fidelity"] is not None and r["estimated_fidelity"] != 1.0]
    if noisy:
        best = max(noisy, key=lambda r: r["fidelity"])
        console.print(
            f"Best noisy device for this circuit: {best['spec']} ({_fidelity_text(best)})."
        )
    console.print(
        "[dim]Measured F: P(0..0) + P(1..1) ± its standard error. Est. fidelity: the "
        "product of (1 - error) over the operations of the circuit as the device transpiles "
        "it. Queues are simulated and time-scaled. Next: multiqpu devices.[/dim]"
    )
    for row in rows:
        if row["error"]:
            console.print(f"[red]{row['spec']}[/red]: {row['error']}", soft_wrap=True)
