"""Shot counts on a ladder (multiqpu.cutting._ladder): the total is kept, nothing gets
fewer than its minimum, few distinct counts remain (so sub-experiments share jobs), and the
variance of a Neyman allocation barely moves."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from multiqpu.cutting._ladder import LADDER_RATIO, on_ladder

counts = st.lists(st.integers(0, 200_000), min_size=0, max_size=300)


@settings(max_examples=300, deadline=None)
@given(counts, st.integers(1, 50))
def test_the_total_zeros_and_minimums_are_kept(shots: list[int], minimum: int) -> None:
    before = np.array(shots, dtype=np.int64)
    after = on_ladder(before, minimum=minimum)
    assert after.sum() == before.sum()
    assert ((after == 0) == (before == 0)).all()
    positive = before > 0
    assert (after[positive] >= np.minimum(before[positive], minimum)).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(11, 100_000), min_size=2, max_size=300))
def test_counts_move_little_and_few_distinct_ones_remain(shots: list[int]) -> None:
    before = np.array(shots, dtype=np.int64)
    after = on_ladder(before)
    # within a rung (rungs are whole numbers: a little more on small counts), except the
    # one count that takes what no rung settled
    ratio = np.maximum(after, before) / np.minimum(after, before)
    assert np.sort(ratio)[-2] <= LADDER_RATIO * (1 + 1 / 11) + 1e-9
    rungs = math.log(before.max() / before.min()) / math.log(LADDER_RATIO) + 4
    assert len(np.unique(after)) <= rungs + 1


def test_a_neyman_allocation_loses_almost_nothing() -> None:
    """The variance sum_i a_i / n_i at the Neyman optimum n_i ~ sqrt(a_i) rises by well
    under 1 % on the ladder, while 500 counts shrink to a few dozen values."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        a = rng.lognormal(0.0, 1.5, size=500)
        exact = np.sqrt(a) / np.sqrt(a).sum() * 450_000
        shots = np.maximum(np.round(exact).astype(np.int64), 1)
        after = on_ladder(shots, minimum=1)
        rise = np.sum(a / after) / np.sum(a / shots) - 1
        assert 0 <= rise < 0.005
        assert len(np.unique(after)) < 80
