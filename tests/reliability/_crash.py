"""Crash points: SIGKILL a real orchestrator process at a chosen point, then resume.

The orchestrator is a child process (``python _crash.py JOURNAL RUN_ID PHASE K``) that
samples :data:`N_TASKS` circuits (exact probabilities, one circuit per job) on three
:class:`~multiqpu.testing.faults.FaultyDevice`-wrapped local simulators with random
hold-backs and 10 % transient failures, recording the run in a journal file. It kills itself
with SIGKILL at the ``K``-th event of ``PHASE``:

* ``submit``: inside a submit call, after the provider accepted the job and before its id
  reached the journal (the work runs at the provider, the journal says "submitting");
* ``poll``: while polling a job, after the provider's result arrived and before the journal
  recorded it;
* ``journal``: inside a journal write, after its statements ran and before the commit;
* ``timer``: never by itself; the parent sends SIGKILL ``K`` milliseconds after the child
  says it is ready;
* ``none``: runs to the end.

:func:`crash_and_resume` runs one crash point and resumes in this process on a fresh fleet
with the same device specs, then checks: the journal opens, the run completes with one
result per circuit equal to the exact probabilities, and no circuit whose result the journal
held before the resume was submitted again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
N_TASKS = 24
PHASES = ("submit", "poll", "journal", "timer")

__all__ = ["N_TASKS", "PHASES", "CrashOutcome", "build_fleet", "crash_and_resume", "start_child"]


def build_fleet(seed: int = 0) -> Any:
    """Three slow, flaky devices, one circuit per job. Same specs in the child and the parent."""
    import multiqpu
    from multiqpu.testing.faults import FaultyDevice

    limits = multiqpu.DeviceLimits(max_circuits_per_job=1, max_concurrent_jobs=2)
    ideal = multiqpu.device("local:ideal", num_qubits=5, limits=limits, seed=3)
    return multiqpu.Fleet(
        [
            FaultyDevice(
                ideal, name=f"crash-{k}", delay_s=(0.02, 0.25), transient_failures=0.1,
                seed=seed * 10 + k,
            )
            for k in range(3)
        ]
    )  # fmt: skip


def circuits() -> list[Any]:
    sys.path.insert(0, str(HERE))
    from _chaos import chaos_circuits

    return chaos_circuits(N_TASKS, 7)


OPTIONS: dict[str, Any] = {
    "cache": False,
    "progress": False,
    "retries": 10,
    "backoff_s": 0.002,
    "hedging": False,
}


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _instrument(fleet: Any, journal: Any, phase: str, k: int) -> None:
    """Arrange the SIGKILL at the ``k``-th event of ``phase``."""
    count = [0]

    def tick() -> None:
        count[0] += 1
        if count[0] == k:
            _die()

    if phase == "journal":
        db = journal._file
        original = db.transaction

        @contextmanager
        def transaction() -> Iterator[Any]:
            with original() as cur:
                yield cur
                tick()  # the statements ran; the commit has not happened

        db.transaction = transaction
        return
    for device in fleet:
        submit = device._submit

        async def wrapped(circuits: Any, shots: Any, _submit: Any = submit) -> Any:
            job = await _submit(circuits, shots)
            if phase == "submit":
                tick()  # accepted by the provider, id not recorded yet
            elif phase == "poll":
                result = job.result

                async def polled(_result: Any = result) -> Any:
                    out = await _result()
                    tick()  # the result arrived, the journal has not recorded it
                    return out

                job.result = polled
            return job

        device._submit = wrapped


def _child(path: str, run_id: str, phase: str, k: int, seed: int) -> None:
    from multiqpu.journal import Journal

    fleet = build_fleet(seed)
    journal = Journal(path)
    work = circuits()
    _instrument(fleet, journal, phase, k)
    print("ready", flush=True)
    asyncio.run(fleet.sample(work, shots=None, journal=journal, run_id=run_id, **OPTIONS))
    print("finished", flush=True)


def start_child(
    path: Path, run_id: str, phase: str, k: int, seed: int = 0
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "_crash.py"), str(path), run_id, phase, str(k), str(seed)],
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_child(proc: subprocess.Popen[str], phase: str, k: int) -> bool:
    """Wait for the child (killing it after ``k`` ms in the timer phase); True if it was
    killed by SIGKILL, False if it finished."""
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    if phase == "timer":
        time.sleep(k / 1000)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)
    if proc.returncode == -signal.SIGKILL:
        return True
    assert proc.returncode == 0, f"the orchestrator failed (exit {proc.returncode})"
    return False


@dataclass
class CrashOutcome:
    phase: str
    k: int
    killed: bool  # the child died by SIGKILL (False: it finished before the point came)
    done_before: int  # circuits the journal held done at the kill
    resumed: bool  # the resume completed with one right result per circuit
    resubmitted_completed: int  # done-before circuits submitted again by the resume
    journal_opened: bool


def _exact(work: list[Any]) -> list[dict[str, float]]:
    from qiskit.quantum_info import Statevector

    return [
        Statevector(c.remove_final_measurements(inplace=False)).probabilities_dict() for c in work
    ]


async def crash_and_resume(path: Path, phase: str, k: int, seed: int = 0) -> CrashOutcome:
    """One crash point (see the module docstring) and its resume."""
    from multiqpu._transpile import circuit_key
    from multiqpu.errors import JobError
    from multiqpu.journal import Journal

    run_id = f"crash-{phase}-{k}-{seed}"
    killed = wait_child(start_child(path, run_id, phase, k, seed), phase, k)
    work = circuits()
    keys = [circuit_key(c) for c in work]
    try:
        journal = Journal(path)
    except Exception:
        return CrashOutcome(phase, k, killed, 0, False, 0, False)
    with journal:
        try:
            journal.run_info(run_id)
            started = True
        except JobError:  # killed before the run's first write committed
            started = False
        done_before = journal.done_results(run_id) if started else {}
        fleet = build_fleet(seed + 1000)
        if started:
            result = await fleet.resume(run_id, journal=journal)
        else:
            result = await fleet.sample(work, shots=None, journal=journal, run_id=run_id, **OPTIONS)
        exact = _exact(work)
        ok = len(result.results) == N_TASKS and all(
            t.index == i
            and max(
                abs((t.result.probabilities or {}).get(b, 0.0) - p) for b, p in exact[i].items()
            )
            < 1e-9
            for i, t in enumerate(result.results)
        )
        ok = ok and journal.run_info(run_id).state == "done" and not journal.open_jobs(run_id)
        ok = ok and sorted(journal.done_results(run_id)) == list(range(N_TASKS))
        again = [k2 for d in fleet for s in d.submissions for k2 in s.circuit_keys]
        resubmitted = sum(keys[i] in again for i in done_before)
    return CrashOutcome(phase, k, killed, len(done_before), ok, resubmitted, True)


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))


async def shared_journal(path: Path, k: int, seed: int = 0) -> dict[str, Any]:
    """Two orchestrator processes write one journal file at once; one is killed at its
    ``k``-th journal write. The other must finish, the killed one's run must resume, and the
    file must pass SQLite's integrity check. Returns what happened."""
    import sqlite3

    from multiqpu.journal import Journal

    ids = (f"shared-a-{seed}", f"shared-b-{seed}")
    a = start_child(path, ids[0], "none", 0, seed)
    b = start_child(path, ids[1], "journal", k, seed + 1)
    killed = wait_child(b, "journal", k)
    a_finished = not wait_child(a, "none", 0)
    outcome = await crash_and_resume_attached(path, ids[1], seed + 1) if killed else True
    with Journal(path) as journal:
        states = [journal.run_info(r).state for r in ids]
        complete = [sorted(journal.done_results(r)) == list(range(N_TASKS)) for r in ids]
    with sqlite3.connect(path) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return {
        "killed": killed,
        "other_finished": a_finished,
        "resumed": bool(outcome),
        "states": states,
        "complete": all(complete),
        "integrity": integrity,
    }


async def crash_and_resume_attached(path: Path, run_id: str, seed: int) -> bool:
    """Resume ``run_id`` (whose child already died) and check it as crash_and_resume does."""
    from multiqpu.errors import JobError
    from multiqpu.journal import Journal

    work = circuits()
    with Journal(path) as journal:
        fleet = build_fleet(seed + 1000)
        try:
            journal.run_info(run_id)
            result = await fleet.resume(run_id, journal=journal)
        except JobError:
            result = await fleet.sample(work, shots=None, journal=journal, run_id=run_id, **OPTIONS)
        exact = _exact(work)
        return len(result.results) == N_TASKS and all(
            max(abs((t.result.probabilities or {}).get(b, 0.0) - p) for b, p in exact[i].items())
            < 1e-9
            for i, t in enumerate(result.results)
        )
