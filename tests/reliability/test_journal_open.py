"""Processes that open one new journal file at the same moment all get it: SQLite does not
apply its busy timeout to the switch to WAL mode, so without a retry one of two processes
starting on a fresh file failed with "database is locked" (12 of 60 opens by four processes)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from multiqpu.journal import Journal

CHILD = textwrap.dedent(
    """
    import sys
    from multiqpu.journal import Journal

    print("ready", flush=True)
    sys.stdin.readline()  # every process opens at the same moment
    with Journal(sys.argv[1]) as journal:
        journal.start_run(sys.argv[2], circuits=[], shots=[], options={"by": sys.argv[2]})
    print("opened", flush=True)
    """
)


def test_processes_opening_a_new_journal_at_once_all_get_it(tmp_path: Path) -> None:
    rounds, procs_per_round = 12, 4
    for r in range(rounds):
        path = tmp_path / f"new-{r}.sqlite"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(path), f"run-{r}-{k}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for k in range(procs_per_round)
        ]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outcomes = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outcomes, strict=True):
            assert p.returncode == 0 and out.strip() == "opened", err
        with Journal(path) as journal:
            assert sorted(info.run_id for info in journal.runs()) == sorted(
                f"run-{r}-{k}" for k in range(procs_per_round)
            )
