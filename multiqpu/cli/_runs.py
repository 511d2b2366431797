"""``multiqpu runs`` and ``multiqpu resume RUN_ID``: the job journal from the command line
(``multiqpu runs show RUN_ID``: :mod:`multiqpu.cli._runs_show`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from multiqpu.cli import _format as fmt

if TYPE_CHECKING:
    from multiqpu.journal import Journal, RunInfo

__all__ = ["add_run_commands", "run_resume", "run_runs"]

STATE_STYLE = {
    "running": "cyan",
    "done": "green",
    "failed": "red",
    "cancelled": "yellow",
    "interrupted": "magenta",
}


def add_run_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register ``runs`` and ``resume`` on the ``multiqpu`` parser's subcommands."""
    journal_help = "journal file (default: $MULTIQPU_JOURNAL or the user data directory)"
    runs = commands.add_parser(
        "runs",
        parents=[common],
        help="list recent runs from the job journal",
        description=(
            "List the most recent runs recorded in the job journal, newest first: run id, "
            "when it started, its state (running, done, failed, cancelled, or interrupted when "
            "its process is gone), tasks done out of total, and the devices that got jobs."
        ),
    )
    runs.add_argument("--json", action="store_true", help="print a JSON list of objects")
    runs.add_argument("--limit", type=fmt.positive_int, default=20, metavar="N", help="default: 20")
    runs.add_argument("--journal", metavar="PATH", help=journal_help)
    runs.set_defaults(handler=run_runs)
    from multiqpu.cli._runs_show import add_show_command

    sub = runs.add_subparsers(dest="runs_command", metavar="COMMAND")
    add_show_command(sub, common, journal_help)
    from multiqpu.cli._runs_prune import add_prune_command

    add_prune_command(sub, common, journal_help)

    resume = commands.add_parser(
        "resume",
        parents=[common],
        help="finish an interrupted run from the job journal",
        description=(
            "Finish a run recorded in the job journal: results already recorded are kept, "
            "jobs still open at the provider are re-attached by id, and only work that was "
            "really lost is submitted again. Uses the fleet from --config, $MULTIQPU_CONFIG or "
            "your user config file (the embedded default fleet when there is none); it must "
            "hold the devices the run used."
        ),
    )
    resume.add_argument("run_id", metavar="RUN_ID", help="a run id from 'multiqpu runs'")
    resume.add_argument("--json", action="store_true", help="print a JSON summary")
    resume.add_argument("--config", metavar="PATH", help="fleet config file to read")
    resume.add_argument("--journal", metavar="PATH", help=journal_help)
    resume.set_defaults(handler=run_resume)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _as_dict(info: RunInfo) -> dict[str, Any]:
    return {
        "run_id": info.run_id,
        "created_at": info.created_at,
        "created": _when(info.created_at),
        "finished_at": info.finished_at,
        "state": info.state,
        "n_tasks": info.n_tasks,
        "n_done": info.n_done,
        "devices": list(info.devices),
        "options": dict(info.options),
    }


def run_runs(args: argparse.Namespace) -> int:
    from multiqpu.journal import Journal

    with Journal(args.journal) as journal:
        infos = journal.runs(limit=args.limit)
        where = journal.path
    if args.json:
        json.dump([_as_dict(i) for i in infos], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from rich.table import Table

    from multiqpu.cli._format import console

    out = console()
    if not infos:
        out.print(f"no runs recorded yet in {where}")
        return 0
    from multiqpu._journal_prune import file_size
    from multiqpu.cli._runs_prune import human_bytes

    size = file_size(where)
    title = f"runs in {where}" + ("" if size is None else f" ({human_bytes(size)})")
    table = Table(title=title, title_justify="left")
    table.add_column("run id", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("state")
    table.add_column("tasks", justify="right")
    table.add_column("devices")
    for info in infos:
        style = STATE_STYLE.get(info.state, "")
        table.add_row(
            info.run_id,
            _when(info.created_at),
            f"[{style}]{info.state}[/]" if style else info.state,
            f"{info.n_done}/{info.n_tasks}",
            ", ".join(info.devices) or "-",
        )
    out.print(table)
    if size is not None and size > BIG_JOURNAL_BYTES:
        out.print(
            f"[yellow]the journal holds {human_bytes(size)}[/]: `multiqpu runs prune "
            "--older-than 30d --dry-run` says what pruning old finished runs would free"
        )
    return 0


#: Above this size `multiqpu runs` suggests pruning (nothing is removed unasked).
BIG_JOURNAL_BYTES = 1 << 30


def _summary(journal: Journal, run_id: str, before: RunInfo, first_new_row: int) -> dict[str, Any]:
    after = journal.run_info(run_id)
    new_jobs = [j for j in journal.jobs(run_id) if j.job_row >= first_new_row]
    per_device: dict[str, int] = {}
    for job in new_jobs:
        per_device[job.device] = per_device.get(job.device, 0) + len(job.task_indices)
    return {
        **_as_dict(after),
        "done_before": before.n_done,
        "new_jobs": len(new_jobs),
        "resubmitted_tasks": per_device,
    }


def run_resume(args: argparse.Namespace) -> int:
    from multiqpu.journal import Journal

    with Journal(args.journal) as journal:
        before = journal.run_info(args.run_id)  # an unknown run id stops here (exit 2)
        jobs = journal.jobs(args.run_id)
        first_new_row = max((j.job_row for j in jobs), default=0) + 1
        if before.n_done < before.n_tasks:
            import asyncio

            from multiqpu.fleet import Fleet

            fleet = Fleet.from_config(args.config)
            asyncio.run(fleet.resume(args.run_id, journal=journal))
        summary = _summary(journal, args.run_id, before, first_new_row)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        if summary["new_jobs"] == 0 and before.n_done == before.n_tasks:
            print(
                f"run {summary['run_id']} was already complete "
                f"({summary['n_done']}/{summary['n_tasks']} tasks); nothing was resubmitted"
            )
        else:
            moved = ", ".join(f"{d}: {n}" for d, n in summary["resubmitted_tasks"].items())
            print(
                f"run {summary['run_id']} {summary['state']}: "
                f"{summary['n_done']}/{summary['n_tasks']} tasks done "
                f"({summary['done_before']} were already done; "
                f"{summary['new_jobs']} new jobs{' - ' + moved if moved else ''})"
            )
    return 0 if summary["n_done"] == summary["n_tasks"] else 1
