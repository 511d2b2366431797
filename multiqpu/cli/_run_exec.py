"""``multiqpu run``'s two modes: sample the circuits, or estimate observables on them."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.cli import _format as fmt
from multiqpu.errors import InvalidInputError, MultiQPUError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.fleet import Fleet

__all__ = ["estimate_all", "measured", "sample_all", "top_counts"]

#: Outcomes shown per circuit in the human-readable table.
TOP = 4


def measured(circuit: QuantumCircuit) -> QuantumCircuit:
    """``circuit`` as is when it measures something, else measured on every qubit."""
    if circuit.num_clbits and any(i.operation.name == "measure" for i in circuit.data):
        return circuit
    return circuit.measure_all(inplace=False)


def top_counts(counts: Any, k: int = TOP) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])[:k]
    more = len(counts) - len(items)
    return " ".join(f"{b}:{n}" for b, n in items) + (f" (+{more})" if more > 0 else "")


def _timeline_spans(reports: Sequence[Any]) -> list[Any]:
    spans = [s for r in reports for s in getattr(r, "timeline", ())]
    return sorted(spans, key=lambda s: s.created_at)


def _plot_timeline(path: str, reports: Sequence[Any], title: str) -> None:
    from multiqpu.plots import timeline

    timeline(_timeline_spans(reports), path, title=title)


def plots(wanted: Sequence[tuple[str | None, Callable[[str], None]]]) -> dict[str, Any]:
    """Draw each requested picture after the results are out: ``{path: None}`` when it was
    written, ``{path: "why not"}`` when it could not be (the run itself stands)."""
    import sys

    done: dict[str, Any] = {}
    for path, draw in wanted:
        if path is None:
            continue
        try:
            draw(path)
            done[path] = None
        except (MultiQPUError, OSError) as exc:
            done[path] = fmt.one_line(exc)
            print(f"multiqpu: error: could not draw {path}: {done[path]}", file=sys.stderr)
    return done


def sample_all(
    fleet: Fleet,
    loaded: list[tuple[str, QuantumCircuit]],
    args: argparse.Namespace,
    mitigation: list[Any] | None,
) -> dict[str, Any]:
    """Sample every circuit once across the fleet; prints the table unless ``--json``;
    returns the JSON summary."""
    from multiqpu.scheduler._progress import wants_progress

    circuits = [measured(c) for _, c in loaded]
    shots = args.shots or 1024
    progress = wants_progress(True, len(circuits))
    result: Any = asyncio.run(
        fleet.sample(circuits, shots, args.policy, mitigation=mitigation, progress=progress)
    )
    if mitigation is None:
        reports: list[Any] = [result.report]
        rows = [
            {"device": r.device, "shots": r.shots, "counts": dict(r.counts), "job_id": r.job_id}
            for r in result.results
        ]
        report_json = json.loads(result.report.to_json())
    else:
        reports = list(result.report.scheduler_reports)
        rows = [
            {
                "device": c.device,
                "shots": c.result.shots,
                "counts": dict(c.counts),
                "quasi_dist": {k: float(v) for k, v in c.quasi_dist.items()},
            }
            for c in result.circuits
        ]
        report_json = result.report.to_dict()
    summary: dict[str, Any] = {
        "mode": "sample",
        "policy": args.policy,
        "mitigation": args.mitigation or [],
        "run_ids": [r.run_id for r in reports],
        "circuits": [
            {"index": i, "file": name, "name": c.name, "qubits": c.num_qubits, **row}
            for i, ((name, c), row) in enumerate(zip(loaded, rows, strict=True))
        ],
        "report": report_json,
    }
    if not args.json:
        _print_samples(summary, reports, mitigation is not None)
    summary["plots"] = plots(
        [(args.plot, lambda p: _plot_timeline(p, reports, ", ".join(summary["run_ids"])))]
    )
    return summary


def _print_samples(summary: dict[str, Any], reports: Sequence[Any], mitigated: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = fmt.console()
    table = Table(title=f"{len(summary['circuits'])} circuit(s)", title_justify="left")
    for name in ("#", "file", "circuit", "device", "shots", "top outcomes"):
        table.add_column(name, no_wrap=name != "top outcomes")
    for c in summary["circuits"]:
        counts = c["quasi_dist"] if mitigated else c["counts"]
        shown = (
            " ".join(f"{b}:{p:.3f}" for b, p in sorted(counts.items(), key=lambda kv: -kv[1])[:TOP])
            if mitigated
            else top_counts(counts)
        )
        name, file = escape(c["name"]), escape(c["file"])
        table.add_row(str(c["index"]), file, name, c["device"], str(c["shots"]), shown)
    out.print(table)
    for report in reports:
        out.print(report.table())
    if summary["run_ids"]:
        out.print(
            f"Recorded in the job journal as run {', '.join(summary['run_ids'])}: "
            "see multiqpu runs show RUN_ID."
        )


def _observables(labels: list[str], circuit: QuantumCircuit, name: str) -> list[str]:
    bad = [p for p in labels if len(p) != circuit.num_qubits or set(p.upper()) - set("IXYZ")]
    if bad:
        raise InvalidInputError(
            f"{name}: observables must be Pauli strings of I, X, Y, Z over its "
            f"{circuit.num_qubits} qubits (qubit 0 rightmost); got {', '.join(bad)}"
        )
    return [p.upper() for p in labels]


def estimate_all(
    fleet: Fleet,
    loaded: list[tuple[str, QuantumCircuit]],
    args: argparse.Namespace,
    mitigation: list[Any] | None,
) -> dict[str, Any]:
    """Estimate the observables on every circuit (cut when no device fits it), the
    circuits concurrently; prints a table unless ``--json``; returns the JSON summary."""
    prepared = [
        (name, c.remove_final_measurements(inplace=False), _observables(args.observable, c, name))
        for name, c in loaded
    ]
    options: dict[str, Any] = {"policy": args.policy}
    if args.shots is not None:
        options["shots"] = args.shots

    async def all_of() -> list[Any]:
        return list(
            await asyncio.gather(
                *(
                    fleet.estimate(c, obs, mitigation=mitigation, **options)
                    for _, c, obs in prepared
                )
            )
        )

    results = asyncio.run(all_of())
    rows, reports = [], []
    for (name, c, _), res in zip(prepared, results, strict=True):
        report = res.report
        reports += list(report.scheduler_reports)
        plan = report.plan
        devices = (
            {d: n for d, (n, _) in report.devices.items()}
            if hasattr(report.devices, "items")  # a mitigation report: device -> (circuits, shots)
            else {d.device: d.circuits for d in report.devices}
        )
        rows.append(
            {
                "file": name,
                "name": c.name,
                "qubits": c.num_qubits,
                "observables": [
                    {"label": lab, "value": v, "std_error": s}
                    for lab, v, s in zip(res.labels, res.values, res.std_errors, strict=True)
                ],
                "cuts": 0 if plan is None else plan.gate_cuts + plan.wire_cuts,
                "fragments": 1 if plan is None else len(plan.fragments),
                "devices": devices,
                "run_ids": [r.run_id for r in report.scheduler_reports],
            }
        )
    summary = {
        "mode": "estimate",
        "policy": args.policy,
        "mitigation": args.mitigation or [],
        "circuits": [{"index": i, **row} for i, row in enumerate(rows)],
    }
    if not args.json:
        _print_estimates(summary)

    def budget(path: str) -> None:
        from multiqpu.plots import error_budget

        error_budget(results[0], path)

    summary["plots"] = plots(
        [
            (args.plot, lambda p: _plot_timeline(p, reports, "estimate")),
            (args.budget_plot, budget),
        ]
    )
    return summary


def _print_estimates(summary: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = fmt.console()
    table = Table(title="expectation values", title_justify="left")
    for name in ("#", "file", "observable", "value", "std. error", "cuts", "devices"):
        table.add_column(name, justify="right" if name in ("value", "std. error") else "left")
    for c in summary["circuits"]:
        for k, o in enumerate(c["observables"]):
            table.add_row(
                str(c["index"]) if k == 0 else "",
                escape(c["file"]) if k == 0 else "",
                o["label"],
                f"{o['value']:.6g}",
                f"{o['std_error']:.2g}",
                str(c["cuts"]) if k == 0 else "",
                ", ".join(c["devices"]) if k == 0 else "",
            )
    out.print(table)
