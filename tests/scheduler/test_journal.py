"""The job journal on real SQLite files: round trips, durability across SIGKILL, threads, cache."""

from __future__ import annotations

import asyncio
import enum
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

from multiqpu import _journal_schema
from multiqpu._transpile import circuit_key
from multiqpu.device import CircuitResult, JobTimings
from multiqpu.errors import ConfigError, InvalidInputError, JobError
from multiqpu.journal import Journal, OpenJob, default_journal_path


def ghz(n: int, angle: float = 0.0) -> QuantumCircuit:
    qc = QuantumCircuit(n, name=f"ghz{n}")
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    qc.rz(angle, 0)
    qc.measure_all()
    return qc


def two_registers() -> QuantumCircuit:
    qr = QuantumRegister(3, "q")
    a, b = ClassicalRegister(1, "a"), ClassicalRegister(2, "b")
    qc = QuantumCircuit(qr, a, b, name="regs")
    qc.x(1)
    qc.ry(0.25, 2)
    qc.measure(0, a[0])
    qc.measure([1, 2], b)
    return qc


def result(counts: dict[str, int], **metadata: object) -> CircuitResult:
    return CircuitResult(counts=counts, shots=sum(counts.values()), metadata=metadata)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "journal.sqlite")
    yield j
    j.close()


def test_run_round_trip_and_job_lifecycle(journal: Journal) -> None:
    circuits = [ghz(2), ghz(3, 0.1), two_registers()]
    journal.start_run(
        "r1", circuits=circuits, shots=[100, 200, None], options={"policy": "fastest"}
    )

    loaded = journal.load_circuits("r1")
    assert [c for c, _ in loaded] == circuits
    assert [s for _, s in loaded] == [100, 200, None]
    assert [c.cregs for c, _ in loaded][2] == circuits[2].cregs
    assert journal.pending_tasks("r1") == [0, 1, 2]
    info = journal.run_info("r1")
    assert (info.state, info.n_tasks, info.n_done, info.devices) == ("running", 3, 0, ())
    assert info.options == {"policy": "fastest"}

    row = journal.job_submitting("r1", device="local:ideal", task_indices=[2, 0], shots=100)
    assert journal.open_jobs("r1") == [OpenJob(row, "local:ideal", None, (2, 0), 100)]
    assert journal.pending_tasks("r1") == [1]
    journal.job_submitted(row, "prov-1")
    assert journal.open_jobs("r1")[0].provider_job_id == "prov-1"

    # results come back in the job's task order: task 2 first, then task 0
    journal.job_done(
        row,
        [result({"101": 60, "001": 40}), result({"00": 51, "11": 49})],
        calibration_fingerprint=None,
        timings=JobTimings(submitted_at=1.0, started_at=2.0, finished_at=3.0),
    )
    done = journal.done_results("r1")
    assert set(done) == {0, 2}
    assert done[0] == ("local:ideal", result({"00": 51, "11": 49}))
    assert done[2][1].counts == {"101": 60, "001": 40}
    assert journal.open_jobs("r1") == []
    assert journal.pending_tasks("r1") == [1]

    # a transient failure puts the task back to pending; a cancel too
    row2 = journal.job_submitting("r1", device="braket:sv", task_indices=[1], shots=200)
    assert journal.pending_tasks("r1") == []
    journal.job_failed(row2, "throttled", final=False)
    assert journal.pending_tasks("r1") == [1]
    row3 = journal.job_submitting("r1", device="braket:sv", task_indices=[1], shots=200)
    journal.job_cancelled(row3)
    assert journal.pending_tasks("r1") == [1]
    row4 = journal.job_submitting("r1", device="local:ideal", task_indices=[1], shots=200)
    journal.job_done(row4, [result({"000": 200})], calibration_fingerprint=None, timings=None)
    journal.finish_run("r1", "done")

    info = journal.run_info("r1")
    assert (info.state, info.n_done, info.devices) == ("done", 3, ("local:ideal", "braket:sv"))
    assert info.finished_at is not None
    states = [(j.job_row, j.state, j.error) for j in journal.jobs("r1")]
    assert states == [
        (row, "done", None),
        (row2, "failed", "throttled"),
        (row3, "cancelled", None),
        (row4, "done", None),
    ]
    # a late failure report does not overwrite a finished job
    journal.job_failed(row, "late", final=True)
    assert journal.jobs("r1")[0].state == "done"


def test_circuits_are_stored_compressed_and_older_raw_qpy_still_loads(journal: Journal) -> None:
    import io
    import zlib

    from qiskit import qpy
    from qiskit.circuit.library import efficient_su2

    wide = efficient_su2(8, reps=3).decompose()
    wide = wide.assign_parameters(np.linspace(0.1, 2.0, wide.num_parameters))
    wide.measure_all()
    circuits = [ghz(3), wide]
    journal.start_run("r1", circuits=circuits, shots=[10, 20], options={})
    raw = []
    for c in circuits:
        buffer = io.BytesIO()
        qpy.dump(c, buffer)
        raw.append(buffer.getvalue())
    with sqlite3.connect(journal.path) as db:
        stored = [b for (b,) in db.execute("SELECT qpy FROM tasks ORDER BY idx")]
    assert [zlib.decompress(b) for b in stored] == raw
    assert len(stored[1]) < len(raw[1]) / 2  # a real circuit's QPY shrinks more than 2x

    # a journal written before compression holds raw QPY: its run still resumes
    with sqlite3.connect(journal.path) as db:
        db.execute("UPDATE tasks SET qpy = ? WHERE idx = 1", (raw[1],))
    assert [c for c, _ in journal.load_circuits("r1")] == circuits


def test_runs_are_listed_newest_first_and_resumed_runs_go_back_to_running(
    journal: Journal,
) -> None:
    for i in range(4):
        journal.start_run(f"r{i}", circuits=[ghz(2)], shots=[10], options={"i": i})
    assert [r.run_id for r in journal.runs()] == ["r3", "r2", "r1", "r0"]
    assert [r.run_id for r in journal.runs(limit=2)] == ["r3", "r2"]
    journal.finish_run("r0", "failed")
    assert journal.run_info("r0").state == "failed"
    journal.job_submitting("r0", device="local:ideal", task_indices=[0], shots=10)
    assert journal.run_info("r0").state == "running"
    with pytest.raises(InvalidInputError):
        journal.finish_run("r0", "finished")  # type: ignore[arg-type]


def test_results_and_options_are_made_json_safe(journal: Journal) -> None:
    class Color(enum.Enum):
        RED = "red"

    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    journal.start_run(
        "r",
        circuits=[ghz(2), ghz(2)],
        shots=[np.int64(50), None],  # type: ignore[list-item]
        options={"policy": Color.RED, "floor": np.float64(0.9), "devices": ("a", "b")},
    )
    assert journal.run_info("r").options == {"policy": "red", "floor": 0.9, "devices": ["a", "b"]}
    meta = {
        "physical_qubits": (3, 5),
        "estimated_fidelity": np.float64(0.93),
        "seed": np.int64(7),
        "layout": np.array([3, 5]),
        "nested": {"ok": np.bool_(True), "kind": Color.RED},
        "obj": Opaque(),
    }
    counts = {"00": np.int64(30), "11": 20}
    exact = CircuitResult(counts={}, shots=None, probabilities={"00": 0.5, "11": np.float64(0.5)})
    row = journal.job_submitting("r", device="local:ideal", task_indices=[0, 1], shots=50)
    journal.job_done(
        row,
        [CircuitResult(counts=counts, shots=50, metadata=meta), exact],  # type: ignore[arg-type]
        calibration_fingerprint="fp",
        timings=None,
    )
    done = journal.done_results("r")
    sampled = done[0][1]
    assert sampled.counts == {"00": 30, "11": 20}
    assert sampled.metadata["physical_qubits"] == (3, 5)
    assert sampled.metadata["estimated_fidelity"] == pytest.approx(0.93)
    assert sampled.metadata["seed"] == 7
    assert sampled.metadata["layout"] == (3, 5)
    assert sampled.metadata["nested"] == {"ok": True, "kind": "red"}
    assert sampled.metadata["obj"] == "opaque"
    assert done[1][1] == CircuitResult(counts={}, shots=None, probabilities={"00": 0.5, "11": 0.5})


def test_first_result_per_task_wins_when_a_hedged_copy_also_finishes(journal: Journal) -> None:
    journal.start_run("r", circuits=[ghz(2)], shots=[10], options={})
    a = journal.job_submitting("r", device="dev:a", task_indices=[0], shots=10)
    b = journal.job_submitting("r", device="dev:b", task_indices=[0], shots=10)
    journal.job_done(a, [result({"00": 10})], calibration_fingerprint=None, timings=None)
    journal.job_cancelled(b)
    journal.job_done(b, [result({"11": 10})], calibration_fingerprint=None, timings=None)
    assert journal.done_results("r") == {0: ("dev:a", result({"00": 10}))}
    assert journal.run_info("r").n_done == 1


def test_bad_arguments_are_refused_without_writing(journal: Journal) -> None:
    with pytest.raises(InvalidInputError, match="2 circuits but 1 shots"):
        journal.start_run("r", circuits=[ghz(2), ghz(2)], shots=[1], options={})
    journal.start_run("r", circuits=[ghz(2), ghz(2)], shots=[1, 1], options={})
    with pytest.raises(JobError, match="already in the journal"):
        journal.start_run("r", circuits=[ghz(2)], shots=[1], options={})
    with pytest.raises(InvalidInputError, match="task indices"):
        journal.job_submitting("r", device="d:x", task_indices=[0, 5], shots=1)
    row = journal.job_submitting("r", device="d:x", task_indices=[0, 1], shots=1)
    with pytest.raises(InvalidInputError, match="carries 2 tasks but got 1"):
        journal.job_done(row, [result({"0": 1})], calibration_fingerprint=None, timings=None)
    assert journal.done_results("r") == {}
    assert len(journal.open_jobs("r")) == 1


def test_unknown_run_and_job_give_clear_errors(journal: Journal) -> None:
    calls = [
        lambda: journal.run_info("nope"),
        lambda: journal.load_circuits("nope"),
        lambda: journal.done_results("nope"),
        lambda: journal.open_jobs("nope"),
        lambda: journal.pending_tasks("nope"),
        lambda: journal.jobs("nope"),
        lambda: journal.job_submitting("nope", device="d:x", task_indices=[0], shots=1),
        lambda: journal.finish_run("nope", "done"),
    ]
    for call in calls:
        with pytest.raises(JobError, match="no run 'nope' in the journal") as info:
            call()
        assert "multiqpu runs" in str(info.value)
    for job_call in (
        lambda: journal.job_submitted(999, "x"),
        lambda: journal.job_failed(999, "x", final=True),
        lambda: journal.job_cancelled(999),
        lambda: journal.job_done(999, [], calibration_fingerprint=None, timings=None),
    ):
        with pytest.raises(JobError, match="no job row 999"):
            job_call()


def test_cache_hits_only_on_identical_circuit_shots_device_and_calibration(
    journal: Journal,
) -> None:
    c0, c1 = ghz(3), ghz(3, 0.5)
    journal.start_run("r", circuits=[c0, c1, c0], shots=[100, 100, None], options={})
    row = journal.job_submitting("r", device="ibm:fake_kyiv", task_indices=[0, 1], shots=100)
    r0, r1 = result({"000": 55, "111": 45}), result({"000": 48, "111": 52})
    journal.job_done(row, [r0, r1], calibration_fingerprint="cal-A", timings=None)
    k0, k1 = circuit_key(c0), circuit_key(c1)

    assert journal.cached(k0, 100, "ibm:fake_kyiv", "cal-A") == r0
    assert journal.cached(k1, 100, "ibm:fake_kyiv", "cal-A") == r1
    assert journal.cached(circuit_key(ghz(3)), 100, "ibm:fake_kyiv", "cal-A") == r0  # same circuit
    assert journal.cached(k0, 100, "ibm:fake_kyiv", "cal-B") is None  # recalibrated
    assert journal.cached(k0, 200, "ibm:fake_kyiv", "cal-A") is None  # other shots
    assert journal.cached(k0, None, "ibm:fake_kyiv", "cal-A") is None  # exact vs sampled
    assert journal.cached(k0, 100, "ibm:fake_torino", "cal-A") is None  # other device

    # no calibration fingerprint reported: nothing is cached
    row2 = journal.job_submitting("r", device="local:ideal", task_indices=[2], shots=None)
    exact = CircuitResult(counts={}, shots=None, probabilities={"000": 0.5, "111": 0.5})
    journal.job_done(row2, [exact], calibration_fingerprint=None, timings=None)
    assert journal.cached(k0, None, "local:ideal", "") is None
    # exact results are cached under shots=None
    row3 = journal.job_submitting("r", device="local:ideal", task_indices=[2], shots=None)
    journal.job_done(row3, [exact], calibration_fingerprint="ideal", timings=None)
    assert journal.cached(k0, None, "local:ideal", "ideal") == exact

    # as the executor's run recorder: the first candidate (device, calibration) that holds it
    miss, hit = ("ibm:fake_torino", "cal-A"), ("ibm:fake_kyiv", "cal-A")
    assert journal.cached_result(c0, 100, [miss, hit]) == (1, r0)
    assert journal.cached_result(c0, 100, [hit, miss]) == (0, r0)
    assert journal.cached_result(c0, 100, [miss]) is None
    assert journal.cached_result(c0, 100, []) is None

    # the cache outlives the run and the connection
    path = journal.path
    journal.close()
    with Journal(path) as again:
        assert again.cached(k0, 100, "ibm:fake_kyiv", "cal-A") == r0


_WRITER = textwrap.dedent(
    """
    import sys, time
    from qiskit import QuantumCircuit
    from multiqpu.journal import Journal
    from multiqpu.device import CircuitResult
    j = Journal(sys.argv[1])
    qc = QuantumCircuit(2); qc.h(0); qc.cx(0, 1); qc.measure_all()
    j.start_run("killed", circuits=[qc] * 4, shots=[64] * 4, options={"policy": "balanced"})
    for i in range(3):
        row = j.job_submitting("killed", device="local:ideal", task_indices=[i], shots=64)
        j.job_submitted(row, f"p{i}")
        if i < 2:
            res = CircuitResult(counts={"00": 30 + i, "11": 34 - i}, shots=64)
            j.job_done(row, [res], calibration_fingerprint="fp", timings=None)
    print("committed", flush=True)
    time.sleep(60)
    """
)


def test_committed_rows_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "committed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    with Journal(path) as journal:
        info = journal.run_info("killed")
        assert info.n_tasks == 4 and info.n_done == 2
        assert info.state == "interrupted"  # recorded running, its process is gone
        done = journal.done_results("killed")
        assert {i: r.counts for i, (_, r) in done.items()} == {
            0: {"00": 30, "11": 34},
            1: {"00": 31, "11": 33},
        }
        assert journal.open_jobs("killed") == [OpenJob(3, "local:ideal", "p2", (2,), 64)]
        assert journal.pending_tasks("killed") == [3]
        assert len(journal.load_circuits("killed")) == 4


def test_many_threads_and_two_connections_write_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "threads.sqlite"
    n_threads, per_thread = 8, 25
    first, second = Journal(path), Journal(path)
    first.start_run("r", circuits=[ghz(2)] * (n_threads * per_thread), shots=[8] * 200, options={})
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        journal = first if t % 2 else second
        try:
            for k in range(per_thread):
                idx = t * per_thread + k
                row = journal.job_submitting("r", device=f"d:{t}", task_indices=[idx], shots=8)
                journal.job_submitted(row, f"p{idx}")
                journal.job_done(
                    row, [result({"00": idx})], calibration_fingerprint=None, timings=None
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    done = second.done_results("r")
    assert len(done) == 200
    assert all(r.counts == {"00": i} and d == f"d:{i // per_thread}" for i, (d, r) in done.items())
    assert len({j.job_row for j in first.jobs("r")}) == 200
    first.close()
    second.close()


async def test_usable_from_asyncio_to_thread() -> None:
    journal = Journal(":memory:")
    journal.start_run("r", circuits=[ghz(2)] * 20, shots=[8] * 20, options={})

    async def one(i: int) -> None:
        row = await asyncio.to_thread(
            journal.job_submitting, "r", device="d:x", task_indices=[i], shots=8
        )
        await asyncio.to_thread(
            journal.job_done, row, [result({"00": 8})], calibration_fingerprint=None, timings=None
        )

    await asyncio.gather(*(one(i) for i in range(20)))
    assert journal.run_info("r").n_done == 20
    journal.close()
    with pytest.raises(JobError, match="closed"):
        journal.runs()


def test_schema_version_newer_file_and_migration_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v.sqlite"
    with Journal(path) as journal:
        assert journal.schema_version == _journal_schema.SCHEMA_VERSION == 1
        journal.start_run("r", circuits=[ghz(2)], shots=[8], options={})

    calls: list[int] = []

    def to_v2(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE runs ADD COLUMN label TEXT")

    monkeypatch.setattr(_journal_schema, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(_journal_schema, "MIGRATIONS", {1: to_v2})
    with Journal(path) as journal:
        assert journal.schema_version == 2
        assert journal.run_info("r").n_tasks == 1
    with Journal(path) as journal:  # already migrated: the hook runs once
        assert journal.schema_version == 2
    assert calls == [1]

    monkeypatch.setattr(_journal_schema, "SCHEMA_VERSION", 1)
    with pytest.raises(ConfigError, match="schema version 2, newer"):
        Journal(path)


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="cannot open the journal"):
        Journal(bad)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot create the journal's folder"):
        Journal(blocker / "sub" / "journal.sqlite")


def test_default_path_env_override_and_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MULTIQPU_JOURNAL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_journal_path() == tmp_path / "xdg" / "multiqpu" / "journal.sqlite"
    with Journal() as journal:
        assert journal.path == str(tmp_path / "xdg" / "multiqpu" / "journal.sqlite")
    assert (tmp_path / "xdg" / "multiqpu" / "journal.sqlite").exists()

    monkeypatch.setenv("MULTIQPU_JOURNAL", str(tmp_path / "env" / "j.sqlite"))
    with Journal() as journal:
        journal.start_run("r", circuits=[ghz(2)], shots=[8], options={})
    with Journal(tmp_path / "env" / "j.sqlite") as journal:
        assert journal.run_info("r").n_tasks == 1

    with Journal(":memory:") as journal:
        assert journal.path == ":memory:"
        journal.start_run("m", circuits=[ghz(2)], shots=[8], options={})
        assert journal.runs()[0].run_id == "m"


def test_writes_are_committed_before_returning(tmp_path: Path) -> None:
    """Another connection sees every write as soon as the method returns."""
    path = tmp_path / "c.sqlite"
    writer = Journal(path)
    reader = sqlite3.connect(path)
    writer.start_run("r", circuits=[ghz(2)], shots=[8], options={})
    assert reader.execute("SELECT COUNT(*) FROM tasks").fetchone() == (1,)
    row = writer.job_submitting("r", device="d:x", task_indices=[0], shots=8)
    assert reader.execute("SELECT state FROM jobs").fetchone() == ("submitting",)
    writer.job_submitted(row, "p")
    assert reader.execute("SELECT state, provider_job_id FROM jobs").fetchone() == (
        "submitted",
        "p",
    )
    t0 = time.time()
    writer.job_done(row, [result({"00": 8})], calibration_fingerprint="f", timings=None)
    assert reader.execute("SELECT COUNT(*) FROM results").fetchone() == (1,)
    assert reader.execute("SELECT COUNT(*) FROM cache").fetchone() == (1,)
    (finished,) = reader.execute("SELECT finished_at FROM jobs").fetchone()
    assert finished >= t0
    reader.close()
    writer.close()
