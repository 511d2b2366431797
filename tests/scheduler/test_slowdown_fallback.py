"""``balanced``'s plan when no split finishes within ``max_slowdown``'s horizon."""

from __future__ import annotations

import pytest

import multiqpu.scheduler._bounds as bounds
from multiqpu.scheduler import simulate
from multiqpu.scheduler._families import family_scenario


def test_no_split_within_the_slowdown_horizon_takes_the_fastest_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The least-loss program (`fluid_min_loss`) finds no split within aim x the fastest
    # plan's T only by numerical tolerance (it always holds the fastest split; 0 times in
    # 80 family scenarios). Before, `balanced` then sent every new circuit to its most
    # accurate devices alone: on family seed 9076, 965 circuits of up to 88,000 shots on
    # one neutral-atom device, 81.65 M s against `fastest`'s 8,340 s (found by a trial
    # that fed the program other times than T's, so it always failed). Now it takes the
    # fastest split, and the run is bound by max_slowdown.
    sc = family_scenario(9076)
    fleet = list(sc.fleet)
    fast = simulate(fleet, sc.workload, policy="fastest", seed=9076)
    monkeypatch.setattr(bounds, "fluid_min_loss", lambda *args, **kwargs: None)
    bal = simulate(fleet, sc.workload, policy="balanced", seed=9076)
    assert sum(int(d["circuits"]) for d in bal.per_device) == sc.workload.n
    assert bal.limits.get("max_slowdown", 0) >= 1
    # (when written: 7,985 s against 8,340 s)
    assert bal.makespan_s <= 1.6 * fast.makespan_s, (bal.makespan_s, fast.makespan_s)
