"""The job journal: every run, job and result recorded in SQLite, so nothing is lost.

The scheduler writes to the journal before and after each submission; ``multiqpu runs`` lists
what it holds and ``multiqpu resume RUN_ID`` / ``Fleet.resume(run_id)`` finish an interrupted run
from it. It also holds a result cache keyed by (circuit, shots, device, calibration).

Where the file lives: ``path`` if given, else ``$MULTIQPU_JOURNAL``, else
``platformdirs.user_data_path("multiqpu") / "journal.sqlite"``; ``":memory:"`` keeps it in memory.

Durability: every write method commits before it returns. The file is in WAL mode with
``synchronous=NORMAL``: a committed row survives the process being killed (SIGKILL included);
after a power cut or OS crash the last few commits may be rolled back, never corrupted. Pass
``synchronous="FULL"`` to also survive that, at the price of one fsync per write.

Thread safety: one connection guarded by a lock; call it from any thread (``asyncio.to_thread``).
Several processes may open the same file (SQLite's own locking; readers never block the writer).

The journal is the scheduler's run recorder (``multiqpu.scheduler._recorder.RunRecorder``):
the write methods below are what the executor calls as a run goes. The file itself (opening,
schema, transactions) is ``_journal_db``; the queries ``_journal_reads``; the values handed
back ``_journal_records``; the encoding of circuits and results ``_journal_codec``.

Task state is derived, never stored twice: a task is *done* once it has a result (the first
result that came back wins; later ones, e.g. from a hedged copy, are ignored), *open* while a job
carrying it is ``submitting`` or ``submitted``, and *pending* otherwise, including tasks whose
job failed for good (a resumed run tries them again).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from multiqpu import _journal_reads as _reads
from multiqpu._journal_codec import circuit_to_qpy, dumps, result_to_json
from multiqpu._journal_db import JournalFile
from multiqpu._journal_reads import HOST
from multiqpu._journal_records import (
    ENV_VAR,
    JobRecord,
    OpenJob,
    PruneReport,
    RunInfo,
    RunState,
    default_journal_path,
)
from multiqpu.errors import InvalidInputError, JobError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult, JobTimings

__all__ = [
    "ENV_VAR",
    "JobRecord",
    "Journal",
    "OpenJob",
    "PruneReport",
    "RunInfo",
    "default_journal_path",
]


class Journal:
    """A SQLite journal of runs, jobs and results (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise InvalidInputError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        self._file = JournalFile(
            default_journal_path() if path is None else path, synchronous=synchronous
        )
        self.path = self._file.path

    # ------------------------------------------------------------------ plumbing
    def _unknown_run(self, run_id: str) -> JobError:
        return JobError(
            f"no run '{run_id}' in the journal {self.path}; `multiqpu runs` lists the runs it holds"
        )

    def _require_run(self, cur: sqlite3.Cursor, run_id: str) -> None:
        if not _reads.has_run(cur, run_id):
            raise self._unknown_run(run_id)

    def _job(self, cur: sqlite3.Cursor, job_row: int) -> tuple[str, str, int | None, str]:
        row = cur.execute(
            "SELECT run_id, device, shots, state FROM jobs WHERE job_row = ?", (job_row,)
        ).fetchone()
        if row is None:
            raise JobError(f"no job row {job_row} in the journal {self.path}")
        return row

    @property
    def schema_version(self) -> int:
        with self._file.reading() as cur:
            return int(cur.execute("SELECT version FROM schema_version").fetchone()[0])

    # ------------------------------------------------------------------ writes
    def start_run(
        self,
        run_id: str,
        *,
        circuits: Sequence[QuantumCircuit],
        shots: Sequence[int | None],
        options: Mapping[str, Any],
    ) -> None:
        """Record a new run (state ``running``) with its circuits (QPY), keys and shots."""
        from multiqpu._transpile import circuit_key

        if len(circuits) != len(shots):
            raise InvalidInputError(
                f"start_run got {len(circuits)} circuits but {len(shots)} shots values"
            )
        rows = [
            (run_id, i, circuit_key(c), s, circuit_to_qpy(c))
            for i, (c, s) in enumerate(zip(circuits, shots, strict=True))
        ]
        with self._file.transaction() as cur:
            try:
                cur.execute(
                    "INSERT INTO runs (run_id, created_at, state, options, n_tasks, host, pid)"
                    " VALUES (?, ?, 'running', ?, ?, ?, ?)",
                    (run_id, time.time(), dumps(options), len(rows), HOST, os.getpid()),
                )
            except sqlite3.IntegrityError:
                raise JobError(f"run '{run_id}' is already in the journal {self.path}") from None
            cur.executemany(
                "INSERT INTO tasks (run_id, idx, circuit_key, shots, qpy) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def job_submitting(
        self, run_id: str, *, device: str, task_indices: Sequence[int], shots: int | None
    ) -> int:
        """Record a job about to be submitted (state ``submitting``); returns its row id.

        A run recorded as finished goes back to ``running`` (it is being resumed)."""
        indices = [int(i) for i in task_indices]
        with self._file.transaction() as cur:
            row = cur.execute(
                "UPDATE runs SET state = 'running', finished_at = NULL, host = ?, pid = ?"
                " WHERE run_id = ? RETURNING n_tasks",
                (HOST, os.getpid(), run_id),
            ).fetchone()
            if row is None:
                raise self._unknown_run(run_id)
            bad = [i for i in indices if not 0 <= i < row[0]]
            if bad or not indices:
                raise InvalidInputError(
                    f"run '{run_id}' has tasks 0..{row[0] - 1}; got task indices {bad or indices}"
                )
            cur.execute(
                "INSERT INTO jobs (run_id, device, shots, state, created_at)"
                " VALUES (?, ?, ?, 'submitting', ?)",
                (run_id, device, shots, time.time()),
            )
            job_row = int(cur.lastrowid or 0)
            cur.executemany(
                "INSERT INTO job_tasks (job_row, position, run_id, idx) VALUES (?, ?, ?, ?)",
                [(job_row, p, run_id, i) for p, i in enumerate(indices)],
            )
        return job_row

    def job_submitted(self, job_row: int, provider_job_id: str) -> None:
        """Record the provider's job id once the submission was accepted (state ``submitted``)."""
        with self._file.transaction() as cur:
            self._job(cur, job_row)
            cur.execute(
                "UPDATE jobs SET provider_job_id = ?, submitted_at = ?,"
                " state = CASE state WHEN 'submitting' THEN 'submitted' ELSE state END"
                " WHERE job_row = ?",
                (str(provider_job_id), time.time(), job_row),
            )

    def job_done(
        self,
        job_row: int,
        results: Sequence[CircuitResult],
        *,
        calibration_fingerprint: str | None,
        timings: JobTimings | None,
    ) -> None:
        """Store each task's result (first result per task wins), mark the job ``done``, and
        fill the cache when the device reported a calibration fingerprint."""
        now = time.time()
        with self._file.transaction() as cur:
            run_id, device, shots, _state = self._job(cur, job_row)
            tasks = cur.execute(
                "SELECT jt.idx, t.circuit_key FROM job_tasks jt JOIN tasks t"
                " ON t.run_id = jt.run_id AND t.idx = jt.idx"
                " WHERE jt.job_row = ? ORDER BY jt.position",
                (job_row,),
            ).fetchall()
            if len(results) != len(tasks):
                raise InvalidInputError(
                    f"job row {job_row} carries {len(tasks)} tasks but got {len(results)} results"
                )
            blobs = [result_to_json(r) for r in results]
            cur.executemany(
                "INSERT OR IGNORE INTO results (run_id, idx, job_row, device, result, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (run_id, idx, job_row, device, b, now)
                    for (idx, _), b in zip(tasks, blobs, strict=True)
                ],
            )
            cur.execute(
                "UPDATE jobs SET state = 'done', finished_at = ?, calibration_fingerprint = ?,"
                " submitted_at = COALESCE(?, submitted_at), started_at = ? WHERE job_row = ?",
                (
                    timings.finished_at if timings and timings.finished_at else now,
                    calibration_fingerprint,
                    timings.submitted_at if timings else None,
                    timings.started_at if timings else None,
                    job_row,
                ),
            )
            if calibration_fingerprint is not None:
                cur.executemany(
                    "INSERT OR REPLACE INTO cache (circuit_key, shots, device,"
                    " calibration_fingerprint, result, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            key,
                            -1 if shots is None else shots,
                            device,
                            calibration_fingerprint,
                            b,
                            now,
                        )
                        for (_, key), b in zip(tasks, blobs, strict=True)
                    ],
                )

    def _close_job(self, job_row: int, state: str, error: str | None, final: bool | None) -> None:
        with self._file.transaction() as cur:
            self._job(cur, job_row)
            cur.execute(
                "UPDATE jobs SET state = ?, error = ?, final = ?, finished_at = ?"
                " WHERE job_row = ? AND state IN ('submitting', 'submitted')",
                (state, error, final, time.time(), job_row),
            )

    def job_failed(self, job_row: int, error: str, *, final: bool) -> None:
        """Record a failure; the job's tasks are pending again unless done or open elsewhere.
        ``final`` records whether the scheduler gave up on them (kept for the record)."""
        self._close_job(job_row, "failed", str(error), bool(final))

    def job_cancelled(self, job_row: int) -> None:
        self._close_job(job_row, "cancelled", None, None)

    def results_quarantined(
        self, run_id: str, device: str, indices: Sequence[int], reason: str
    ) -> None:
        """Device ``device`` failed its canary checks: its results of ``indices`` are
        withdrawn (the tasks are pending again, to be run elsewhere), the jobs that carried
        them are marked ``quarantined`` with ``reason``, and the device's cached results of
        those circuits are dropped."""
        with self._file.transaction() as cur:
            self._require_run(cur, run_id)
            keys = [(run_id, int(i), device) for i in indices]
            rows = {
                r[0]
                for k in keys
                for r in cur.execute(
                    "SELECT job_row FROM results WHERE run_id = ? AND idx = ? AND device = ?", k
                )
                if r[0] is not None
            }
            cur.executemany(
                "DELETE FROM cache WHERE device = ? AND circuit_key ="
                " (SELECT circuit_key FROM tasks WHERE run_id = ? AND idx = ?)",
                [(device, run_id, i) for run_id, i, _ in keys],
            )
            cur.executemany("DELETE FROM results WHERE run_id = ? AND idx = ? AND device = ?", keys)
            cur.executemany(
                "UPDATE jobs SET state = 'quarantined', error = ? WHERE job_row = ?",
                [(f"results withdrawn, run again elsewhere: {reason}", r) for r in sorted(rows)],
            )

    def finish_run(self, run_id: str, state: RunState) -> None:
        if state not in ("done", "failed", "cancelled"):
            raise InvalidInputError(f"a run finishes as done, failed or cancelled, not {state!r}")
        with self._file.transaction() as cur:
            cur.execute(
                "UPDATE runs SET state = ?, finished_at = ? WHERE run_id = ?",
                (state, time.time(), run_id),
            )
            if cur.rowcount == 0:
                raise self._unknown_run(run_id)

    # ------------------------------------------------------------------ queries
    def runs(self, limit: int = 50) -> list[RunInfo]:
        """The most recent runs, newest first."""
        with self._file.reading() as cur:
            rows = cur.execute(
                f"SELECT {_reads.RUN_COLUMNS} FROM runs ORDER BY created_at DESC, rowid DESC"
                " LIMIT ?",
                (int(limit),),
            ).fetchall()
            return [_reads.run_info(cur, row) for row in rows]

    def run_info(self, run_id: str) -> RunInfo:
        with self._file.reading() as cur:
            row = cur.execute(
                f"SELECT {_reads.RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise self._unknown_run(run_id)
            return _reads.run_info(cur, row)

    def load_circuits(self, run_id: str) -> list[tuple[QuantumCircuit, int | None]]:
        """The run's circuits (rebuilt from QPY) and shots, in task order."""
        with self._file.reading() as cur:
            self._require_run(cur, run_id)
            return _reads.load_circuits(cur, run_id)

    def done_results(self, run_id: str) -> dict[int, tuple[str, CircuitResult]]:
        """Task index -> (device spec, result) for every task that has a result."""
        with self._file.reading() as cur:
            self._require_run(cur, run_id)
            return _reads.done_results(cur, run_id)

    def open_jobs(self, run_id: str) -> list[OpenJob]:
        """Jobs left ``submitting`` (no provider id) or ``submitted``, oldest first."""
        with self._file.reading() as cur:
            self._require_run(cur, run_id)
            return _reads.open_jobs(cur, run_id)

    def jobs(self, run_id: str) -> list[JobRecord]:
        """Every job of the run in submission order."""
        with self._file.reading() as cur:
            self._require_run(cur, run_id)
            return _reads.jobs(cur, run_id)

    def pending_tasks(self, run_id: str) -> list[int]:
        """Tasks with no result and no open job, in index order."""
        with self._file.reading() as cur:
            self._require_run(cur, run_id)
            return _reads.pending_tasks(cur, run_id)

    def cached(
        self, circuit_key: str, shots: int | None, device: str, calibration_fingerprint: str
    ) -> CircuitResult | None:
        """A stored result for exactly this circuit, shots, device and calibration, if any."""
        with self._file.reading() as cur:
            hit = _reads.cached(cur, circuit_key, shots, [(device, calibration_fingerprint)])
        return None if hit is None else hit[1]

    def cached_result(
        self, circuit: QuantumCircuit, shots: int | None, candidates: Sequence[tuple[str, str]]
    ) -> tuple[int, CircuitResult] | None:
        """A stored result of ``circuit`` with ``shots`` on the first of ``candidates``
        (device spec, calibration fingerprint) that has one: (its position, the result)."""
        if not candidates:
            return None
        from multiqpu._transpile import circuit_key

        key = circuit_key(circuit)
        with self._file.reading() as cur:
            return _reads.cached(cur, key, shots, candidates)

    # ------------------------------------------------------------------ upkeep
    def prune(
        self,
        *,
        older_than: float | timedelta | None = None,
        keep: int | None = None,
        cache: bool = True,
        dry_run: bool = False,
        vacuum: bool = False,
    ) -> PruneReport:
        """Remove finished runs (and old cache entries) so the file stops growing.

        A run is removed when it finished (``done``, ``failed`` or ``cancelled``; a run
        recorded as running or interrupted is never touched: it may still need a resume),
        is not among the ``keep`` newest finished runs, and ended more than ``older_than``
        (a :class:`~datetime.timedelta` or seconds) ago; its tasks, jobs and results go
        with it. With ``older_than`` and ``cache``, result-cache entries older than that go
        too. At least one of ``older_than`` and ``keep`` must be given (``keep=0`` alone
        removes every finished run). ``dry_run`` reports without removing; ``vacuum``
        rewrites the file afterwards so the space goes back to the file system (it needs
        a moment without other writers). Returns a :class:`PruneReport`.
        """
        from multiqpu._journal_prune import prune

        return prune(
            self._file,
            older_than=older_than,
            keep=keep,
            cache=cache,
            dry_run=dry_run,
            vacuum=vacuum,
        )

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Journal {self.path}>"
