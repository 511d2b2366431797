"""The QNN time-split benchmark's --quick mode prints one JSON line whose parts add up."""

from __future__ import annotations

import pytest
from _bench import run_benchmark


@pytest.mark.slow
def test_idle_split_covers_the_training_time_and_explains_the_speedup() -> None:
    pytest.importorskip("sklearn")
    run = run_benchmark("qnn_idle.py", "--quick")["runs"][0]
    parts = ("work", "overhead", "starved", "queue", "tail", "left_out")
    assert all(run[k] >= 0 for k in parts)
    # every device-second of the training is in exactly one part (speed-weighted)
    assert sum(run[k] for k in parts) == pytest.approx(1.0, abs=1e-3)
    # the speedup is the fleet's speed at work: work x speed x the one-device run's factor
    assert run["work"] * run["speed"] * run["T1_factor"] == pytest.approx(run["speedup"], rel=1e-2)
    assert run["step_s"][0] <= run["step_s"][1] <= run["step_s"][2]
