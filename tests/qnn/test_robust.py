"""Byzantine-robust aggregation: the rules' arithmetic, training with 2 of 7 adversarial
devices on the virtual clock, outlier reports and quarantine, and the refusals."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from multiqpu.errors import InvalidInputError
from multiqpu.qnn import Trainer, VirtualDevice, VirtualExecutor, variational_classifier
from multiqpu.qnn._robust import (
    RobustAggregator,
    coordinate_median,
    krum_scores,
    trimmed_mean,
)

sklearn = pytest.importorskip("sklearn")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _trust_qnn  # noqa: E402

ROWS = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0], [100.0, -100.0]])
W = np.ones(5)


def test_median_and_trimmed_mean_on_known_rows() -> None:
    assert np.allclose(coordinate_median(ROWS), [3.0, 20.0])
    # 20 % of 5 rows: one dropped at each end, per coordinate
    assert np.allclose(trimmed_mean(ROWS, 0.2), [3.0, 20.0])  # (2+3+4)/3, (10+20+30)/3
    assert np.allclose(trimmed_mean(ROWS, 0.0), ROWS.mean(axis=0))
    assert np.allclose(trimmed_mean(ROWS, 0.0, at_least=1), trimmed_mean(ROWS, 0.2))


def test_trimmed_mean_with_byzantine_drops_every_adversary() -> None:
    # 2 adversaries of 7: trim=0.2 alone drops floor(1.4) = 1 row per end and is dragged;
    # byzantine=2 drops two, and each coordinate stays within the honest rows' range
    rng = np.random.default_rng(0)
    honest = rng.normal(1.0, 0.1, (5, 8))
    rows = np.vstack([honest, -10 * honest[:2]])
    plain = RobustAggregator("trimmed_mean", 7)(rows, np.ones(7))
    guarded = RobustAggregator("trimmed_mean", 7, byzantine=2)(rows, np.ones(7))
    assert np.any(plain < honest.min(axis=0))
    assert np.all(guarded >= honest.min(axis=0)) and np.all(guarded <= honest.max(axis=0))
    assert np.allclose(RobustAggregator("mean", 5)(ROWS, np.array([1, 1, 1, 1, 0.0])), [2.5, 25])


def test_krum_picks_the_row_closest_to_its_neighbours() -> None:
    rows = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5], [50.0, 50.0],
                     [-40.0, 60.0]])  # fmt: skip
    scores = krum_scores(rows, 2)  # each row: the 3 nearest others
    # the centre's 3 nearest are corners at squared distance 0.5 each
    assert scores[4] == pytest.approx(1.5)
    assert np.argmin(scores) == 4
    assert np.allclose(RobustAggregator("krum", 7, byzantine=2)(rows, np.ones(7)), [0.5, 0.5])
    # Multi-Krum: the mean of the m - f = 5 best rows: the honest square and its centre
    multi = RobustAggregator("multi_krum", 7, byzantine=2)(rows, np.ones(7))
    assert np.allclose(multi, [0.5, 0.5])


def test_outlier_tally_flags_the_consistent_outlier() -> None:
    agg = RobustAggregator("median", 6)
    rng = np.random.default_rng(0)
    for _ in range(10):
        rows = rng.normal(1.0, 0.1, (6, 4))
        rows[5] = -10 * rows[5]
        agg.combine(rows, np.ones(6), np.arange(6))
    assert list(agg.outliers()) == [5]
    assert agg.rates()[5] == 1.0 and agg.rates()[:5].max() < 0.5


def test_quarantined_devices_count_against_the_adversaries_assumed() -> None:
    agg = RobustAggregator("multi_krum", 7, byzantine=2)
    agg.excluded = np.zeros(7, dtype=bool)
    rows = np.random.default_rng(1).normal(1.0, 0.1, (5, 3))
    assert agg.assumed() == 2
    assert not np.allclose(agg(rows, np.ones(5)), rows.mean(axis=0))  # two rows discarded
    agg.excluded[[1, 4]] = True  # both quarantined: the five left are all kept
    assert agg.assumed() == 0
    assert np.allclose(agg(rows, np.ones(5)), rows.mean(axis=0))


def test_refusals() -> None:
    model = variational_classifier(2, 2, layers=1)
    ex = VirtualExecutor([VirtualDevice(f"q{i}") for i in range(5)])
    with pytest.raises(InvalidInputError, match="asynchronous"):
        Trainer(model, executor=ex, aggregation="async", aggregator="median")
    with pytest.raises(InvalidInputError, match="needs at least 7 devices"):
        Trainer(model, executor=ex, aggregator="krum", byzantine=2, backup=0)
    with pytest.raises(InvalidInputError, match="trim="):
        Trainer(model, executor=ex, aggregator="median", trim=0.1)
    with pytest.raises(InvalidInputError, match="byzantine="):
        Trainer(model, executor=ex, aggregator="median", byzantine=1)
    with pytest.raises(InvalidInputError, match="trimmed_mean with byzantine=3 needs at least 7"):
        Trainer(model, executor=ex, aggregator="trimmed_mean", byzantine=3, backup=0)
    with pytest.raises(InvalidInputError, match="aggregator must be one of"):
        Trainer(model, executor=ex, aggregator="mode")
    with pytest.raises(InvalidInputError, match="trim must be"):
        Trainer(model, executor=ex, aggregator="trimmed_mean", trim=0.5)
    with pytest.raises(InvalidInputError, match="quarantine"):
        Trainer(model, executor=ex, quarantine=True)
    with pytest.raises(InvalidInputError, match="quarantine"):
        Trainer(model, executor=ex, aggregation="async", aggregator="mean", quarantine=True)


@pytest.mark.parametrize("seed", [0, 2])
def test_robust_aggregation_survives_two_adversaries_of_seven(seed: int) -> None:
    _, _, Xt, yt = _trust_qnn.task(seed)
    devices = _trust_qnn.fleet(seed)
    bad = {1, 4}
    honest = [d for i, d in enumerate(devices) if i not in bad]
    base = _trust_qnn.train(seed, honest, set()).exact_score(Xt, yt)
    robust = _trust_qnn.train(seed, devices, bad, aggregator="multi_krum", byzantine=2)
    mean = _trust_qnn.train(seed, devices, bad, aggregator="mean").exact_score(Xt, yt)
    assert base >= 0.65  # the honest fleet learns the task
    assert robust.exact_score(Xt, yt) >= base - 0.06
    assert mean <= base - 0.2  # the plain mean is dragged the wrong way
    assert set(robust.history.outliers) == {"q1", "q4"}
    rate = robust.history.outlier_rate
    assert min(rate["q1"], rate["q4"]) > 0.7
    assert max(r for n, r in rate.items() if n not in ("q1", "q4")) < 0.5


def test_median_in_local_training_reports_the_adversary() -> None:
    seed = 0
    X, y, _, _ = _trust_qnn.task(seed)
    t = Trainer(variational_classifier(2, 2, layers=2), shots=256, batch_size=14,
                aggregation="local", local_steps=2, aggregator="median", seed=seed,
                executor=VirtualExecutor(_trust_qnn.fleet(seed, 5), seed=seed))  # fmt: skip
    _trust_qnn.adversarial(t, {3})
    t.fit(X, y, epochs=3)
    assert t.history.outliers == ["q3"]


def test_quarantine_sends_no_more_shards_to_the_outlier() -> None:
    seed = 0
    X, y, _, _ = _trust_qnn.task(seed)
    t = Trainer(variational_classifier(2, 2, layers=2), shots=256, batch_size=14, backup=0,
                aggregator="trimmed_mean", trim=0.2, quarantine=True, seed=seed,
                executor=VirtualExecutor(_trust_qnn.fleet(seed, 6), seed=seed))  # fmt: skip
    _trust_qnn.adversarial(t, {2})
    t.fit(X, y, epochs=4)
    assert t.history.quarantined == ["q2"]
    first = next(i for i, e in enumerate(t.history.epochs) if e.samples[2] == 0)
    assert first >= 1  # it worked until flagged ...
    assert all(e.samples[2] == 0 for e in t.history.epochs[first:])  # ... then never again
    assert all(sum(e.samples) == len(X) for e in t.history.epochs)  # nothing lost
    restored = t.history.from_dict(t.history.to_dict())
    assert restored.quarantined == ["q2"] and restored.outliers == ["q2"]


@pytest.mark.slow
def test_trust_benchmark_quick_prints_its_keys() -> None:
    from _bench import run_benchmark

    out = run_benchmark("trust.py", "--quick")
    assert out["epsilon_matches_accountant"] is True
    assert out["mean_accuracy_gap"] < out["robust_accuracy_gap"]
    assert {"robust_accuracy_gap_spread", "dp_accuracy_cost", "dp_epsilon"} <= out.keys()
    assert {"control_accuracy_gap_spread", "quarantine_accuracy_gap_spread",
            "trimmed_mean_f2_accuracy_gap_spread"} <= out.keys()  # fmt: skip
    assert out["quarantined_right_rate"] == 1.0  # both adversaries, and only they


def test_quarantine_survives_a_checkpoint_resume(tmp_path: Path) -> None:
    seed = 0
    X, y, _, _ = _trust_qnn.task(seed)
    path = tmp_path / "ckpt.json"

    def make() -> Trainer:
        t = Trainer(variational_classifier(2, 2, layers=2), shots=256, batch_size=14, backup=0,
                    aggregator="median", quarantine=True, seed=seed, checkpoint=path,
                    executor=VirtualExecutor(_trust_qnn.fleet(seed, 5), seed=seed))  # fmt: skip
        _trust_qnn.adversarial(t, {0})
        return t

    make().fit(X, y, epochs=3)
    again = make()
    again.fit(X, y, epochs=4)
    assert again.history.quarantined == ["q0"]
    assert again.history.epochs[-1].samples[0] == 0


def test_a_robust_rule_trains_on_equal_shards_all_on_the_same_weights() -> None:
    """Krum, the median and the trimmed mean compare the rows of a step: honest rows must be
    alike, so every live device gets the same share and the step is not pipelined (no
    early, late or one-step-stale shards among the rows); the plain mean keeps both."""
    seed = 0
    X, y, _, _ = _trust_qnn.task(seed)
    devices = _trust_qnn.fleet(seed)
    robust = Trainer(variational_classifier(2, 2, layers=2), shots=256, batch_size=14,
                     aggregator="multi_krum", byzantine=2, backup=0, seed=seed,
                     executor=VirtualExecutor(devices, seed=seed))  # fmt: skip
    assert robust.pipeline == 0 and not robust.extrapolate and robust.workers.equal
    robust.fit(X, y, epochs=2)
    for epoch in robust.history.epochs:  # 120 samples in batches of 14 over 7 devices
        assert sum(epoch.samples) == len(X) and max(epoch.samples) - min(epoch.samples) <= 2
    assert robust.history.epochs[-1].max_staleness == 0
    plain = Trainer(variational_classifier(2, 2, layers=2), shots=256, batch_size=14,
                    aggregator="mean", executor=VirtualExecutor(devices, seed=seed))  # fmt: skip
    assert plain.pipeline == 1 and not plain.workers.equal
    # asked for a pipeline, a robust rule still gets equal shards
    piped = Trainer(variational_classifier(2, 2, layers=2), shots=256, batch_size=14,
                    aggregator="multi_krum", byzantine=2, backup=0, pipeline=1, seed=seed,
                    executor=VirtualExecutor(devices, seed=seed))  # fmt: skip
    assert piped.pipeline == 1 and piped.workers.equal
    piped.fit(X, y, epochs=1)  # learns unequal device times ...
    assert np.ptp(piped.workers.circuit_s[np.isfinite(piped.workers.circuit_s)]) > 0
    from multiqpu.qnn._shares import split as _split

    active = np.array([True, True, False, True, True, True, True])
    shares = _split(piped.workers, 14, active, np.zeros(7))  # ... yet splits a batch evenly
    assert shares.sum() == 14 and shares[2] == 0 and set(shares[active]) <= {2, 3}
    with pytest.raises(InvalidInputError, match="extrapolate=True needs a pipeline"):
        Trainer(variational_classifier(2, 2, layers=2), aggregator="median", extrapolate=True,
                executor=VirtualExecutor(devices, seed=seed))  # fmt: skip
