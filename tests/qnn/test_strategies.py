"""The training strategies: staleness rules, backup workers, local-update rounds, the
pluggable aggregator, and the simulated devices' shot noise they are measured with."""

from __future__ import annotations

import numpy as np
import pytest

from multiqpu.errors import InvalidInputError
from multiqpu.qnn import Trainer, VirtualDevice, VirtualExecutor, variational_classifier
from multiqpu.qnn._aggregation import correct_stale, weighted_mean
from multiqpu.qnn._local import adaptive_k
from multiqpu.qnn._shares import water_fill
from multiqpu.qnn._simulate import SampledRows, probabilities_array

sklearn = pytest.importorskip("sklearn")


def _moons(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    X, y = make_moons(n, noise=0.05, random_state=0)
    return (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi, y


def test_sampled_rows_draw_the_shot_mean_of_the_exact_distribution() -> None:
    model = variational_classifier(3, 2, layers=2)
    rng = np.random.default_rng(0)
    X, w = rng.uniform(0, np.pi, (4, 3)), model.init_weights(1)
    work = model.work(X, w, gradients=True)
    exact = model.exact_jacobian(X, w)
    f_exact = model.exact_outputs(X, w)
    shots, draws = 400, 200
    fs, jacs = [], []
    for k in range(draws):
        rows = SampledRows(probabilities_array(work), 3, shots, np.random.default_rng(k))
        out = model.outputs(X, w, rows, gradients=True)
        fs.append(out.f)
        jacs.append(out.jac)
    # the mean over draws is within 5 standard errors of the exact value ...
    f_se = np.sqrt((1 - f_exact**2) / shots / draws)
    assert np.all(np.abs(np.mean(fs, axis=0) - f_exact) <= 5 * f_se + 1e-9)
    # ... and the reported variance is the spread of the draws (binomial: (1 - f^2) / shots)
    assert np.allclose(np.std(fs, axis=0), np.sqrt((1 - f_exact**2) / shots), rtol=0.2, atol=2e-3)
    assert (
        np.abs(np.mean(jacs, axis=0) - exact).max()
        < 5 * np.std(jacs, axis=0).max() / np.sqrt(draws) + 1e-9
    )


def test_single_and_double_precision_simulation_agree_with_qiskit() -> None:
    from qiskit.quantum_info import SparsePauliOp, Statevector

    model = variational_classifier(4, 2, layers=2)
    rng = np.random.default_rng(3)
    X, w = rng.uniform(0, np.pi, (3, 4)), model.init_weights(2)
    for i in range(3):
        bound = model.circuit.assign_parameters(
            dict(zip(model.inputs + model.weights, [*X[i], *w], strict=True))
        )
        z = Statevector(bound).expectation_value(SparsePauliOp("IIIZ")).real
        assert model.exact_outputs(X[i : i + 1], w)[0, 0] == pytest.approx(z, abs=1e-10)
    work = model.work(X, w, gradients=True)
    assert np.abs(probabilities_array(work, single=True) - probabilities_array(work)).max() < 1e-5


def test_staleness_rules() -> None:
    g = np.array([[1.0, -2.0], [0.5, 0.5]])
    then = np.zeros((2, 2))
    now = np.array([0.1, -0.1])
    same, factor = correct_stale("scale", g, np.array([2, 4]), then, now)
    assert factor == pytest.approx(1 / 3) and same is g
    _, fresh = correct_stale("scale", g, np.array([0, 1]), then, now)
    assert fresh == 1.0  # one version or less is not penalised
    comp, factor = correct_stale("compensate", g, np.array([1, 1]), then, now)
    assert factor == 1.0
    assert np.allclose(comp, g + 0.04 * g * g * (now - then))
    assert np.allclose(weighted_mean(g, np.array([1.0, 3.0])), [0.625, -0.125])


def test_backup_workers_do_not_wait_for_the_slowest_and_lose_nothing() -> None:
    X, y = _moons(64)
    quick = [VirtualDevice(f"q{i}", queue_median_s=1.0, queue_sigma=0.1) for i in range(3)]
    slow = VirtualDevice("slow", queue_median_s=2000.0, queue_sigma=0.1)

    def train(backup: int) -> tuple[Trainer, object]:
        t = Trainer(variational_classifier(2, 2, layers=1), shots=256, batch_size=16,
                    aggregation="sync", backup=backup, pipeline=0, progress=False,
                    executor=VirtualExecutor([*quick, slow], seed=2))  # fmt: skip
        return t, t.fit(X, y, epochs=2)

    waiting, h0 = train(0)
    backed, h1 = train(1)
    # every sample of every epoch is used either way (a late shard is tallied in the epoch
    # that absorbs it), and every batch is a step
    for h in (h0, h1):
        assert sum(sum(e.samples) for e in h.epochs) == 2 * len(X)  # type: ignore[attr-defined]
    assert backed.version >= waiting.version == 2 * 4
    # with a backup worker the steps went on without the slow device: its late gradients
    # were carried over (stale), and the first epoch (where the slow device's first shard
    # sits in its queue) took less virtual time; the last one drains the late shards
    assert max(e.max_staleness for e in h1.epochs) >= 1  # type: ignore[attr-defined]
    assert max(e.max_staleness for e in h0.epochs) == 0  # type: ignore[attr-defined]
    assert h1.epochs[0].seconds < 0.5 * h0.epochs[0].seconds  # type: ignore[attr-defined]


def test_pipelined_sync_is_one_step_stale_fills_by_speed_and_leaves_out_long_queues(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import multiqpu.qnn._pipelined as pipelined

    monkeypatch.setattr(pipelined, "FUSE", 1)  # one job a batch (fused: test_pipelined_fused)
    X, y = _moons(64)
    # work-dominated shards (a queue wait on an idle device counts as its device time)
    fast = VirtualDevice("fast", shot_s=1e-3, queue_median_s=0.5, overhead_s=2.0)
    slow = VirtualDevice("slow", shot_s=3e-3, queue_median_s=0.5, overhead_s=2.0)
    queued = VirtualDevice("queued", queue_median_s=600.0, queue_sigma=0.1)
    ex = VirtualExecutor([fast, slow, queued], seed=3)
    trainer = Trainer(variational_classifier(2, 2, layers=1), shots=256, batch_size=16,
                      backup=0, progress=False, executor=ex)  # fmt: skip
    assert trainer.aggregation == "sync" and trainer.pipeline == 1  # the default on a fleet
    before = trainer.exact_score(X, y)
    history = trainer.fit(X, y, epochs=3)
    # every batch is one step, every sample used once per epoch, every gradient but the
    # first batch's exactly one version old
    assert trainer.version == 3 * 4
    assert [sum(e.samples) for e in history.epochs] == [len(X)] * 3
    assert history.epochs[0].max_staleness == 1 and history.epochs[1].staleness == 1.0
    # the device whose queue (prior) is far longer than the others' never holds a step;
    # the 3x faster device takes about 3/4 of the later batches (overheads water-filled)
    last = history.epochs[-1].samples
    assert last[2] == 0 and ex.busy_s[2] == 0.0
    assert last[0] / (last[0] + last[1]) == pytest.approx(0.75, abs=0.1)
    learned = trainer.exact_score(X, y)
    assert learned >= before + 0.15
    # without the pipeline every step waits for its own shards (staleness 0), slower
    plain = Trainer(variational_classifier(2, 2, layers=1), shots=256, batch_size=16,
                    backup=0, pipeline=0, progress=False,
                    executor=VirtualExecutor([fast, slow, queued], seed=3))  # fmt: skip
    h0 = plain.fit(X, y, epochs=3)
    assert max(e.max_staleness for e in h0.epochs) == 0
    assert plain.executor.now() > ex.now()
    assert learned >= plain.exact_score(X, y) - 0.1  # one version stale: about as accurate
    # water-filling: equal overhead + share * time per sample on every device given any
    x = water_fill(10, np.array([1.0, 2.0, 4.0]), np.array([1.0, 1.0, 30.0]))
    assert x[2] == 0 and x.sum() == pytest.approx(10) and 1 + x[0] == pytest.approx(1 + 2 * x[1])


def test_local_update_training_learns_and_adapts_k() -> None:
    X, y = _moons(96)
    devices = [VirtualDevice(f"v{i}", shot_s=2e-4 * (1 + 0.3 * i)) for i in range(3)]
    trainer = Trainer(variational_classifier(2, 2, layers=3), shots=512, batch_size=16,
                      learning_rate=0.1, aggregation="local", progress=False,
                      executor=VirtualExecutor(devices, seed=1))  # fmt: skip
    before = trainer.exact_score(X, y)
    history = trainer.fit(X, y, epochs=3)
    assert trainer.exact_score(X, y) >= max(0.8, before)
    assert [sum(e.samples) for e in history.epochs] == [len(X)] * 3
    assert all(s > 0 for s in history.epochs[-1].samples)
    assert trainer.rounds[0] == 1  # nothing measured yet: one step each
    assert max(trainer.rounds) > 1  # then several local steps per round
    assert max(e.max_staleness for e in history.epochs) <= trainer.max_local_steps - 1


def test_local_steps_fixed_and_adaptive_rule() -> None:
    X, y = _moons(48)
    two = VirtualExecutor([VirtualDevice("a"), VirtualDevice("b")])
    trainer = Trainer(variational_classifier(2, 2, layers=1), shots=128, batch_size=8,
                      aggregation="local", local_steps=2, progress=False,
                      executor=two)  # fmt: skip
    history = trainer.fit(X, y, epochs=1)
    assert set(trainer.rounds) == {2}
    assert history.epochs[0].max_staleness <= 1
    # k: the smallest count for which a 90 % queue wait is at most 10 % of a round
    assert adaptive_k(np.array([10.0, 20.0]), np.array([50.0, 100.0]), 8) == 4
    assert adaptive_k(np.array([10.0]), np.array([np.nan]), 8) == 1
    assert adaptive_k(np.array([1000.0]), np.array([1.0]), 8) == 8


@pytest.mark.parametrize("aggregation", ["sync", "async", "local"])
def test_the_aggregator_is_pluggable(aggregation: str) -> None:
    calls: list[int] = []

    def median(grads: np.ndarray, weights: np.ndarray) -> np.ndarray:
        calls.append(len(grads))
        return np.median(grads, axis=0)

    X, y = _moons(32)
    two = VirtualExecutor([VirtualDevice("a"), VirtualDevice("b")])
    trainer = Trainer(variational_classifier(2, 2, layers=1), shots=128, batch_size=8,
                      aggregation=aggregation,  # type: ignore[arg-type]
                      aggregator=median, progress=False, executor=two)  # fmt: skip
    trainer.fit(X, y, epochs=1)
    assert calls and trainer.version > 0


def test_strategy_options_are_checked() -> None:
    model = variational_classifier(2, 2, layers=1)
    ex = VirtualExecutor([VirtualDevice("a"), VirtualDevice("b")])
    for kw in ({"aggregation": "gossip"}, {"staleness": "ignore"},
               {"aggregation": "async", "backup": 1}, {"aggregation": "sync", "backup": 2},
               {"aggregation": "sync", "local_steps": 2}, {"aggregation": "local",
                                                          "local_steps": 0},
               {"aggregation": "async", "pipeline": 1}, {"pipeline": -1},
               {"pipeline": "deep"}):  # fmt: skip
        with pytest.raises(InvalidInputError):
            Trainer(model, executor=ex, **kw)  # type: ignore[arg-type]
    assert Trainer(model, executor=ex, aggregation="sync").backup == 0  # auto: 2 // 4
    four = VirtualExecutor([VirtualDevice(f"d{i}") for i in range(8)])
    assert Trainer(model, executor=four, aggregation="sync").backup == 2
