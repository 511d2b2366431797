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

Task state is derived, never stored twice: a task is *done* once it has a result (the first
result that came back wins; later ones, e.g. from a hedged copy, are ignored), *open* while a job
carrying it is ``submitting`` or ``submitted``, and *pending* otherwise, including tasks whose
job failed for good (a resumed run tries them again).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from multiqpu import _journal_schema as _schema
from multiqpu._journal_codec import (
    circuit_from_qpy,
    circuit_to_qpy,
    dumps,
    loads,
    result_from_json,
    result_to_json,
)
from multiqpu.errors import ConfigError, InvalidInputError, JobError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult, JobTimings

__all__ = ["ENV_VAR", "JobRecord", "Journal", "OpenJob", "RunInfo", "default_journal_path"]

ENV_VAR = "MULTIQPU_JOURNAL"
RunState = Literal["done", "failed", "cancelled"]
_OPEN = ("submitting", "submitted")
_HOST = socket.gethostname()


def default_journal_path() -> Path:
    """``$MULTIQPU_JOURNAL`` if set, else the per-user data directory's ``journal.sqlite``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        if path is None:
            path = default_journal_path()
        if str(path) == ":memory:":
            self.path = ":memory:"
        else:
            file = Path(path).expanduser()
            self.path = str(file)
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the journal's folder ({exc}); set {ENV_VAR} to a writable path",
                    source=self.path,
                ) from exc
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn: sqlite3.Connection | None = conn
            self._prepare()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"cannot open the journal ({exc}); point {ENV_VAR} at another file or move "
                "this one away",
                source=self.path,
            ) from exc

    # ------------------------------------------------------------------ plumbing
    def _prepare(self) -> None:
        with self._tx() as cur:
            exists = cur.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
            ).fetchone()
            if not exists:
                for statement in _schema.SCHEMA.split(";"):
                    if statement.strip():
                        cur.execute(statement)
                cur.execute("INSERT INTO schema_version VALUES (?)", (_schema.SCHEMA_VERSION,))
                return
            (version,) = cur.execute("SELECT version FROM schema_version").fetchone()
            if version > _schema.SCHEMA_VERSION:
                raise ConfigError(
                    f"the journal has schema version {version}, newer than this multiqpu "
                    f"understands ({_schema.SCHEMA_VERSION}); upgrade multiqpu",
                    source=self.path,
                )
            for v in range(version, _schema.SCHEMA_VERSION):
                migrate = _schema.MIGRATIONS.get(v)
                if migrate is None:
                    raise ConfigError(
                        f"no migration from journal schema version {v}", source=self.path
                    )
                migrate(self._connection())
            cur.execute("UPDATE schema_version SET version = ?", (_schema.SCHEMA_VERSION,))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JobError(f"the journal {self.path} is closed")
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction, committed before the block's caller returns."""
        with self._lock:
            conn = self._connection()
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                conn.rollback()
                raise
            else:
                conn.commit()
            finally:
                cur.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._connection().cursor()
            try:
                yield cur
            finally:
                cur.close()

    def _unknown_run(self, run_id: str) -> JobError:
        return JobError(
            f"no run '{run_id}' in the journal {self.path}; `multiqpu runs` lists the runs it holds"
        )

    def _require_run(self, cur: sqlite3.Cursor, run_id: str) -> None:
        if cur.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
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
        with self._read() as cur:
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
        with self._tx() as cur:
            try:
                cur.execute(
                    "INSERT INTO runs (run_id, created_at, state, options, n_tasks, host, pid)"
                    " VALUES (?, ?, 'running', ?, ?, ?, ?)",
                    (run_id, time.time(), dumps(options), len(rows), _HOST, os.getpid()),
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
        with self._tx() as cur:
            row = cur.execute(
                "UPDATE runs SET state = 'running', finished_at = NULL, host = ?, pid = ?"
                " WHERE run_id = ? RETURNING n_tasks",
                (_HOST, os.getpid(), run_id),
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
        with self._tx() as cur:
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
        with self._tx() as cur:
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
        with self._tx() as cur:
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

    def finish_run(self, run_id: str, state: RunState) -> None:
        if state not in ("done", "failed", "cancelled"):
            raise InvalidInputError(f"a run finishes as done, failed or cancelled, not {state!r}")
        with self._tx() as cur:
            cur.execute(
                "UPDATE runs SET state = ?, finished_at = ? WHERE run_id = ?",
                (state, time.time(), run_id),
            )
            if cur.rowcount == 0:
                raise self._unknown_run(run_id)

    # ------------------------------------------------------------------ queries
    def _info(self, cur: sqlite3.Cursor, row: tuple[Any, ...]) -> RunInfo:
        run_id, created_at, finished_at, state, options, n_tasks, host, pid = row
        (n_done,) = cur.execute(
            "SELECT COUNT(*) FROM results WHERE run_id = ?", (run_id,)
        ).fetchone()
        devices = cur.execute(
            "SELECT device FROM jobs WHERE run_id = ? GROUP BY device ORDER BY MIN(job_row)",
            (run_id,),
        ).fetchall()
        if state == "running" and host == _HOST and pid is not None and not _pid_alive(pid):
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

    _RUN_COLUMNS = "run_id, created_at, finished_at, state, options, n_tasks, host, pid"

    def runs(self, limit: int = 50) -> list[RunInfo]:
        """The most recent runs, newest first."""
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {self._RUN_COLUMNS} FROM runs ORDER BY created_at DESC, rowid DESC"
                " LIMIT ?",
                (int(limit),),
            ).fetchall()
            return [self._info(cur, row) for row in rows]

    def run_info(self, run_id: str) -> RunInfo:
        with self._read() as cur:
            row = cur.execute(
                f"SELECT {self._RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise self._unknown_run(run_id)
            return self._info(cur, row)

    def load_circuits(self, run_id: str) -> list[tuple[QuantumCircuit, int | None]]:
        """The run's circuits (rebuilt from QPY) and shots, in task order."""
        with self._read() as cur:
            self._require_run(cur, run_id)
            rows = cur.execute(
                "SELECT qpy, shots FROM tasks WHERE run_id = ? ORDER BY idx", (run_id,)
            ).fetchall()
        return [(circuit_from_qpy(blob), shots) for blob, shots in rows]

    def done_results(self, run_id: str) -> dict[int, tuple[str, CircuitResult]]:
        """Task index -> (device spec, result) for every task that has a result."""
        with self._read() as cur:
            self._require_run(cur, run_id)
            rows = cur.execute(
                "SELECT idx, device, result FROM results WHERE run_id = ? ORDER BY idx", (run_id,)
            ).fetchall()
        return {idx: (device, result_from_json(text)) for idx, device, text in rows}

    def _task_lists(self, cur: sqlite3.Cursor, job_rows: list[int]) -> dict[int, list[int]]:
        tasks: dict[int, list[int]] = {r: [] for r in job_rows}
        for r in job_rows:
            tasks[r] = [
                i
                for (i,) in cur.execute(
                    "SELECT idx FROM job_tasks WHERE job_row = ? ORDER BY position", (r,)
                )
            ]
        return tasks

    def open_jobs(self, run_id: str) -> list[OpenJob]:
        """Jobs left ``submitting`` (no provider id) or ``submitted``, oldest first."""
        with self._read() as cur:
            self._require_run(cur, run_id)
            rows = cur.execute(
                "SELECT job_row, device, provider_job_id, shots FROM jobs"
                " WHERE run_id = ? AND state IN (?, ?) ORDER BY job_row",
                (run_id, *_OPEN),
            ).fetchall()
            tasks = self._task_lists(cur, [r[0] for r in rows])
        return [OpenJob(r, d, p, tuple(tasks[r]), s) for r, d, p, s in rows]

    def jobs(self, run_id: str) -> list[JobRecord]:
        """Every job of the run in submission order."""
        with self._read() as cur:
            self._require_run(cur, run_id)
            rows = cur.execute(
                "SELECT job_row, device, provider_job_id, shots, state, error, created_at,"
                " submitted_at, finished_at FROM jobs WHERE run_id = ? ORDER BY job_row",
                (run_id,),
            ).fetchall()
            tasks = self._task_lists(cur, [r[0] for r in rows])
        return [
            JobRecord(r, d, p, tuple(tasks[r]), s, st, e, c, sub, fin)
            for r, d, p, s, st, e, c, sub, fin in rows
        ]

    def pending_tasks(self, run_id: str) -> list[int]:
        """Tasks with no result and no open job, in index order."""
        with self._read() as cur:
            self._require_run(cur, run_id)
            rows = cur.execute(
                "SELECT t.idx FROM tasks t WHERE t.run_id = ?"
                " AND NOT EXISTS (SELECT 1 FROM results r WHERE r.run_id = t.run_id"
                "   AND r.idx = t.idx)"
                " AND NOT EXISTS (SELECT 1 FROM job_tasks jt JOIN jobs j ON j.job_row = jt.job_row"
                "   WHERE jt.run_id = t.run_id AND jt.idx = t.idx AND j.state IN (?, ?))"
                " ORDER BY t.idx",
                (run_id, *_OPEN),
            ).fetchall()
        return [i for (i,) in rows]

    def cached(
        self, circuit_key: str, shots: int | None, device: str, calibration_fingerprint: str
    ) -> CircuitResult | None:
        """A stored result for exactly this circuit, shots, device and calibration, if any."""
        with self._read() as cur:
            row = cur.execute(
                "SELECT result FROM cache WHERE circuit_key = ? AND shots = ? AND device = ?"
                " AND calibration_fingerprint = ?",
                (circuit_key, -1 if shots is None else shots, device, calibration_fingerprint),
            ).fetchone()
        return None if row is None else result_from_json(row[0])

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Journal {self.path}>"
