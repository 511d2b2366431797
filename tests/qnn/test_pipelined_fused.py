"""Fused steps in pipelined synchronous training: a device runs its parts of FUSE (2)
consecutive batches as one job (one per-job overhead for two steps), each part on the
weights predicted for its own step, when a batch gives every live device at least
FUSE_MIN samples (real trainer, simulated devices on a virtual clock)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from _audit import record_used, record_versions

import multiqpu.qnn._pipelined as pipelined
from multiqpu.qnn import Trainer, VirtualDevice, VirtualExecutor, variational_classifier

pytest.importorskip("sklearn")

N = 96  # samples: 4 batches of 24 an epoch


class Jobs(VirtualExecutor):
    """Simulated devices that keep every job's version and (part, samples, weights)."""

    def __init__(self, devices: list[VirtualDevice]) -> None:
        super().__init__(devices, seed=5)
        self.jobs: list[tuple[int, list[tuple[int, int, np.ndarray]]]] = []

    def start(self, d: int, work: Any, shots: int | None, tag: Any) -> None:
        self.jobs.append((tag[1], [(h, n, w.copy()) for (h, _), n, w in tag[4]]))
        super().start(d, work, shots, tag)


def _train(
    fuse: int, monkeypatch: pytest.MonkeyPatch, batch: int = 24
) -> tuple[Trainer, Jobs, list[np.ndarray], Counter[int]]:
    from sklearn.datasets import make_moons

    monkeypatch.setattr(pipelined, "FUSE", fuse)
    X, y = make_moons(N, noise=0.05, random_state=0)
    X = (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi
    # a 6-sample part is 6 x 9 circuits x 256 shots x 1 ms = 13.8 s against a 4 s overhead
    devices = [VirtualDevice(f"v{i}", shot_s=1e-3 * (1 + 0.2 * i), overhead_s=4.0,
                             queue_median_s=2.0, queue_sigma=0.3) for i in range(4)]  # fmt: skip
    ex = Jobs(devices)
    trainer = Trainer(variational_classifier(2, 2, layers=1), shots=256, batch_size=batch,
                      progress=False, executor=ex)  # fmt: skip
    versions = record_versions(trainer)
    used = record_used(trainer)
    trainer.fit(X, y, epochs=3)
    return trainer, ex, versions, used


def test_a_job_holds_two_batches_each_part_on_the_weights_of_its_own_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert pipelined.FUSE == 2 and pipelined.FUSE_MIN == 2
    trainer, ex, versions, used = _train(2, monkeypatch)
    fused = [parts for _, parts in ex.jobs if len(parts) == 2]
    assert len(fused) >= 0.8 * len(ex.jobs)  # 24 samples over 4 devices: every job fused
    for version, parts in ex.jobs:
        if len(parts) < 2:
            continue
        (h0, n0, w0), (h1, n1, w1) = parts
        assert (h0, h1) == (0, 1) and n0 > 0 and n1 > 0
        # the second part is aimed one step further along the last change than the first
        last = versions[version] - versions[version - 1] if version else 0.0
        np.testing.assert_allclose(w1 - w0, last, atol=1e-12)
    # one optimizer step per batch (one more when late shards drain at the end), every
    # sample's gradient used once per epoch
    assert trainer.version in (3 * 4, 3 * 4 + 1)
    assert used == Counter({i: 3 for i in range(N)})
    assert sum(sum(e.samples) for e in trainer.history.epochs) == 3 * N
    # the staleness tally counts every version a gradient is behind, the fused ones too
    assert max(e.max_staleness for e in trainer.history.epochs) >= 2


def test_fusing_halves_the_jobs_and_saves_their_overheads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, ex1, _, _ = _train(1, monkeypatch)
    two, ex2, _, _ = _train(2, monkeypatch)
    assert len(ex2.jobs) <= 0.6 * len(ex1.jobs)
    assert one.version == two.version or abs(one.version - two.version) == 1
    # the run ends sooner by at least half the overheads a device no longer pays
    skipped = (len(ex1.jobs) - len(ex2.jobs)) / 4 * 4.0
    assert ex1.now() - ex2.now() >= 0.5 * skipped > 0


def test_batches_of_under_fuse_min_samples_a_device_are_not_fused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trainer, ex, _, used = _train(2, monkeypatch, batch=6)
    assert all(len(parts) == 1 for _, parts in ex.jobs)
    assert used == Counter({i: 3 for i in range(N)})
    assert trainer.version in (3 * 16, 3 * 16 + 1)
