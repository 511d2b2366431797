"""Asynchronous shard sizing and in-flight depth: the planning rules, and the trainer keeping
to them (depth within the plan and the device limit, staleness within its bound, every sample
used once per epoch as in synchronous training)."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pytest

from multiqpu.qnn import Trainer, VirtualDevice, VirtualExecutor, variational_classifier
from multiqpu.qnn._pipeline import MAX_OVERHEAD, plan
from multiqpu.qnn.model import Work

sklearn = pytest.importorskip("sklearn")


def _moons(n: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    X, y = make_moons(n, noise=0.05, random_state=0)
    return (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi, y


def test_shards_grow_until_the_overhead_is_amortised() -> None:
    # 8 equal devices, batch 32: the throughput share is 4 samples; 2 s overhead and 2.56 s
    # per sample need ceil(2 * 0.9 / (0.1 * 2.56)) = 8 samples for overhead <= 10 %
    p = plan(32, [1.0] * 8, [2.56] * 8, [2.0] * 8, [0.0] * 8, [2] * 8, max_staleness=100)
    need = math.ceil(2.0 * (1 - MAX_OVERHEAD) / (MAX_OVERHEAD * 2.56))
    assert p.sizes == (need,) * 8
    assert all(2.0 / (2.0 + s * 2.56) <= MAX_OVERHEAD for s in p.sizes)
    assert p.depths == (1,) * 8  # no queue wait: nothing to hide, one job at a time


def test_depth_covers_the_queue_wait_within_the_device_limit() -> None:
    # one device, 32-sample shards of 1 s each + 1 s overhead = 33 s; a 70 s wait needs
    # ceil(70 / 33) + 1 = 4 in flight, capped at 3 by the device
    p = plan(32, [1.0], [1.0], [1.0], [70.0], [5], max_staleness=100)
    assert p.sizes == (32,) and p.depths == (4,)
    assert plan(32, [1.0], [1.0], [1.0], [70.0], [3], max_staleness=100).depths == (3,)


def test_staleness_budget_shrinks_shards_first_then_depth() -> None:
    def planned(max_staleness: int) -> Any:
        return plan(32, [1.0] * 8, [2.56] * 8, [2.0] * 8, [14.0] * 8, [2] * 8, max_staleness)

    roomy = planned(100)
    assert roomy.sizes == (8,) * 8 and roomy.depths == (2,) * 8  # 4 versions in flight
    tight = planned(4)  # at most 3 versions expected
    assert tight.staleness <= 3 and tight.depths == (2,) * 8 and tight.sizes == (6,) * 8
    tightest = planned(1)  # no room: the throughput share, one in flight
    assert tightest.sizes == (4,) * 8 and tightest.depths == (1,) * 8


def test_unmeasured_devices_get_their_share_and_one_probe_shard() -> None:
    p = plan(16, [3.0, 1.0], [np.nan, np.nan], [2.0, 2.0], [10.0, 10.0], [2, 3], 100)
    assert p.sizes == (12, 4) and p.depths == (1, 1)


class _Recorder(VirtualExecutor):
    """A virtual executor that records the shards in flight on each device."""

    def __init__(self, devices: list[VirtualDevice]) -> None:
        super().__init__(devices, seed=3)
        self.running = [0] * len(devices)
        self.most = [0] * len(devices)

    def start(self, d: int, work: Work, shots: int | None, tag: Any) -> None:
        self.running[d] += 1
        self.most[d] = max(self.most[d], self.running[d])
        super().start(d, work, shots, tag)

    async def next(self) -> Any:
        done = await super().next()
        self.running[done.device] -= 1
        return done


def _audit(trainer: Trainer) -> tuple[list[int], dict[int, list[int]]]:
    """Record the staleness (in parameter versions) of every gradient the server uses and
    the samples it used per epoch, by wrapping the workers' ``absorb_split``."""
    staleness: list[int] = []
    used: dict[int, list[int]] = {}
    absorb = trainer.workers.absorb_split

    def audited(done: Any, X: Any, y: Any, bar: Any) -> dict[Any, Any]:
        idx, version, _, epochs = done.tag
        staleness.append(trainer.version - version)
        for i, e in zip(idx.tolist(), epochs.tolist(), strict=True):
            used.setdefault(int(e), []).append(int(i))
        return absorb(done, X, y, bar)

    trainer.workers.absorb_split = audited  # type: ignore[method-assign]
    return staleness, used


def _fleet() -> list[VirtualDevice]:
    speeds = [1.0, 0.8, 1.2, 0.9]
    return [
        VirtualDevice(f"q{i}", queue_median_s=3.0, overhead_s=2.0, shot_s=2e-4 / s)
        for i, s in enumerate(speeds)
    ]


def test_async_training_keeps_depth_staleness_and_sample_counts() -> None:
    X, y = _moons(64)
    executor = _Recorder(_fleet())
    trainer = Trainer(
        variational_classifier(2, 2, layers=1),
        executor=executor,
        shots=128,
        batch_size=8,
        aggregation="async",
        max_staleness=3,
        progress=False,
    )
    used_staleness, used = _audit(trainer)
    history = trainer.fit(X, y, epochs=2)
    # depth: never above the device's limit, and pipelining did happen
    assert max(executor.most) <= 2 and max(executor.most) == 2
    assert trainer.plan is not None and all(k <= 2 for k in trainer.plan.depths)
    assert trainer.plan.staleness <= trainer.max_staleness - 1
    # shards grew past the throughput share (2 samples) to amortise the 2 s overhead
    assert max(trainer.plan.sizes) > 2
    # staleness: every gradient used was computed at most max_staleness versions ago
    assert used_staleness and max(used_staleness) <= 3
    # counts: every sample used exactly once per epoch, as with synchronous training
    for e, record in enumerate(history.epochs):
        assert sorted(used[e]) == list(range(len(X)))
        assert sum(record.samples) == len(X)


def test_async_and_sync_use_the_same_samples_and_circuits() -> None:
    X, y = _moons(48)
    totals = {}
    updates = {}
    aggregation: Literal["sync", "async"]
    for aggregation in ("sync", "async"):
        trainer = Trainer(
            variational_classifier(2, 2, layers=1),
            executor=VirtualExecutor(_fleet(), seed=1),
            shots=128,
            batch_size=8,
            aggregation=aggregation,
            backup=0,  # every step waits for all shards: each epoch's tally is its own
            progress=False,
        )
        history = trainer.fit(X, y, epochs=2)
        totals[aggregation] = [(sum(e.samples), sum(e.circuits)) for e in history.epochs]
        updates[aggregation] = trainer.version
    per_sample = variational_classifier(2, 2, layers=1).circuits_per_sample
    assert totals["sync"] == totals["async"] == [(48, 48 * per_sample)] * 2
    # async steps hold a batch each (the rest waits for the next step), so the step count
    # is sync's 6 per epoch, plus at most one partial step where epochs overlap
    assert updates["sync"] == 12
    assert 12 <= updates["async"] <= 12 + 2
