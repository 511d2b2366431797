"""``multiqpu runs show RUN_ID``: one run from the job journal, per device and in time."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from multiqpu.cli import _format as fmt

if TYPE_CHECKING:
    from multiqpu.journal import Journal
    from multiqpu.scheduler._timeline import JobSpan

__all__ = ["add_show_command", "device_rows", "run_show"]


def add_show_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    journal_help: str,
) -> None:
    """Register ``runs show`` under ``runs``."""
    show = sub.add_parser(
        "show",
        parents=[common],
        help="one run: the per-device table and the timeline of its jobs",
        description=(
            "Show one run recorded in the job journal: per device the jobs, circuits, shots, "
            "failures, hedges and mean queue and run times; then every job in time order "
            "(when it was submitted, how long it queued and ran, how it ended). --plot draws "
            "the timeline as a Gantt chart (needs multiqpu[plot])."
        ),
    )
    show.add_argument("run_id", metavar="RUN_ID", help="a run id from 'multiqpu runs'")
    # SUPPRESS: `multiqpu runs --journal X show ID` keeps the X given before `show`
    show.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print a JSON object"
    )
    show.add_argument("--plot", metavar="FILE.png", help="draw the timeline to this file")
    show.add_argument("--journal", metavar="PATH", default=argparse.SUPPRESS, help=journal_help)
    show.set_defaults(handler=run_show)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def device_rows(spans: tuple[JobSpan, ...], done: dict[int, tuple[str, Any]]) -> list[dict]:
    """Per device (in order of first use): jobs, circuits it delivered, shots, failed and
    cancelled jobs, hedges, mean queue and run seconds."""
    rows: dict[str, dict[str, Any]] = {}
    for s in spans:
        row = rows.setdefault(
            s.device,
            {"device": s.device, "jobs": 0, "circuits": 0, "shots": 0, "failed": 0,
             "cancelled": 0, "hedges": 0, "_q": [], "_x": []},
        )  # fmt: skip
        row["jobs"] += 1
        row["failed"] += s.state == "failed"
        row["cancelled"] += s.state == "cancelled"
        row["hedges"] += s.hedge
        if s.queue_s is not None:
            row["_q"].append(s.queue_s)
        if s.execution_s is not None and s.state == "done":
            row["_x"].append(s.execution_s)
    for device, result in done.values():
        if device in rows:
            rows[device]["circuits"] += 1
            rows[device]["shots"] += result.shots or 0
    out = []
    for row in rows.values():
        row["mean_queue_s"] = _mean(row.pop("_q"))
        row["mean_run_s"] = _mean(row.pop("_x"))
        out.append(row)
    return out


def _load(journal: Journal, run_id: str) -> tuple[Any, tuple[JobSpan, ...], dict]:
    from multiqpu.scheduler._timeline import spans_from_records

    info = journal.run_info(run_id)  # an unknown run id stops here (exit 2)
    spans = spans_from_records(journal.jobs(run_id))
    return info, spans, journal.done_results(run_id)


def run_show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from multiqpu.cli._runs import _as_dict
    from multiqpu.journal import Journal

    if args.plot:
        from multiqpu.plots import require_matplotlib

        require_matplotlib()
    with Journal(args.journal) as journal:
        info, spans, done = _load(journal, args.run_id)
    rows = device_rows(spans, done)
    t0 = min((s.created_at for s in spans), default=info.created_at)
    if args.plot:
        from multiqpu.plots import timeline

        if spans:
            timeline(spans, args.plot, title=f"run {info.run_id}")
    if args.json:
        data = {**_as_dict(info), "per_device": rows, "timeline": [asdict(s) for s in spans]}
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    _print(info, spans, rows, t0)
    if args.plot:
        print(f"timeline written to {args.plot}" if spans else "no jobs: nothing to plot")
    return 0


def _print(info: Any, spans: tuple[JobSpan, ...], rows: list[dict], t0: float) -> None:
    from rich import box
    from rich.table import Table

    from multiqpu.cli._runs import STATE_STYLE, _when

    out = fmt.console()
    style = STATE_STYLE.get(info.state, "")
    state = f"[{style}]{info.state}[/]" if style else info.state
    out.print(
        f"run {info.run_id}: {state}, {info.n_done}/{info.n_tasks} circuits done, started "
        f"{_when(info.created_at)}, policy {info.options.get('policy', '-')}"
    )

    def compact(title: str) -> Table:
        return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                     padding=(0, 1, 0, 0), title_justify="left")  # fmt: skip

    table = compact("per device")
    for name in ("device", "jobs", "circuits", "shots", "failed", "hedges", "queue", "run"):
        table.add_column(name, justify="left" if name == "device" else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            r["device"], str(r["jobs"]), str(r["circuits"]), str(r["shots"]), str(r["failed"]),
            str(r["hedges"]), fmt.seconds(r["mean_queue_s"]), fmt.seconds(r["mean_run_s"]),
        )  # fmt: skip
    out.print(table)
    times = compact("timeline (seconds from the first job)")
    for name in ("at", "device", "circuits", "queued", "ran", "ended"):
        times.add_column(
            name, justify="right" if name in ("at", "circuits") else "left", no_wrap=True
        )
    times.add_column("note")
    for s in spans:
        note = "hedge" if s.hedge else ""
        if s.error:  # the whole error is in --json
            note = (note + " " + s.error).strip()
            note = note if len(note) <= 24 else note[:23] + "…"
        times.add_row(
            f"{s.created_at - t0:.2f}", s.device, str(len(s.tasks)), fmt.seconds(s.queue_s),
            fmt.seconds(s.execution_s), s.state, note,
        )  # fmt: skip
    out.print(times)
