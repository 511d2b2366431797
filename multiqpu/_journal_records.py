"""What the journal hands back: runs, open jobs and job records (frozen values), and where
its file lives by default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "ENV_VAR",
    "JobRecord",
    "OpenJob",
    "PruneReport",
    "RunInfo",
    "RunState",
    "default_journal_path",
    "user_journal_path",
]

ENV_VAR = "MULTIQPU_JOURNAL"
RunState = Literal["done", "failed", "cancelled"]


def default_journal_path() -> Path:
    """``$MULTIQPU_JOURNAL`` if set, else the per-user data directory's ``journal.sqlite``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else user_journal_path()


def user_journal_path() -> Path:
    """The per-user data directory's ``journal.sqlite`` (multiqpu owns that folder)."""
    import platformdirs

    return platformdirs.user_data_path("multiqpu") / "journal.sqlite"


@dataclass(frozen=True)
class RunInfo:
    """One run as the journal knows it.

    ``state`` is ``running``, ``done``, ``failed`` or ``cancelled`` as recorded, or
    ``interrupted`` for a run recorded as running whose process (on this host) is gone.
    ``devices`` lists the device specs that received jobs, in order of first use.
    """

    run_id: str
    created_at: float
    state: str
    n_tasks: int
    n_done: int
    devices: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    finished_at: float | None = None


@dataclass(frozen=True)
class OpenJob:
    """A job that was being submitted (``provider_job_id`` None) or was submitted."""

    job_row: int
    device: str
    provider_job_id: str | None
    task_indices: tuple[int, ...]
    shots: int | None


@dataclass(frozen=True)
class JobRecord:
    """Every recorded job of a run, whatever its state (for reports and tests)."""

    job_row: int
    device: str
    provider_job_id: str | None
    task_indices: tuple[int, ...]
    shots: int | None
    state: str
    error: str | None
    created_at: float
    submitted_at: float | None
    finished_at: float | None
    #: when the device started running it (its queue wait ended), if the device said
    started_at: float | None = None


@dataclass(frozen=True)
class PruneReport:
    """What :meth:`multiqpu.journal.Journal.prune` removed (or, with ``dry_run``, would remove).

    ``runs``: the run ids, newest first; ``jobs`` and ``results``: their rows;
    ``cache_entries``: result-cache rows older than the cut-off; ``size_before`` /
    ``size_after``: bytes on disk of the file and its ``-wal`` side file (None in memory;
    the space comes back to the file system only with ``vacuum``).
    """

    runs: tuple[str, ...]
    jobs: int
    results: int
    cache_entries: int
    dry_run: bool
    size_before: int | None
    size_after: int | None
