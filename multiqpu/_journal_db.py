"""The journal's SQLite file: opening it (WAL, ``synchronous``), creating or migrating its
schema (``_journal_schema``), and one lock-guarded connection with write transactions and
reads (see :mod:`multiqpu.journal` for durability and thread safety)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from multiqpu import _journal_schema as _schema
from multiqpu._journal_records import ENV_VAR, user_journal_path
from multiqpu._private_files import private_dir, private_file, tighten_file
from multiqpu.errors import ConfigError, JobError

__all__ = ["JournalFile"]

#: how long opening waits for other processes that hold the file (SQLite's busy timeout too)
BUSY_TIMEOUT_S = 30.0


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _enter_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode, waiting for other processes that hold it.

    SQLite does not apply its busy timeout to this switch: when two processes open a new
    file at once, one of them gets "database is locked" at once (measured: 12 of 60 opens
    by four processes at once). It is retried with tenacity until ``BUSY_TIMEOUT_S``."""
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

    for attempt in Retrying(
        retry=retry_if_exception(_locked),
        stop=stop_after_delay(BUSY_TIMEOUT_S),
        wait=wait_random_exponential(multiplier=0.01, max=0.5),
        reraise=True,
    ):
        with attempt:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()


class JournalFile:
    """One journal file (or ``":memory:"``), opened and at the current schema version."""

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: Literal["NORMAL", "FULL"]
    ) -> None:
        if str(path) == ":memory:":
            self.path = ":memory:"
        else:
            file = Path(path).expanduser()
            self.path = str(file)
            try:
                # owner-only at rest (0600 in 0700, docs/trust.md): circuits and results;
                # multiqpu's own folder is tightened to 0700 when found looser
                private_dir(file.parent, owned=file == user_journal_path())
                if not file.exists():
                    private_file(file)  # SQLite gives its -wal/-shm files this file's mode
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the journal's folder ({exc}); set {ENV_VAR} to a writable path",
                    source=self.path,
                ) from exc
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            _enter_wal(conn)
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn: sqlite3.Connection | None = conn
            self._prepare()
            if self.path != ":memory:":  # a journal older, looser versions left: tightened
                for side in ("", "-wal", "-shm"):
                    tighten_file(Path(self.path + side))
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"cannot open the journal ({exc}); point {ENV_VAR} at another file or move "
                "this one away",
                source=self.path,
            ) from exc

    def _prepare(self) -> None:
        with self.transaction() as cur:
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
                migrate(self.connection())
            cur.execute("UPDATE schema_version SET version = ?", (_schema.SCHEMA_VERSION,))

    def connection(self) -> sqlite3.Connection:
        """The open connection (:class:`JobError` once closed)."""
        if self._conn is None:
            raise JobError(f"the journal {self.path} is closed")
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction, committed before the block's caller returns."""
        with self._lock:
            conn = self.connection()
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
    def reading(self) -> Iterator[sqlite3.Cursor]:
        """A cursor for reads, under the lock."""
        with self._lock:
            cur = self.connection().cursor()
            try:
                yield cur
            finally:
                cur.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
