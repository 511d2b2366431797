"""Shot parts survive a SIGKILL: a child process samples one circuit whose 16,000 shots are
split into 16 parts of 1,000 (the devices' cap), slowly (each job held back 0.3-1.0 s, one
part per job); the test kills it mid-run with SIGKILL, resumes in this process on a fresh
fleet with the same specs, and checks that only the parts that had not finished were run
again and that the merged counts are the exact sum of every part's counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _physics import assert_matches_exact, tagged_circuit

import multiqpu
from multiqpu.journal import Journal
from multiqpu.testing.faults import FaultyDevice

HERE = Path(__file__).resolve().parent
PARTS = 16
CAP = 1000


def build_fleet() -> multiqpu.Fleet:
    """Two slow devices capped at 1,000 shots, one circuit per job; same specs everywhere."""
    limits = multiqpu.DeviceLimits(max_shots=CAP, max_circuits_per_job=1, max_concurrent_jobs=2)
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
    from test_shots_resume import PARTS, CAP, build_fleet

    asyncio.run(build_fleet().sample([tagged_circuit(6)], shots=PARTS * CAP,
                                     journal=Journal(sys.argv[1])))
    print("finished", flush=True)
    """
)


def _kill_mid_run(path: Path) -> str:
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), str(HERE)], cwd=HERE)
    try:
        with Journal(path) as watcher:
            deadline = time.monotonic() + 120
            while True:
                assert time.monotonic() < deadline, "the run never got mid-way"
                assert proc.poll() is None, "the child finished or died before the kill"
                runs = watcher.runs(limit=1)
                if runs and 3 <= runs[0].n_done <= PARTS - 4:
                    break
                time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return runs[0].run_id


@pytest.mark.slow
async def test_sigkill_mid_split_run_then_resume_reruns_only_unfinished_parts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    run_id = _kill_mid_run(path)
    qc = tagged_circuit(6)
    with Journal(path) as journal:
        assert journal.run_info(run_id).state == "interrupted"
        # the journal holds the parts as the run's tasks, and the plan with the options
        assert [s for _, s in journal.load_circuits(run_id)] == [CAP] * PARTS
        assert journal.run_info(run_id).options["shot_plan"]["owner"] == [0] * PARTS
        done_before = journal.done_results(run_id)
        jobs_before = journal.jobs(run_id)
        assert 3 <= len(done_before) <= PARTS - 4

        fleet = build_fleet()
        result = await fleet.resume(run_id, journal=journal)
        r = result[0]
        assert len(result) == 1 and r.shots == PARTS * CAP
        assert_matches_exact(qc, r.counts, PARTS * CAP)
        assert sum(s.parts for s in r.parts) == PARTS
        # finished parts were not run again: the resumed fleet ran exactly the others ...
        rerun = [s for d in fleet for s in d.submissions]
        assert len(rerun) == PARTS - len(done_before)
        assert all(s.shots == CAP for s in rerun)
        new_jobs = [j for j in journal.jobs(run_id) if j.job_row > jobs_before[-1].job_row]
        assert not {i for j in new_jobs for i in j.task_indices} & set(done_before)
        # ... and the merged counts are the exact sum of the parts, old and new
        after = journal.done_results(run_id)
        assert sorted(after) == list(range(PARTS))
        for i, (_, res) in done_before.items():
            assert after[i][1].counts == res.counts
        total: dict[str, int] = {}
        for _, res in after.values():
            for k, v in res.counts.items():
                total[k] = total.get(k, 0) + v
        assert total == dict(r.counts)
        # every part stayed on the one device the plan pinned it to
        pinned = set(journal.run_info(run_id).options["shot_plan"]["pinned"])
        assert len(pinned) == 1 and {r.device} == pinned
        assert {j.device for j in journal.jobs(run_id)} == pinned
