"""The QNN benchmark's --quick mode runs and prints the acceptance keys in one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_benchmark_quick_prints_the_acceptance_keys() -> None:
    pytest.importorskip("sklearn")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "benchmarks" / "qnn.py"), "--quick", "--plot", ""],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    for key in ("speedup.8", "accuracy_gap_paired.8", "accuracy_gap_paired_se.8",
                "quantum_task_accuracy.8", "cut_training_matches_uncut"):  # fmt: skip
        assert key in out
    # the one-device run is every comparison's reference
    assert out["classical"]["speedup"]["1"] == 1.0
    assert out["classical"]["accuracy_gap_paired"]["1"] == 0.0
    assert isinstance(out["cut_training_matches_uncut"], bool)
    assert out["settings"]["default_strategy"]["aggregation"] == "sync"
