"""Weight prediction in pipelined synchronous training: a batch launched on version ``t`` is
applied ``pipeline`` steps later, so its shards run on the weights extrapolated by the last
step's change, ``w_t + pipeline * (w_t - w_(t-1))`` (real trainer, simulated devices on a
virtual clock)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from multiqpu import InvalidInputError
from multiqpu.qnn import Trainer, VirtualDevice, VirtualExecutor, variational_classifier

pytest.importorskip("sklearn")


pytestmark = pytest.mark.usefixtures("unfused")  # one job per batch: conftest


class Launches(VirtualExecutor):
    """Simulated devices that keep the (version, weights) every shard was launched on."""

    def __init__(self, devices: list[VirtualDevice]) -> None:
        super().__init__(devices, seed=3)
        self.launched: list[tuple[int, np.ndarray]] = []

    def start(self, d: int, work: Any, shots: int | None, tag: Any) -> None:
        self.launched.append((tag[1], tag[2].copy()))
        super().start(d, work, shots, tag)


def _train(
    extrapolate: bool | None, pipeline: int | str = "auto"
) -> tuple[Trainer, Launches, list[np.ndarray]]:
    from sklearn.datasets import make_moons

    X, y = make_moons(40, noise=0.05, random_state=0)
    X = (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi
    devices = [VirtualDevice(f"v{i}", shot_s=1e-3 * (1 + 0.3 * i), queue_median_s=0.5,
                             queue_sigma=0.3, overhead_s=1.0) for i in range(4)]  # fmt: skip
    ex = Launches(devices)
    trainer = Trainer(variational_classifier(2, 2, layers=1), shots=256, batch_size=8,
                      backup=0, progress=False, executor=ex, extrapolate=extrapolate,
                      pipeline=pipeline)  # type: ignore[arg-type]  # fmt: skip
    versions = [trainer.weights.copy()]  # the weights of every version
    step = trainer.server.step

    def recorded(grad: Any, factor: float = 1.0) -> None:
        step(grad, factor)
        versions.append(trainer.server.weights.copy())

    trainer.server.step = recorded  # type: ignore[method-assign]
    trainer.fit(X, y, epochs=2)
    return trainer, ex, versions


@pytest.mark.parametrize("ahead", [1, 2])
def test_shards_are_launched_on_the_extrapolated_weights(ahead: int) -> None:
    trainer, ex, versions = _train(None, ahead)
    assert trainer.extrapolate  # on by default whenever pipelined
    assert trainer.version == 2 * 5 and len(ex.launched) > 2 * 5
    moved = 0
    for version, weights in ex.launched:
        now = versions[version]
        last = versions[version - 1] if version else now
        np.testing.assert_allclose(weights, now + ahead * (now - last), atol=1e-12)
        moved += version > 0
    assert moved > len(ex.launched) // 2  # the prediction was not a no-op


def test_without_prediction_shards_are_launched_on_the_current_weights() -> None:
    trainer, ex, versions = _train(False)
    assert not trainer.extrapolate
    for version, weights in ex.launched:
        np.testing.assert_array_equal(weights, versions[version])


def test_extrapolation_needs_a_pipeline() -> None:
    one = [VirtualDevice("v0")]
    model = variational_classifier(2, 2, layers=1)
    assert not Trainer(model, executor=VirtualExecutor(one), progress=False).extrapolate
    with pytest.raises(InvalidInputError, match="extrapolate"):
        Trainer(model, executor=VirtualExecutor(one), extrapolate=True, progress=False)
    with pytest.raises(InvalidInputError, match="extrapolate"):
        Trainer(model, executor=VirtualExecutor(one * 2), aggregation="async", extrapolate=True,
                progress=False)  # fmt: skip
