"""The journal's SQLite schema, its version, and the migration hook.

Tables (one row per ...):

``runs``       run: id, created/finished time, state, options (JSON), number of tasks,
               the process (host, pid) that last drove it
``tasks``      circuit of a run: index, circuit key, shots, QPY bytes
``jobs``       submission to a device: device spec, provider job id, shots, state, error, timings,
               calibration fingerprint
``job_tasks``  which task indices a job carries, in order
``results``    task that finished: the first result that came back for it (JSON) and its device
``cache``      result reusable by (circuit key, shots, device, calibration fingerprint)
``schema_version``  one row: the schema version of this file

Migrations: ``MIGRATIONS[n]`` upgrades a file from version ``n`` to ``n + 1``; they run in one
transaction when an older file is opened. A file newer than this code is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS", "SCHEMA", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    created_at  REAL NOT NULL,
    finished_at REAL,
    state       TEXT NOT NULL,
    options     TEXT NOT NULL,
    n_tasks     INTEGER NOT NULL,
    host        TEXT,
    pid         INTEGER
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
CREATE TABLE IF NOT EXISTS tasks (
    run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    circuit_key TEXT NOT NULL,
    shots       INTEGER,
    qpy         BLOB NOT NULL,
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
    job_row         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    device          TEXT NOT NULL,
    provider_job_id TEXT,
    shots           INTEGER,
    state           TEXT NOT NULL,
    final           INTEGER,
    error           TEXT,
    created_at      REAL NOT NULL,
    submitted_at    REAL,
    started_at      REAL,
    finished_at     REAL,
    calibration_fingerprint TEXT
);
CREATE INDEX IF NOT EXISTS jobs_run_state ON jobs (run_id, state);
CREATE TABLE IF NOT EXISTS job_tasks (
    job_row  INTEGER NOT NULL REFERENCES jobs (job_row) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    run_id   TEXT NOT NULL,
    idx      INTEGER NOT NULL,
    PRIMARY KEY (job_row, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_tasks_task ON job_tasks (run_id, idx);
CREATE TABLE IF NOT EXISTS results (
    run_id     TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    job_row    INTEGER,
    device     TEXT NOT NULL,
    result     TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cache (
    circuit_key TEXT NOT NULL,
    shots       INTEGER NOT NULL,   -- -1 stands for exact (shots=None)
    device      TEXT NOT NULL,
    calibration_fingerprint TEXT NOT NULL,
    result      TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (circuit_key, shots, device, calibration_fingerprint)
) WITHOUT ROWID;
"""

#: ``MIGRATIONS[n](connection)`` upgrades a version-``n`` file to version ``n + 1``.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}
