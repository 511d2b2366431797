"""The QNN benchmark's --quick mode runs and prints the acceptance keys in one JSON line."""

from __future__ import annotations

import pytest
from _bench import run_benchmark


@pytest.mark.slow
def test_benchmark_quick_prints_the_acceptance_keys() -> None:
    pytest.importorskip("sklearn")
    out = run_benchmark("qnn.py", "--quick", "--plot", "", timeout=900)
    for key in ("speedup.8", "speedup_se.8", "accuracy_gap_paired.8",
                "accuracy_gap_paired_se.8", "quantum_task_accuracy.8",
                "cut_training_matches_uncut"):  # fmt: skip
        assert key in out
    # per-seed figures: their mean is the reported speedup
    per = out["classical"]["speedup_per_seed"]["8"]
    assert len(per) == 2 and abs(sum(per) / 2 - out["speedup.8"]) <= 0.01
    # the one-device run is every comparison's reference
    assert out["classical"]["speedup"]["1"] == 1.0
    assert out["classical"]["accuracy_gap_paired"]["1"] == 0.0
    assert isinstance(out["cut_training_matches_uncut"], bool)
    assert out["settings"]["default_strategy"]["aggregation"] == "sync"
