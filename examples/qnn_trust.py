"""Robust aggregation and differential privacy in data-parallel QNN training.

Seven simulated devices on a virtual clock train a classifier on two moons. Two of them are
made dishonest (they return -10 times their gradient): the plain mean is dragged away while
Multi-Krum trains on, reports the two and quarantines them. Then DP-SGD trains with a privacy
budget and stops before it would pass it.

Run: python examples/qnn_trust.py        (about half a minute)
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
from sklearn.datasets import make_moons

from multiqpu.qnn import Privacy, Trainer, VirtualDevice, VirtualExecutor, variational_classifier


def make_dishonest(trainer: Trainer, devices: set[int]) -> None:
    """Fault injection for the demo: these devices' gradients come back as -10x."""
    honest = trainer.workers.absorb

    def absorb(self: Any, done: Any, *args: Any) -> tuple[np.ndarray, int]:
        g, n = honest(done, *args)
        return (-10 * g if done.device in devices else g), n

    trainer.workers.absorb = types.MethodType(absorb, trainer.workers)  # type: ignore[method-assign]


def main() -> None:
    X, y = make_moons(200, noise=0.1, random_state=0)
    X = (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi
    X_train, y_train, X_test, y_test = X[:120], y[:120], X[120:], y[120:]
    devices = [VirtualDevice(f"q{i}", queue_median_s=2.0 + i, queue_sigma=0.5) for i in range(7)]

    def trainer(**kw: Any) -> Trainer:
        return Trainer(variational_classifier(2, 2, layers=2), shots=256, batch_size=14,
                       backup=0, executor=VirtualExecutor(devices, seed=0), **kw)  # fmt: skip

    for name, kw in (("mean", {"aggregator": "mean"}),
                     ("multi_krum", {"aggregator": "multi_krum", "byzantine": 2,
                                     "quarantine": True})):  # fmt: skip
        t = trainer(**kw)
        make_dishonest(t, {1, 4})
        t.fit(X_train, y_train, epochs=6)
        print(
            f"{name:>10}: test accuracy {t.exact_score(X_test, y_test):.2f}, "
            f"outliers {t.history.outliers}, quarantined {t.history.quarantined}"
        )

    t = trainer(privacy=Privacy(clip=1.0, noise=1.1, delta=1e-5, max_epsilon=5.0))
    t.fit(X_train, y_train, epochs=10)
    eps = ", ".join(f"{e.epsilon:.2f}" for e in t.history.epochs)
    print(f"DP-SGD: test accuracy {t.exact_score(X_test, y_test):.2f}, epsilon per epoch {eps}")
    print(t.history.stopped)


if __name__ == "__main__":
    main()
