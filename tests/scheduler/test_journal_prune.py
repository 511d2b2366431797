"""Pruning the job journal (``Journal.prune``, ``multiqpu runs prune``) on real SQLite files
filled by real runs: only finished runs go, interrupted ones stay resumable, the cache is
pruned by age, and the file shrinks."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from qiskit import QuantumCircuit

import multiqpu
from multiqpu.cli import main
from multiqpu.errors import InvalidInputError
from multiqpu.journal import Journal

DAY = 86400.0


def circuit(i: int) -> QuantumCircuit:
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.ry(0.1 * (i + 1), 2)
    qc.measure_all()
    return qc


def backdate(path: Path, run_id: str, days: float) -> None:
    """Make a recorded run (and the cache rows of that time) look ``days`` old."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE runs SET created_at = created_at - ?, finished_at = finished_at - ?"
            " WHERE run_id = ?",
            (days * DAY, days * DAY, run_id),
        )


async def fill(path: Path, n_runs: int = 4, circuits: int = 30) -> list[str]:
    """``n_runs`` finished runs (newest last), exact ones so the cache is filled too."""
    fleet = multiqpu.Fleet([multiqpu.device("local:ideal", num_qubits=4, seed=3)])
    ids = []
    with Journal(path) as journal:
        for r in range(n_runs):
            batch = [circuit(100 * r + i) for i in range(circuits)]
            result = await fleet.sample(batch, shots=None, journal=journal)
            ids.append(result.run_id)
    return ids


def interrupted_run(path: Path) -> str:
    """A run recorded as running whose process never finished it (needs a resume)."""
    with Journal(path) as journal:
        journal.start_run("interrupted1", circuits=[circuit(7)], shots=[100], options={})
    return "interrupted1"


async def test_prune_by_age_removes_only_old_finished_runs_and_old_cache(tmp_path) -> None:
    path = tmp_path / "j.sqlite"
    ids = await fill(path)
    stuck = interrupted_run(path)
    backdate(path, ids[0], 40)
    backdate(path, ids[1], 35)
    backdate(path, stuck, 60)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE cache SET created_at = created_at - ? WHERE circuit_key IN"
            " (SELECT circuit_key FROM cache ORDER BY circuit_key LIMIT 10)",
            (50 * DAY,),
        )
        cache_before = conn.execute("SELECT COUNT(*) FROM cache").fetchone()[0]
    assert cache_before == 4 * 30
    with Journal(path) as journal:
        dry = journal.prune(older_than=timedelta(days=30), dry_run=True)
        assert dry.dry_run and set(dry.runs) == {ids[0], ids[1]} and dry.cache_entries == 10
        assert len(journal.runs()) == 5  # nothing removed by a dry run
        report = journal.prune(older_than=30 * DAY)
        assert report.runs == (ids[1], ids[0])  # newest first
        assert report.results == 60 and report.jobs >= 2 and report.cache_entries == 10
        kept = {info.run_id: info for info in journal.runs()}
        assert set(kept) == {ids[2], ids[3], stuck}  # the interrupted run stays, though older
        assert journal.pending_tasks(stuck) == [0]  # and can still be resumed
        assert len(journal.done_results(ids[2])) == 30
        with pytest.raises(multiqpu.MultiQPUError, match="no run"):
            journal.run_info(ids[0])
    with sqlite3.connect(path) as conn:  # nothing orphaned: the cascade took every row
        for table in ("tasks", "jobs", "results"):
            orphans = conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE run_id IN (?, ?)", (ids[0], ids[1])
            ).fetchone()[0]
            assert orphans == 0, table
        assert (
            conn.execute(
                "SELECT COUNT(*) FROM job_tasks WHERE job_row NOT IN (SELECT job_row FROM jobs)"
            ).fetchone()[0]
            == 0
        )
        assert conn.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == cache_before - 10


async def test_prune_keep_n_and_vacuum_shrinks_the_file(tmp_path) -> None:
    path = tmp_path / "j.sqlite"
    ids = await fill(path, n_runs=5, circuits=60)
    with Journal(path) as journal:
        report = journal.prune(keep=2, cache=False, vacuum=True)
        assert set(report.runs) == set(ids[:3]) and report.cache_entries == 0
        assert [info.run_id for info in journal.runs()] == [ids[4], ids[3]]
        assert report.size_before is not None and report.size_after is not None
        assert report.size_after < report.size_before
        # a later run on the pruned journal still records and caches as before
        again = await multiqpu.Fleet([multiqpu.device("local:ideal", num_qubits=4, seed=3)]).sample(
            [circuit(400)], shots=None, journal=journal
        )
        assert again.report.from_cache == 1  # ids[4]'s cache entries were kept (cache=False)


def test_prune_refuses_to_guess(tmp_path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        with pytest.raises(InvalidInputError, match="say what to prune"):
            journal.prune()
        with pytest.raises(InvalidInputError, match="older_than"):
            journal.prune(older_than=-1)
        with pytest.raises(InvalidInputError, match="keep"):
            journal.prune(keep=-2)
        with pytest.raises(InvalidInputError, match="keep"):
            journal.prune(keep=True)


async def test_cli_runs_prune(tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / "j.sqlite"
    ids = await fill(path, n_runs=3, circuits=10)
    backdate(path, ids[0], 10)
    monkeypatch.setenv("MULTIQPU_JOURNAL", str(path))
    assert main(["runs", "prune", "--older-than", "1w", "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"] == [ids[0]] and out["dry_run"] is True and out["journal"] == str(path)
    assert main(["runs", "prune", "--older-than", "7d"]) == 0
    line = capsys.readouterr().out
    assert "removed 1 finished run(s)" in line and "10 results" in line
    assert main(["runs", "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [ids[2], ids[1]]
    assert main(["runs", "prune", "--keep", "0", "--journal", str(path)]) == 0
    assert "removed 2 finished run(s)" in capsys.readouterr().out
    # bad input: one line, exit status 2
    assert main(["runs", "prune"]) == 2
    assert "say what to prune" in capsys.readouterr().err
    assert main(["runs", "prune", "--older-than", "30"]) == 2
    assert "not a duration" in capsys.readouterr().err


async def test_cli_runs_suggests_pruning_a_big_journal(tmp_path, capsys, monkeypatch) -> None:
    from multiqpu.cli import _runs

    path = tmp_path / "j.sqlite"
    await fill(path, n_runs=1, circuits=3)
    monkeypatch.setenv("MULTIQPU_JOURNAL", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["runs"]) == 0
    assert "runs prune" not in capsys.readouterr().out  # a small file: no advice
    monkeypatch.setattr(_runs, "BIG_JOURNAL_BYTES", path.stat().st_size - 1)
    assert main(["runs"]) == 0
    assert "runs prune --older-than 30d --dry-run" in capsys.readouterr().out
