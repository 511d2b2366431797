"""DP-SGD: per-sample clipping, the Gaussian noise, the budget from dp-accounting per epoch,
stopping within max_epsilon, and the refusals."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import pytest

from multiqpu.errors import InvalidInputError
from multiqpu.qnn import Privacy, Trainer, VirtualDevice, VirtualExecutor, variational_classifier
from multiqpu.qnn._epochs import EpochStats, Progress
from multiqpu.qnn._loss import loss_and_grad
from multiqpu.qnn._privacy import PrivateMean, clip_rows

dp_accounting = pytest.importorskip("dp_accounting")
sklearn = pytest.importorskip("sklearn")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _trust_qnn  # noqa: E402


def _independent_epsilon(q: float, noise: float, steps: int, delta: float) -> float:
    acc = dp_accounting.rdp.RdpAccountant([float(a) for a in range(2, 257)])
    acc.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(noise)),
                steps)  # fmt: skip
    return float(acc.get_epsilon(delta))


def test_clip_rows_bounds_norms_and_keeps_small_rows() -> None:
    g = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    c = clip_rows(g, 1.0)
    assert np.allclose(c, [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]])
    assert np.linalg.norm(c, axis=1).max() <= 1.0 + 1e-12


def test_shards_clip_every_sample_before_the_mean() -> None:
    X, y, _, _ = _trust_qnn.task(0)
    model = variational_classifier(2, 2, layers=2)
    # exact results (shots=None): the per-sample gradients can be recomputed independently
    t = Trainer(model, shots=None, privacy=Privacy(clip=0.05, noise=1.0),
                executor=VirtualExecutor([VirtualDevice("q0")], seed=0))  # fmt: skip
    idx = np.arange(10)

    async def one() -> tuple[np.ndarray, object]:
        t.workers.start(0, X, idx, t.weights, 0)
        done = await t.executor.next()
        g, _ = t.workers.absorb(done, X, y, EpochStats(1), Progress(False, ["q0"], 1, 10))
        return g, done

    g, _ = asyncio.run(one())
    f, jac = model.exact_outputs(X[idx], t.weights), model.exact_jacobian(X[idx], t.weights)
    _, per, _ = loss_and_grad(t.loss, f, y[idx], jac)
    assert np.linalg.norm(per, axis=1).min() > 0.05  # the clip is active on every sample
    expected = (per * (0.05 / np.linalg.norm(per, axis=1, keepdims=True))).mean(axis=0)
    assert np.allclose(g, expected)
    assert np.linalg.norm(g) <= 0.05 + 1e-12


def test_noise_has_the_dp_sgd_standard_deviation() -> None:
    agg = PrivateMean(Privacy(clip=2.0, noise=1.5), np.random.default_rng(0))
    rows, weights = np.zeros((3, 4)), np.array([4.0, 4.0, 2.0])  # B = 10 samples
    draws = np.array([agg(rows, weights) for _ in range(4000)])
    sd = 1.5 * 2.0 / 10
    # the sample sd of 16000 normal draws is within 3 % of sigma C / B (about 5 of its SEs)
    assert draws.std() == pytest.approx(sd, rel=0.03)
    assert abs(draws.mean()) < 5 * sd / np.sqrt(draws.size)


def test_epsilon_per_epoch_matches_an_independent_accountant() -> None:
    X, y, _, _ = _trust_qnn.task(1)
    p = Privacy(clip=1.0, noise=1.1, delta=1e-5)
    t = Trainer(variational_classifier(2, 2, layers=2), shots=256, batch_size=14, privacy=p,
                executor=VirtualExecutor(_trust_qnn.fleet(1, 4), seed=1))  # fmt: skip
    t.fit(X, y, epochs=3)
    steps = -(-len(X) // 14)
    for k, e in enumerate(t.history.epochs, start=1):
        assert e.epsilon == pytest.approx(_independent_epsilon(14 / len(X), 1.1, k * steps, 1e-5),
                                          abs=1e-6)  # fmt: skip
    assert t.version == 3 * steps  # one step per batch: what the accountant counted
    eps = [float(e.epsilon or 0.0) for e in t.history.epochs]
    assert eps == sorted(eps) and eps[0] > 0
    assert t.history.stopped is None


def test_training_stops_at_the_last_epoch_within_max_epsilon() -> None:
    X, y, _, _ = _trust_qnn.task(2)
    steps = -(-len(X) // 14)
    two = _independent_epsilon(14 / len(X), 1.1, 2 * steps, 1e-5)
    three = _independent_epsilon(14 / len(X), 1.1, 3 * steps, 1e-5)
    cap = (two + three) / 2
    p = Privacy(clip=1.0, noise=1.1, delta=1e-5, max_epsilon=cap)
    t = Trainer(variational_classifier(2, 2, layers=2), shots=256, batch_size=14, privacy=p,
                executor=VirtualExecutor(_trust_qnn.fleet(2, 4), seed=2))  # fmt: skip
    t.fit(X, y, epochs=6)
    assert len(t.history.epochs) == 2
    assert t.history.epochs[-1].epsilon == pytest.approx(two, abs=1e-6) and two <= cap
    assert t.history.stopped is not None and "max_epsilon" in t.history.stopped
    # a budget below one epoch: nothing is trained at all
    p0 = Privacy(clip=1.0, noise=1.1, max_epsilon=1e-3)
    t0 = Trainer(variational_classifier(2, 2, layers=2), shots=256, batch_size=14, privacy=p0,
                 executor=VirtualExecutor(_trust_qnn.fleet(2, 4), seed=2))  # fmt: skip
    w = t0.weights.copy()
    t0.fit(X, y, epochs=2)
    assert not t0.history.epochs and np.array_equal(t0.weights, w) and t0.history.stopped


def test_privacy_refusals() -> None:
    model = variational_classifier(2, 2, layers=1)
    ex = VirtualExecutor([VirtualDevice(f"q{i}") for i in range(4)])
    p = Privacy(clip=1.0, noise=1.0)
    for kw in ({"aggregation": "async"}, {"aggregation": "local"}, {"backup": 1},
               {"weighting": "quality"}, {"aggregator": "median"}):  # fmt: skip
        with pytest.raises(InvalidInputError, match="privacy"):
            Trainer(model, executor=ex, privacy=p, **kw)
    for bad in ({"clip": 0.0, "noise": 1.0}, {"clip": 1.0, "noise": -1.0},
                {"clip": 1.0, "noise": 1.0, "delta": 1.0},
                {"clip": 1.0, "noise": 1.0, "max_epsilon": 0.0}):  # fmt: skip
        with pytest.raises(InvalidInputError):
            Privacy(**bad)
