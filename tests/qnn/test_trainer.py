"""The data-parallel trainer: it learns, shards follow throughput, async staleness is
bounded, quality weighting favours good devices, checkpoints resume, and it runs on a real
fleet with every device taking a share."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import multiqpu
from multiqpu.pool import DeviceKnowledge
from multiqpu.qnn import (
    FleetExecutor,
    Trainer,
    VirtualDevice,
    VirtualExecutor,
    variational_classifier,
)

sklearn = pytest.importorskip("sklearn")


def _moons(n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    X, y = make_moons(n, noise=0.05, random_state=0)
    X = (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi
    return X, y


def _virtual(n: int, **kw: object) -> VirtualExecutor:
    return VirtualExecutor([VirtualDevice(f"v{i}", **kw) for i in range(n)], seed=1)


@pytest.mark.parametrize("aggregation", ["sync", "async"])
def test_training_reduces_the_loss_and_learns(aggregation: str) -> None:
    X, y = _moons()
    model = variational_classifier(2, 2, layers=3)
    trainer = Trainer(
        model,
        executor=_virtual(3),
        shots=512,
        batch_size=16,
        learning_rate=0.1,
        aggregation=aggregation,
        progress=False,
    )
    before = trainer.exact_score(X, y)
    history = trainer.fit(X, y, epochs=3)
    assert len(history.epochs) == 3
    assert history.epochs[-1].loss < history.epochs[0].loss
    assert trainer.exact_score(X, y) >= max(0.8, before)
    # every sample is used exactly once per epoch, and the work is spread over the devices
    for e in history.epochs:
        assert sum(e.samples) == len(X)
        assert all(s > 0 for s in e.samples)
    batches = -(-len(X) // 16)
    if aggregation == "sync":
        assert trainer.version == 3 * batches
    else:  # a step whenever finished shards cover at least a batch (at most two)
        assert 3 * len(X) // 32 <= trainer.version <= 3 * (batches + 1)


def test_sync_shards_follow_measured_throughput() -> None:
    fast = VirtualDevice(
        "fast", shot_s=2e-4 / 3, queue_median_s=0.01, queue_sigma=0.0, overhead_s=0.0
    )
    slow = VirtualDevice("slow", queue_median_s=0.01, queue_sigma=0.0, overhead_s=0.0)
    X, y = _moons(64)
    trainer = Trainer(
        variational_classifier(2, 2, layers=1),
        shots=256,
        batch_size=32,
        aggregation="sync",
        executor=VirtualExecutor([fast, slow]),
        progress=False,
    )
    # (two batches of 32 an epoch travel as one fused pair, and the first two pairs are
    # launched before anything is measured: the third epoch is the first one sized)
    history = trainer.fit(X, y, epochs=3)
    # after the first batch measured the speeds, the fast device takes ~3/4 of each batch
    share = history.epochs[-1].samples
    assert share[0] / sum(share) == pytest.approx(0.75, abs=0.07)
    # pipelined (the next batch queued behind the running one): shards are sized by the
    # measured device time per circuit, not by turnaround (which includes that wait)
    assert trainer.pipeline == 1
    assert trainer.circuit_s[1] / trainer.circuit_s[0] == pytest.approx(3.0, rel=0.2)


def test_async_staleness_is_bounded() -> None:
    X, y = _moons(96)
    devices = [
        VirtualDevice("quick", queue_median_s=0.1, overhead_s=0.1),
        VirtualDevice("laggard", queue_median_s=60.0, queue_sigma=0.0),
    ]
    trainer = Trainer(
        variational_classifier(2, 2, layers=1),
        shots=128,
        batch_size=8,
        executor=VirtualExecutor(devices),
        aggregation="async",
        max_staleness=1,
        progress=False,
    )
    history = trainer.fit(X, y, epochs=1)
    record = history.epochs[0]
    assert sum(record.samples) == len(X)  # dropped shards were recomputed, none lost
    assert record.dropped > 0  # the laggard's stale gradients were refused


def test_quality_weighting_uses_device_fidelity() -> None:
    X, y = _moons(32)
    devices = [VirtualDevice("good", fidelity=0.95), VirtualDevice("poor", fidelity=0.5)]
    trainer = Trainer(
        variational_classifier(2, 2, layers=1),
        shots=128,
        batch_size=16,
        executor=VirtualExecutor(devices),
        weighting="quality",
        progress=False,
    )
    trainer.fit(X, y, epochs=1)
    assert trainer.workers.quality is not None
    assert trainer.workers.quality[0] / trainer.workers.quality[1] == pytest.approx(0.95 / 0.5)


def test_checkpoint_resumes_training(tmp_path: Path) -> None:
    X, y = _moons(48)
    path = tmp_path / "ckpt.json"

    def make() -> Trainer:
        return Trainer(
            variational_classifier(2, 2, layers=1),
            shots=128,
            batch_size=16,
            executor=_virtual(2),
            checkpoint=path,
            progress=False,
        )

    first = make()
    first.fit(X, y, epochs=2)
    saved = json.loads(path.read_text())
    assert saved["format"] == "multiqpu.qnn.checkpoint/1"
    assert len(saved["history"]["epochs"]) == 2
    # the last weight change, which weight prediction extrapolates (2 devices: pipelined),
    # is carried over the resume: the first shards after it aim where they did before
    assert first.pipeline == 1 and first.extrapolate
    assert np.any(first.server.delta != 0)
    assert saved["delta"] == first.server.delta.tolist()
    from multiqpu.qnn._checkpoint import load_checkpoint

    restored = make()
    load_checkpoint(restored, path)
    assert np.array_equal(restored.server.delta, first.server.delta)
    assert np.array_equal(restored.weights, first.weights)

    second = make()
    history = second.fit(X, y, epochs=3)  # continues at epoch 3 from the checkpoint
    assert [e.epoch for e in history.epochs] == [0, 1, 2]
    assert history.epochs[0] == first.history.epochs[0]
    assert second.version == first.version + 3  # one more epoch of 3 batches
    assert second.optimizer.state()["t"] == second.version


def test_history_plot_writes_an_image(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    X, y = _moons(32)
    trainer = Trainer(
        variational_classifier(2, 2, layers=1),
        shots=128,
        batch_size=16,
        executor=_virtual(2),
        progress=False,
    )
    history = trainer.fit(X, y, epochs=2)
    out = tmp_path / "curve.png"
    history.plot(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = history.plot()
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "accuracy", "per-device share", "gradient staleness"]
    # the share panel stacks one bar per device and epoch, summing to the whole epoch
    share = fig.axes[2]
    assert len(share.patches) == 2 * len(history.devices)
    tops = {round(p.get_x(), 3): 0.0 for p in share.patches}
    for p in share.patches:
        tops[round(p.get_x(), 3)] += p.get_height()
    assert all(abs(t - 1) < 1e-9 for t in tops.values())
    staleness = fig.axes[3].lines[0].get_ydata()
    assert list(staleness) == [e.staleness for e in history.epochs]


@pytest.mark.slow
def test_training_on_a_real_fleet_spreads_the_work() -> None:
    X, y = _moons(24)
    fleet = multiqpu.Fleet(
        [multiqpu.device("local:ideal", num_qubits=4, seed=2), multiqpu.device("local:noisy")]
    )
    trainer = Trainer(
        variational_classifier(2, 2, layers=1),
        fleet,
        shots=256,
        batch_size=12,
        learning_rate=0.2,
        progress=False,
    )
    history = trainer.fit(X, y, epochs=1, X_val=X[:8], y_val=y[:8])
    share = history.share()
    assert set(share) == {"local:ideal", "local:noisy"}
    assert all(v > 0 for v in share.values())
    record = history.epochs[0]
    assert record.val_accuracy is not None and 0.0 <= record.val_accuracy <= 1.0
    assert 0.0 <= trainer.score(X[:8], y[:8]) <= 1.0


def test_bad_labels_are_refused() -> None:
    trainer = Trainer(variational_classifier(2, 2, layers=1), executor=_virtual(1), progress=False)
    with pytest.raises(multiqpu.InvalidInputError, match="labels"):
        trainer.fit(np.zeros((4, 2)), np.array([0, 1, 2, 1]), epochs=1)


async def test_the_trainer_runs_on_the_fleets_pool_and_mitigated_shards_learn_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each mitigated shard runs on ``pool.subset([device])``: what the scheduler learns
    about the device lands in the fleet's own pool, for every later call on the fleet."""
    monkeypatch.setenv("MULTIQPU_CACHE_DIR", str(tmp_path / "cache"))
    noisy = multiqpu.device("local:noisy", num_qubits=2, readout_error=0.05, seed=5)
    narrow = multiqpu.device("local:ideal", num_qubits=1, seed=5)  # the model needs 2 qubits
    fleet = multiqpu.Fleet([noisy, narrow])
    model = variational_classifier(2, 2, layers=1)
    trainer = Trainer(model, fleet, shots=500, progress=False, mitigation=[multiqpu.Readout()])
    assert isinstance(trainer.executor, FleetExecutor)
    assert trainer.executor.names == ["local:noisy"]
    assert trainer.executor.pool.knowledge is fleet.pool.knowledge
    before = fleet.pool.knowledge.get("local:noisy", DeviceKnowledge()).jobs
    X = np.array([[0.2, 1.0]])
    trainer.executor.start(0, model.work(X, trainer.weights, gradients=True), 500, "shard")
    done = await trainer.executor.next()
    assert len(done.results) == model.circuits_per_sample
    assert fleet.pool.knowledge["local:noisy"].jobs > before
