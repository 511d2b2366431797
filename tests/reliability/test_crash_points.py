"""Crash points, reduced (tests/benchmarks/chaos.py runs 24): SIGKILL a real orchestrator
process inside a submit call, while polling, and inside a journal write; resume each; and two
processes sharing one journal file, one of them killed. See _crash.py for the child."""

from __future__ import annotations

from pathlib import Path

import pytest
from _crash import crash_and_resume, shared_journal


@pytest.mark.slow
@pytest.mark.parametrize("phase,k", [("submit", 6), ("poll", 9), ("journal", 25)])
async def test_sigkill_at_a_crash_point_then_resume(tmp_path: Path, phase: str, k: int) -> None:
    out = await crash_and_resume(tmp_path / "journal.sqlite", phase, k)
    assert out.killed, "the child finished before its crash point"
    assert out.journal_opened and out.resumed
    assert out.resubmitted_completed == 0


@pytest.mark.slow
async def test_two_processes_share_one_journal_file(tmp_path: Path) -> None:
    out = await shared_journal(tmp_path / "shared.sqlite", k=30)
    assert out == {
        "killed": True,
        "other_finished": True,
        "resumed": True,
        "states": ["done", "done"],
        "complete": True,
        "integrity": "ok",
    }
