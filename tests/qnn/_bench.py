"""Run a benchmark script under tests/benchmarks as a user would and read its one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["run_benchmark"]


def run_benchmark(script: str, *args: str, timeout: float = 600) -> dict[str, Any]:
    """``python tests/benchmarks/<script> <args>`` from the repository root: it must exit 0
    and print exactly one line, a JSON object, which is returned."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout[-4000:]
    out = json.loads(lines[0])
    assert isinstance(out, dict)
    return out
