"""Pipelined synchronous training when one shard draws a very long queue wait: the late
shard is dropped and its samples trained with a later batch, instead of every device
waiting for it (a device runs its jobs in order, so its next shard is stuck behind it too)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from _audit import record_used

from multiqpu.qnn import Trainer, VirtualDevice, VirtualExecutor, variational_classifier

pytest.importorskip("sklearn")


pytestmark = pytest.mark.usefixtures("unfused")  # one job per batch: conftest


STUCK_S = 5000.0


class OneLongQueue(VirtualExecutor):
    """Simulated devices where device ``stuck`` waits STUCK_S in the queue for its job
    number ``job`` (a long lognormal draw, made certain)."""

    def __init__(self, devices: list[VirtualDevice], stuck: int, job: int) -> None:
        super().__init__(devices, seed=2)
        self.stuck, self.job, self.sent = stuck, job, 0

    def start(self, d: int, work: Any, shots: int | None, tag: Any) -> None:
        if d == self.stuck:
            self.sent += 1
        if d == self.stuck and self.sent == self.job:
            dev = self.spec[d]
            self.spec[d] = replace(dev, queue_median_s=STUCK_S, queue_sigma=0.0)
            super().start(d, work, shots, tag)
            self.spec[d] = dev
            return
        super().start(d, work, shots, tag)


def _data(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    X, y = make_moons(n, noise=0.05, random_state=0)
    return (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi, y


def test_a_late_shard_stuck_in_a_long_queue_is_dropped_and_its_samples_trained_later() -> None:
    X, y = _data()
    devices = [VirtualDevice(f"v{i}", shot_s=1e-3, queue_median_s=0.5, queue_sigma=0.1,
                             overhead_s=1.0) for i in range(4)]  # fmt: skip
    ex = OneLongQueue(devices, stuck=3, job=4)
    trainer = Trainer(variational_classifier(2, 2, layers=1), shots=256, batch_size=12,
                      backup=1, progress=False, executor=ex)  # fmt: skip
    used = record_used(trainer)
    steps: list[float] = []
    step = trainer.server.step

    def timed(grad: Any, factor: float = 1.0) -> None:
        steps.append(ex.now())
        step(grad, factor)

    trainer.server.step = timed  # type: ignore[method-assign]
    history = trainer.fit(X, y, epochs=3)
    # one step per batch (and one more at the end when late shards are left to drain),
    # and no step waited for the stuck shard: every step but the drain at the very end
    # (which collects everything still in flight) came long before it ended
    assert trainer.version in (3 * 4, 3 * 4 + 1)
    assert max(steps[:-1]) < 0.2 * STUCK_S
    # every sample's gradient used exactly once per epoch: the stuck shard's samples were
    # trained with a later batch, and its own result, when it came, was dropped
    assert used == Counter({i: 3 for i in range(len(X))})
    assert sum(sum(e.samples) for e in history.epochs) == 3 * len(X)
    assert ex.now() >= STUCK_S  # the stuck job did run (it cannot be cancelled)
    assert max(e.max_staleness for e in history.epochs) <= 2


@pytest.mark.parametrize("late_steps", [1, 2])
def test_late_shards_are_used_up_to_late_steps_later(
    late_steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step waits only for the late shards of batches stepped LATE_STEPS (default 2) or
    more steps before: a late shard's gradient is at most ``1 + LATE_STEPS`` versions old
    (no device here has its shards launched early: every 90 % queue wait is under a shard's
    device time), and every sample is still used once per epoch."""
    import multiqpu.qnn._pipelined as pipelined

    assert pipelined.LATE_STEPS == 2
    monkeypatch.setattr(pipelined, "LATE_STEPS", late_steps)
    X, y = _data(96)
    devices = [VirtualDevice(f"v{i}", shot_s=1e-3, overhead_s=1.0, queue_median_s=1.0,
                             queue_sigma=1.5, concurrency=3) for i in range(6)]  # fmt: skip
    ex = VirtualExecutor(devices, seed=0)
    trainer = Trainer(variational_classifier(2, 2, layers=1), shots=256, batch_size=24,
                      progress=False, executor=ex)  # fmt: skip
    used: Counter[int] = Counter()
    ages: Counter[int] = Counter()
    absorb = trainer.workers.absorb

    def audited(done: Any, *args: Any) -> Any:
        used.update(int(i) for i in done.tag[0])
        ages[trainer.server.version - done.tag[1]] += 1
        return absorb(done, *args)

    trainer.workers.absorb = audited  # type: ignore[method-assign,assignment]
    trainer.fit(X, y, epochs=3)
    assert used == Counter({i: 3 for i in range(96)})
    assert max(ages) == 1 + late_steps  # late shards were used as late as allowed, no later
