"""Every example in examples/ runs to completion (as a user would run it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    env.setdefault("MULTIQPU_JOURNAL", str(tmp_path / "journal.sqlite"))
    env.pop("MULTIQPU_CONFIG", None)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # no user config: the embedded default fleet
    env["MULTIQPU_EXAMPLE_FAST"] = "1"
    proc = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip(), "an example should print what it did"
