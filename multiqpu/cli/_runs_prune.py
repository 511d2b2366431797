"""``multiqpu runs prune``: remove old finished runs (and old cache entries) from the job
journal so it stops growing (:meth:`multiqpu.journal.Journal.prune`)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict

from multiqpu.cli import _format as fmt

__all__ = ["add_prune_command", "duration", "human_bytes", "run_prune"]

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(text: str) -> float:
    """``90s``, ``45m``, ``12h``, ``30d``, ``2w`` -> seconds (argparse type)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a number and a unit, e.g. 30d, 12h, 45m, 90s or 2w"
        )
    return float(match.group(1)) * UNITS[match.group(2)]


def human_bytes(size: int | None) -> str:
    if size is None:
        return "in memory"
    if size < 1000:
        return f"{size} B"
    value = size / 1000
    for unit in ("KB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def add_prune_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    journal_help: str,
) -> None:
    """Register ``runs prune`` under ``runs``."""
    prune = sub.add_parser(
        "prune",
        parents=[common],
        help="remove old finished runs from the job journal",
        description=(
            "Remove finished runs (done, failed or cancelled) from the job journal, with their "
            "circuits, jobs and results: those older than --older-than and not among the "
            "--keep newest. Runs still running or interrupted (waiting for a resume) are never "
            "removed. With --older-than, result-cache entries older than that go too. The file "
            "is compacted afterwards (--no-vacuum to skip). At least one of --older-than and "
            "--keep is required."
        ),
    )
    prune.add_argument(
        "--older-than", type=duration, metavar="AGE", help="e.g. 30d, 12h, 2w (units s m h d w)"
    )
    prune.add_argument(
        "--keep", type=fmt.non_negative_int, metavar="N", help="keep the N newest finished runs"
    )
    prune.add_argument("--keep-cache", action="store_true", help="leave the result cache as it is")
    prune.add_argument("--dry-run", action="store_true", help="say what would go; remove nothing")
    prune.add_argument(
        "--no-vacuum", action="store_true", help="do not compact the file afterwards"
    )
    prune.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print a JSON object"
    )
    prune.add_argument("--journal", metavar="PATH", default=argparse.SUPPRESS, help=journal_help)
    prune.set_defaults(handler=run_prune)


def run_prune(args: argparse.Namespace) -> int:
    from multiqpu.errors import InvalidInputError
    from multiqpu.journal import Journal

    if args.older_than is None and args.keep is None:
        raise InvalidInputError("say what to prune: --older-than AGE (e.g. 30d), --keep N, or both")
    with Journal(args.journal) as journal:
        report = journal.prune(
            older_than=args.older_than,
            keep=args.keep,
            cache=not args.keep_cache,
            dry_run=args.dry_run,
            vacuum=not args.no_vacuum,
        )
        where = journal.path
    if getattr(args, "json", False):
        json.dump({"journal": where, **asdict(report)}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    verb = "would remove" if report.dry_run else "removed"
    print(
        f"{where}: {verb} {len(report.runs)} finished run(s) ({report.jobs} jobs, "
        f"{report.results} results) and {report.cache_entries} cache entries; "
        f"{human_bytes(report.size_before)} -> {human_bytes(report.size_after)}"
    )
    return 0
