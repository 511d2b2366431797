"""Per-sample placement in QNN training: every batch split keeps each sample on a device its
rule allows, whatever the shares, the rules and the quarantined devices (property test)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multiqpu import Placement, PlacementError
from multiqpu.qnn import VirtualDevice, VirtualExecutor
from multiqpu.qnn._shards import allowed_mask, assign


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_assign_keeps_every_sample_on_an_allowed_device(devices: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((n, devices)) < 0.5
    mask[np.arange(n), rng.integers(0, devices, n)] = True  # every rule allows a device
    shares = rng.multinomial(n, np.full(devices, 1 / devices))
    usable = rng.random(devices) < 0.7
    batch = rng.permutation(n)
    parts = assign(batch, shares, mask, usable)
    got = np.concatenate(parts)
    assert sorted(got.tolist()) == sorted(batch.tolist())  # each sample exactly once
    for d, idx in enumerate(parts):
        assert mask[idx, d].all()  # ... on a device its rule allows
        if len(idx) and not usable[d]:  # an unusable device only takes what nobody else may
            assert not (mask[idx] & usable).any()


def test_unrestricted_split_is_the_plain_contiguous_one() -> None:
    parts = assign(np.arange(7), np.array([3, 0, 4]), None, np.ones(3, dtype=bool))
    assert [p.tolist() for p in parts] == [[0, 1, 2], [], [3, 4, 5, 6]]


def test_rules_are_matched_and_refused_before_anything_runs() -> None:
    ex = VirtualExecutor([VirtualDevice("q0"), VirtualDevice("q1")])
    only = Placement("q1", name="one")
    mask = allowed_mask(ex, [None, only, None], 3)
    assert mask is not None and mask.tolist() == [[True, True], [False, True], [True, True]]
    assert allowed_mask(ex, Placement("q*"), 3) is None  # allows all: nothing restricted
    with pytest.raises(PlacementError, match=r"placement 'none'.*sample 2.*allows no device"):
        allowed_mask(ex, [None, None, Placement("x*", name="none")], 3)
