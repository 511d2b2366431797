"""Placement's shortcuts change no decision: a chunk of tasks whose classes surely have no
room now is set aside without trying to place it (``_placement.unplaceable``), and a
stretch of blocked tasks at the head of the line is set aside in one step
(``_placement.skip_blocked``). Both only save time (docs/scheduler.md, round 11: a
``most_accurate`` run on family seed 11 spent 68 s placing); the run must be the same job
for job with them and without."""

from __future__ import annotations

import numpy as np
import pytest
from test_placement import tables

from multiqpu.scheduler import _placement
from multiqpu.scheduler._core import Core, CoreConfig
from multiqpu.scheduler._learning import Learner
from multiqpu.scheduler._tables import ArraySource


def _run(policy: str, seed: int) -> list[tuple[int, int, bool, tuple[int, ...]]]:
    """A run on four devices, one behind a long queue that is preferred for most classes
    (so they stay blocked while the others are placed), jobs finished oldest first;
    returns every submission (when, device, circuits)."""
    rng = np.random.default_rng(seed)
    n_c, nd = 12, 4
    fid = rng.uniform(0.80, 0.99, (n_c, nd))
    fid[: n_c // 2, 0] = 0.999  # most classes are best on the device with the long queue
    raw = rng.uniform(0.5, 3.0, (n_c, nd))
    fits = rng.random((n_c, nd)) < 0.8
    fits[:, 0] = True
    t = tables(fid, raw, fits=fits)
    cls = rng.integers(0, n_c, 3000)
    cls[:1500] = rng.integers(0, n_c // 2, 1500)  # the head of the line: the pinned classes
    learner = Learner(nd, reported_wait_s=[20_000.0, 30.0, 60.0, 5.0], prior_overhead_s=[1.0] * nd)
    c = Core(
        t,
        ArraySource(np.arange(len(cls)), cls),
        concurrency=[3, 2, 2, 1],
        max_batch=[50, 20, 20, 10],
        learner=learner,
        config=CoreConfig(policy=policy, explore=False, redundancy=0),
    )
    log: list[tuple[int, int, bool, tuple[int, ...]]] = []
    live: dict[int, object] = {}
    now = 0.0
    for _ in range(20_000):
        for s in c.pump(now):
            live[s.job_id] = s
            log.append((int(now), s.device, s.hedge_of is not None, tuple(s.idx.tolist())))
        if c.finished:
            return log
        if not live:
            now += 10.0
            continue
        job_id = next(iter(live))  # the oldest open job ends
        del live[job_id]
        now += 7.0
        d = c.on_done(job_id, now, queue_s=20.0, execution_s=5.0)
        if d is not None:
            for other in d.cancel:
                live.pop(other, None)
    raise AssertionError("the run did not finish")


@pytest.mark.parametrize("policy", ["fastest", "most_accurate", "balanced", "cheapest"])
def test_the_shortcuts_change_no_placement(policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    used = {"unplaceable": 0, "skipped": 0}
    sort_groups, skip_blocked = _placement.sort_groups, _placement.skip_blocked

    def counting_sort(*a, **k):  # called only where a chunk is set aside untried
        used["unplaceable"] += 1
        return sort_groups(*a, **k)

    def counting_skip(*a, **k):
        n = skip_blocked(*a, **k)
        used["skipped"] += n
        return n

    for seed in range(3):
        monkeypatch.setattr(_placement, "sort_groups", counting_sort)
        monkeypatch.setattr(_placement, "skip_blocked", counting_skip)
        fast = _run(policy, seed)
        # without the shortcuts: every chunk tried, blocked tasks set aside chunk by chunk
        monkeypatch.setattr(_placement, "unplaceable", lambda *a, **k: None)
        monkeypatch.setattr(_placement, "skip_blocked", lambda *a, **k: 0)
        slow = _run(policy, seed)
        monkeypatch.undo()
        assert fast == slow
        sent = sorted(i for _, _, copy, idx in fast if not copy for i in idx)
        assert sent == list(range(3000))  # each circuit placed once (copies aside)
    # the shortcuts were taken (the comparison above is not vacuous)
    assert used["unplaceable"] > 0
    assert used["skipped"] > 0
