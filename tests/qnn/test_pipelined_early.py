"""Pipelined synchronous training on a device whose queue wait is longer than its shards:
its device time is learned without the queue waits, and its shards are launched one batch
early, on the weights predicted two steps ahead (real trainer, simulated devices on a
virtual clock)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pytest
from _audit import record_used, record_versions

from multiqpu.qnn import Trainer, VirtualDevice, VirtualExecutor, variational_classifier
from multiqpu.qnn._pipelined import EARLY, LATE, LATE_STEPS

pytest.importorskip("sklearn")


pytestmark = pytest.mark.usefixtures("unfused")  # one job per batch: conftest


SHOTS = 256
SLOW = 3  # the device with the long queue
LONG = 8.0  # its median queue wait (the others': 3 s)
SIGMA = 0.6  # the shape of its lognormal queue wait
N = 96  # samples: 4 batches of 24


class Recorded(VirtualExecutor):
    """Simulated devices that keep every shard's device, version, batch key and samples."""

    def __init__(self, devices: list[VirtualDevice]) -> None:
        super().__init__(devices, seed=4)
        self.sent: list[tuple[int, int, int, np.ndarray, np.ndarray]] = []

    def start(self, d: int, work: Any, shots: int | None, tag: Any) -> None:
        self.sent.append((d, tag[1], tag[3], np.array(tag[0]), tag[2].copy()))
        super().start(d, work, shots, tag)


def _train(queue_s: float, epochs: int = 3) -> tuple[Trainer, Recorded, list[np.ndarray]]:
    from sklearn.datasets import make_moons

    X, y = make_moons(N, noise=0.05, random_state=0)
    X = (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi
    # a 6-sample shard of the 2-feature classifier is 6 x 9 circuits x 256 shots x 1 ms =
    # 13.8 s plus 1 s of overhead; device SLOW waits ``queue_s`` (median) in its queue, the
    # others 3 s (hidden behind their running shards)
    devices = [VirtualDevice(f"v{i}", shot_s=1e-3, overhead_s=1.0,
                             queue_median_s=queue_s if i == SLOW else 3.0,
                             queue_sigma=SIGMA if i == SLOW else 0.3,
                             concurrency=3)  # an early shard is a third one in flight
               for i in range(4)]  # fmt: skip
    ex = Recorded(devices)
    trainer = Trainer(variational_classifier(2, 2, layers=1), shots=SHOTS, batch_size=24,
                      backup=1, progress=False, executor=ex)  # fmt: skip
    versions = record_versions(trainer)
    used = record_used(trainer)  # the samples whose gradients were used
    trainer.absorbed = used  # type: ignore[attr-defined]
    trainer.fit(X, y, epochs=epochs)
    return trainer, ex, versions


def test_device_time_is_learned_without_the_queue_waits() -> None:
    """A mean of each job's span (from when it could start to its end) learned the queue
    wait of every job that found the device's lane empty as device time."""
    trainer, ex, _ = _train(queue_s=LONG)
    true = np.array([SHOTS * dev.shot_s for dev in ex.spec])
    assert np.allclose(trainer.circuit_s, true, rtol=0.02)


def test_a_long_queue_device_gets_its_shards_one_batch_early() -> None:
    trainer, ex, versions = _train(queue_s=LONG)
    assert trainer.pipeline == 1 and trainer.extrapolate
    # its 90 % wait is over a shard's device time, but not LATE x the others' (left out)
    assert 14.8 * EARLY < LONG * np.exp(1.2816 * SIGMA) < LATE * 3.0 * np.exp(1.2816 * 0.3)
    by_batch: dict[int, list[tuple[int, int, np.ndarray]]] = defaultdict(list)
    for d, version, key, _, weights in ex.sent:
        by_batch[key].append((d, version, weights))
    early = 0
    for shards in by_batch.values():
        others = {v for d, v, _ in shards if d != SLOW}
        slow = [(v, w) for d, v, w in shards if d == SLOW]
        if len(others) != 1 or not slow:
            continue
        (v_others,) = others
        for v, w in slow:
            if v == v_others - 1:  # launched a step before the rest of its batch...
                early += 1
                # ...on the weights predicted two steps ahead of the version it was sent on
                delta = versions[v] - versions[v - 1] if v else 0.0
                assert np.allclose(w, versions[v] + 2 * delta)
            else:
                assert v == v_others
    assert early >= 6  # of 12 batches: every batch once the device is measured
    # staleness: two versions for an early shard, up to LATE_STEPS more when it is late
    assert max(e.max_staleness for e in trainer.history.epochs) <= 2 + LATE_STEPS


def test_early_shards_keep_every_sample_once_per_epoch_and_one_step_per_batch() -> None:
    trainer, _, _ = _train(queue_s=LONG)
    assert getattr(trainer, "absorbed") == Counter({i: 3 for i in range(N)})  # noqa: B009
    assert trainer.version in (3 * 4, 3 * 4 + 1)  # one more when late shards drain


def test_every_batch_has_its_own_key() -> None:
    """Shards are tagged with their batch's serial number, not ``id(batch)``: CPython
    reuses a freed object's address, so a late shard of a finished batch could be taken
    for a shard of a new one (and its own shards, after its step, for nobody's)."""
    _, ex, _ = _train(queue_s=3.0)
    keys: dict[int, set[int]] = defaultdict(set)
    for _, _, key, idx, _ in ex.sent:
        keys[key].update(int(i) for i in idx)
    assert len(keys) == 3 * 4  # 12 batches (no shard here is dropped and sent again)
    assert all(len(samples) == 24 for samples in keys.values())
