"""The journal's queries: runs, a run's circuits and results, its open jobs for a resume,
every job for reports, and the result cache. Functions of an open cursor (the caller holds
the journal's lock, see :class:`multiqpu._journal_db.JournalFile`)."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu._journal_codec import circuit_from_qpy, loads, result_from_json
from multiqpu._journal_records import JobRecord, OpenJob, RunInfo

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult

__all__ = [
    "HOST",
    "OPEN",
    "RUN_COLUMNS",
    "cached",
    "done_results",
    "has_run",
    "jobs",
    "load_circuits",
    "open_jobs",
    "pending_tasks",
    "run_info",
]

HOST = socket.gethostname()
OPEN = ("submitting", "submitted")  # job states that hold their tasks
RUN_COLUMNS = "run_id, created_at, finished_at, state, options, n_tasks, host, pid"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def has_run(cur: sqlite3.Cursor, run_id: str) -> bool:
    return cur.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None


def run_info(cur: sqlite3.Cursor, row: tuple[Any, ...]) -> RunInfo:
    """A :class:`RunInfo` from a row of ``RUN_COLUMNS``."""
    run_id, created_at, finished_at, state, options, n_tasks, host, pid = row
    (n_done,) = cur.execute("SELECT COUNT(*) FROM results WHERE run_id = ?", (run_id,)).fetchone()
    devices = cur.execute(
        "SELECT device FROM jobs WHERE run_id = ? GROUP BY device ORDER BY MIN(job_row)",
        (run_id,),
    ).fetchall()
    if state == "running" and host == HOST and pid is not None and not _pid_alive(pid):
        state = "interrupted"
    return RunInfo(
        run_id=run_id,
        created_at=created_at,
        state=state,
        n_tasks=n_tasks,
        n_done=n_done,
        devices=tuple(d for (d,) in devices),
        options=loads(options),
        finished_at=finished_at,
    )


def load_circuits(cur: sqlite3.Cursor, run_id: str) -> list[tuple[QuantumCircuit, int | None]]:
    rows = cur.execute(
        "SELECT qpy, shots FROM tasks WHERE run_id = ? ORDER BY idx", (run_id,)
    ).fetchall()
    return [(circuit_from_qpy(blob), shots) for blob, shots in rows]


def done_results(cur: sqlite3.Cursor, run_id: str) -> dict[int, tuple[str, CircuitResult]]:
    rows = cur.execute(
        "SELECT idx, device, result FROM results WHERE run_id = ? ORDER BY idx", (run_id,)
    ).fetchall()
    return {idx: (device, result_from_json(text)) for idx, device, text in rows}


def _task_lists(cur: sqlite3.Cursor, job_rows: list[int]) -> dict[int, list[int]]:
    tasks: dict[int, list[int]] = {r: [] for r in job_rows}
    for r in job_rows:
        tasks[r] = [
            i
            for (i,) in cur.execute(
                "SELECT idx FROM job_tasks WHERE job_row = ? ORDER BY position", (r,)
            )
        ]
    return tasks


def open_jobs(cur: sqlite3.Cursor, run_id: str) -> list[OpenJob]:
    rows = cur.execute(
        "SELECT job_row, device, provider_job_id, shots FROM jobs"
        " WHERE run_id = ? AND state IN (?, ?) ORDER BY job_row",
        (run_id, *OPEN),
    ).fetchall()
    tasks = _task_lists(cur, [r[0] for r in rows])
    return [OpenJob(r, d, p, tuple(tasks[r]), s) for r, d, p, s in rows]


def jobs(cur: sqlite3.Cursor, run_id: str) -> list[JobRecord]:
    rows = cur.execute(
        "SELECT job_row, device, provider_job_id, shots, state, error, created_at,"
        " submitted_at, finished_at, started_at FROM jobs WHERE run_id = ? ORDER BY job_row",
        (run_id,),
    ).fetchall()
    tasks = _task_lists(cur, [r[0] for r in rows])
    return [
        JobRecord(r, d, p, tuple(tasks[r]), s, st, e, c, sub, fin, started)
        for r, d, p, s, st, e, c, sub, fin, started in rows
    ]


def pending_tasks(cur: sqlite3.Cursor, run_id: str) -> list[int]:
    rows = cur.execute(
        "SELECT t.idx FROM tasks t WHERE t.run_id = ?"
        " AND NOT EXISTS (SELECT 1 FROM results r WHERE r.run_id = t.run_id"
        "   AND r.idx = t.idx)"
        " AND NOT EXISTS (SELECT 1 FROM job_tasks jt JOIN jobs j ON j.job_row = jt.job_row"
        "   WHERE jt.run_id = t.run_id AND jt.idx = t.idx AND j.state IN (?, ?))"
        " ORDER BY t.idx",
        (run_id, *OPEN),
    ).fetchall()
    return [i for (i,) in rows]


def cached(
    cur: sqlite3.Cursor,
    circuit_key: str,
    shots: int | None,
    candidates: Sequence[tuple[str, str]],
) -> tuple[int, CircuitResult] | None:
    """The first of ``candidates`` (device, calibration fingerprint) whose cache holds this
    circuit and shots: (its position, the result)."""
    for k, (device, fingerprint) in enumerate(candidates):
        row = cur.execute(
            "SELECT result FROM cache WHERE circuit_key = ? AND shots = ? AND device = ?"
            " AND calibration_fingerprint = ?",
            (circuit_key, -1 if shots is None else shots, device, fingerprint),
        ).fetchone()
        if row is not None:
            return k, result_from_json(row[0])
    return None
