"""Removing old runs and cache entries from the journal (``Journal.prune``,
``multiqpu runs prune``): the file otherwise grows with every run, since it keeps every
circuit and result.

Only runs that *finished* (``done``, ``failed``, ``cancelled``) are ever removed: a run
recorded as running may be going on in another process, or interrupted and waiting for a
resume, and pruning it would lose its results. A removed run's tasks, jobs and results go
with it (the schema's ``ON DELETE CASCADE``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from multiqpu._journal_db import JournalFile
from multiqpu._journal_records import PruneReport
from multiqpu.errors import InvalidInputError

__all__ = ["file_size", "prune"]

FINISHED = ("done", "failed", "cancelled")


def file_size(path: str) -> int | None:
    """Bytes on disk of a journal file and its ``-wal`` side file (None in memory)."""
    if path == ":memory:":
        return None
    return sum(os.path.getsize(p) for p in (Path(path), Path(path + "-wal")) if os.path.exists(p))


def _seconds(older_than: float | timedelta | None) -> float | None:
    if older_than is None:
        return None
    seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
        raise InvalidInputError(
            f"older_than must be a timedelta or a number of seconds >= 0, got {older_than!r}"
        )
    return float(seconds)


def _victims(cur: sqlite3.Cursor, keep: int | None, cutoff: float | None) -> list[str]:
    marks = ", ".join("?" * len(FINISHED))
    rows = cur.execute(
        "SELECT run_id, COALESCE(finished_at, created_at) FROM runs"
        f" WHERE state IN ({marks}) ORDER BY created_at DESC, rowid DESC",
        FINISHED,
    ).fetchall()
    rows = rows[keep or 0 :]
    return [run_id for run_id, ended in rows if cutoff is None or ended < cutoff]


def _count(cur: sqlite3.Cursor, table: str, run_ids: list[str]) -> int:
    total = 0
    for start in range(0, len(run_ids), 500):  # SQLite's bound-parameter limit
        chunk = run_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        total += cur.execute(
            f"SELECT COUNT(*) FROM {table} WHERE run_id IN ({marks})", chunk
        ).fetchone()[0]
    return total


def prune(
    file: JournalFile,
    *,
    older_than: float | timedelta | None,
    keep: int | None,
    cache: bool,
    dry_run: bool,
    vacuum: bool,
) -> PruneReport:
    """See :meth:`multiqpu.journal.Journal.prune`."""
    cut = _seconds(older_than)
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
        raise InvalidInputError(f"keep must be an integer >= 0, got {keep!r}")
    if cut is None and keep is None:
        raise InvalidInputError(
            "say what to prune: older_than=... (finished runs and cache entries older than "
            "that), keep=N (all but the N newest finished runs), or both"
        )
    cutoff = None if cut is None else time.time() - cut
    size_before = file_size(file.path)
    with file.transaction() as cur:
        run_ids = _victims(cur, keep, cutoff)
        jobs = _count(cur, "jobs", run_ids)
        results = _count(cur, "results", run_ids)
        prune_cache = cache and cutoff is not None
        cache_entries = (
            cur.execute("SELECT COUNT(*) FROM cache WHERE created_at < ?", (cutoff,)).fetchone()[0]
            if prune_cache
            else 0
        )
        if not dry_run:
            cur.executemany("DELETE FROM runs WHERE run_id = ?", [(r,) for r in run_ids])
            if prune_cache:
                cur.execute("DELETE FROM cache WHERE created_at < ?", (cutoff,))
    if vacuum and not dry_run and file.path != ":memory:":
        with file.reading() as cur:
            cur.execute("VACUUM")
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return PruneReport(
        runs=tuple(run_ids),
        jobs=jobs,
        results=results,
        cache_entries=cache_entries,
        dry_run=dry_run,
        size_before=size_before,
        size_after=file_size(file.path),
    )
