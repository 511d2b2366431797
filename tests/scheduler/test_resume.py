"""The acceptance test of the journal: kill the orchestrator with SIGKILL mid-run, resume, and
check that every task has exactly one result, that completed jobs were not resubmitted, and that
the results are physically right.

The run happens in a child process (a small script using ``fleet.sample`` with a journal file)
on FaultyDevice-wrapped local simulators whose results are held back 0.3-1.0 s each, one circuit
per job, so the run is mid-way for a couple of seconds. The test watches the journal until some
tasks are done and some are not, kills the child, and resumes in this process on a fresh fleet
with the same device specs (new wrapper objects, so their ``submissions`` count only what the
resume sent).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _physics import assert_matches_exact, tagged_circuit
from _sample_api import per_circuit, sample_run_id

import multiqpu
from multiqpu._transpile import circuit_key
from multiqpu.cli import main as cli_main
from multiqpu.journal import Journal
from multiqpu.testing.faults import FaultyDevice

HERE = Path(__file__).resolve().parent
needs_scheduler = pytest.mark.skipif(
    not hasattr(multiqpu.Fleet, "resume"),
    reason="the scheduler (Fleet.sample/resume) has not landed",
)
N_TASKS = 16
SHOTS = 1000


def build_fleet() -> multiqpu.Fleet:
    """Two slow devices, one circuit per job. Same specs in the child and in the test."""
    limits = multiqpu.DeviceLimits(max_circuits_per_job=1, max_concurrent_jobs=2)
    ideal = multiqpu.device("local:ideal", num_qubits=8, limits=limits, seed=3)
    return multiqpu.Fleet(
        [
            FaultyDevice(ideal, name="slow-a", delay_s=(0.3, 1.0), seed=1),
            FaultyDevice(ideal, name="slow-b", delay_s=(0.3, 1.0), seed=2),
        ]
    )


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[2])
    from multiqpu.journal import Journal
    from _physics import tagged_circuit
    from test_resume import N_TASKS, SHOTS, build_fleet

    circuits = [tagged_circuit(i) for i in range(N_TASKS)]
    asyncio.run(build_fleet().sample(circuits, shots=SHOTS, journal=Journal(sys.argv[1])))
    print("finished", flush=True)
    """
)


def _wait_mid_run(journal: Journal, proc: subprocess.Popen[bytes]) -> str:
    """Poll the journal until the child's run has some tasks done and at least 4 not done."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the child finished or died before it could be killed"
        runs = journal.runs(limit=1)
        if runs and 3 <= runs[0].n_done <= N_TASKS - 4:
            return runs[0].run_id
        time.sleep(0.02)
    raise AssertionError("the run never got mid-way")


def _kill_mid_run(path: Path) -> str:
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), str(HERE)], cwd=HERE)
    try:
        with Journal(path) as watcher:
            run_id = _wait_mid_run(watcher, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return run_id


@pytest.mark.slow
async def test_sigkill_mid_run_then_resume_completes_without_resubmitting_done_work(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    run_id = _kill_mid_run(path)
    circuits = [tagged_circuit(i) for i in range(N_TASKS)]

    with Journal(path) as journal:
        # what the journal held at the moment of the kill
        info = journal.run_info(run_id)
        assert info.state == "interrupted"
        done_before = journal.done_results(run_id)
        jobs_before = journal.jobs(run_id)
        assert 3 <= len(done_before) <= N_TASKS - 4
        assert [c for c, _ in journal.load_circuits(run_id)] == circuits
        keys = {i: circuit_key(c) for i, c in enumerate(circuits)}

        fleet = build_fleet()
        result = await fleet.resume(run_id, journal=journal)

        # every task has exactly one result, in order, physically right
        results = per_circuit(result)
        assert len(results) == N_TASKS
        for i, (device, res) in enumerate(results):
            assert device in ("local:slow-a", "local:slow-b")
            assert_matches_exact(circuits[i], res.counts, SHOTS)
        # results recorded before the kill are the ones returned, unchanged
        for i, (device, res) in done_before.items():
            assert results[i][1].counts == res.counts and results[i][0] == device
        after = journal.done_results(run_id)
        assert sorted(after) == list(range(N_TASKS))
        assert journal.run_info(run_id).state == "done"
        assert journal.open_jobs(run_id) == [] and journal.pending_tasks(run_id) == []

        # completed work was not submitted again: not by the resumed fleet ...
        resubmitted = [k for d in fleet for s in d.submissions for k in s.circuit_keys]
        assert not {keys[i] for i in done_before} & set(resubmitted)
        # ... and every task that was not done was submitted (and only once per task unless a
        # hedge copied it, which the journal would show as a second job)
        assert {keys[i] for i in range(N_TASKS) if i not in done_before} == set(resubmitted)
        new_jobs = [j for j in journal.jobs(run_id) if j.job_row > jobs_before[-1].job_row]
        assert not {i for j in new_jobs for i in j.task_indices} & set(done_before)
        # every task's result came from a job the journal recorded as done
        done_jobs = [j for j in journal.jobs(run_id) if j.state == "done"]
        for i in range(N_TASKS):
            assert sum(i in j.task_indices for j in done_jobs) >= 1

        # a second resume of the now complete run submits nothing and returns the same results
        again_fleet = build_fleet()
        again = await again_fleet.resume(run_id, journal=journal)
        assert [d.submissions for d in again_fleet] == [[], []]
        assert [(d, r.counts) for d, r in per_circuit(again)] == [(d, r.counts) for d, r in results]


async def test_resume_of_a_complete_run_returns_at_once_without_submitting(
    tmp_path: Path,
) -> None:
    circuits = [tagged_circuit(i) for i in range(3)]
    with Journal(tmp_path / "j.sqlite") as journal:
        fleet = build_fleet()
        first = await fleet.sample(circuits, shots=SHOTS, journal=journal)
        run_id = sample_run_id(first)
        assert journal.run_info(run_id).state == "done"
        submitted = sum(len(d.submissions) for d in fleet)
        assert submitted >= 3

        fresh = build_fleet()
        again = await fresh.resume(run_id, journal=journal)
        assert sum(len(d.submissions) for d in fresh) == 0
        assert [(d, r.counts) for d, r in per_circuit(again)] == [
            (d, r.counts) for d, r in per_circuit(first)
        ]
        for circuit, (_, res) in zip(circuits, per_circuit(again), strict=True):
            assert_matches_exact(circuit, res.counts, SHOTS)


def test_cli_runs_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cli.sqlite"
    with Journal(path) as journal:
        circuits = [tagged_circuit(i) for i in range(2)]
        journal.start_run("complete-run", circuits=circuits, shots=[10, 10], options={})
        row = journal.job_submitting(
            "complete-run", device="local:x", task_indices=[0, 1], shots=10
        )
        r = multiqpu.CircuitResult(counts={"00000": 10}, shots=10)
        journal.job_done(row, [r, r], calibration_fingerprint=None, timings=None)
        journal.finish_run("complete-run", "done")
        journal.start_run("half-run", circuits=circuits, shots=[10, 10], options={"policy": "x"})

    assert cli_main(["runs", "--journal", str(path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["state"], r["n_done"], r["n_tasks"]) for r in listed] == [
        ("half-run", "running", 0, 2),
        ("complete-run", "done", 2, 2),
    ]
    assert listed[1]["devices"] == ["local:x"] and listed[0]["options"] == {"policy": "x"}

    assert cli_main(["runs", "--journal", str(path), "--limit", "1"]) == 0
    table = capsys.readouterr().out
    assert "half-run" in table and "0/2" in table and "complete-run" not in table

    assert cli_main(["resume", "no-such-run", "--journal", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "no run 'no-such-run'" in lines[0] and captured.out == ""

    assert cli_main(["resume", "complete-run", "--journal", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["n_done"], summary["new_jobs"], summary["done_before"]) == (2, 0, 2)

    assert cli_main(["resume", "complete-run", "--journal", str(path)]) == 0
    assert "already complete" in capsys.readouterr().out


def test_cli_runs_on_an_empty_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.sqlite"
    assert cli_main(["runs", "--journal", str(path)]) == 0
    assert "no runs recorded yet" in capsys.readouterr().out
    assert cli_main(["runs", "--journal", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cli_resume_with_journal_from_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MULTIQPU_JOURNAL", str(tmp_path / "env.sqlite"))
    assert cli_main(["resume", "missing"]) == 2
    assert str(tmp_path / "env.sqlite") in capsys.readouterr().err


def test_cli_resume_finishes_an_interrupted_run_from_a_config_fleet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``multiqpu resume`` on a run left with 2 tasks done, one job open at a provider that
    cannot re-attach (a local simulator) and one task never submitted."""
    config = tmp_path / "fleet.toml"
    config.write_text(
        '[devices.sim]\nprovider = "local"\nbackend = "ideal"\nnum_qubits = 8\nseed = 3\n'
    )
    path = tmp_path / "cli-resume.sqlite"
    circuits = [tagged_circuit(i) for i in range(4)]
    device = multiqpu.Fleet.from_config(config)["local:ideal"]
    first_two = asyncio.run(device.run(circuits[:2], SHOTS))
    with Journal(path) as journal:
        journal.start_run("cut-short", circuits=circuits, shots=[SHOTS] * 4, options={})
        row = journal.job_submitting(
            "cut-short", device="local:ideal", task_indices=[0, 1], shots=SHOTS
        )
        journal.job_submitted(row, first_two.job_id)
        journal.job_done(row, list(first_two.results), calibration_fingerprint=None, timings=None)
        row = journal.job_submitting(
            "cut-short", device="local:ideal", task_indices=[2], shots=SHOTS
        )
        journal.job_submitted(row, "local-0123456789ab")

    argv = ["resume", "cut-short", "--journal", str(path), "--config", str(config), "--json"]
    assert cli_main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["state"], summary["n_done"], summary["done_before"]) == ("done", 4, 2)
    assert summary["resubmitted_tasks"] == {"local:ideal": 2}
    with Journal(path) as journal:
        done = journal.done_results("cut-short")
        assert sorted(done) == [0, 1, 2, 3]
        assert [done[i][1].counts for i in (0, 1)] == [r.counts for r in first_two.results]
        for i, circuit in enumerate(circuits):
            assert_matches_exact(circuit, done[i][1].counts, SHOTS)
        new = [j for j in journal.jobs("cut-short") if j.job_row > 2]
        assert sorted(i for j in new for i in j.task_indices) == [2, 3]
