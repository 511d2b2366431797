"""Train a variational quantum classifier on the iris data set across the default fleet.

Every device of the fleet (fake IBM QPUs with real calibration data, a noisy Braket emulator,
an ideal simulator, each behind a simulated queue) is a data-parallel worker: each takes
shards of the training data sized by its measured throughput, runs their forward and
parameter-shift circuits, and the gradients are aggregated asynchronously with bounded
staleness. The script prints the test accuracy and each device's share of the work.

Run: python examples/qnn_classifier.py        (about a minute)
     MULTIQPU_EXAMPLE_FAST=1 python examples/qnn_classifier.py   (a few seconds of training)
"""

from __future__ import annotations

import os
import time

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import multiqpu
from multiqpu.qnn import Trainer, variational_classifier

FAST = os.environ.get("MULTIQPU_EXAMPLE_FAST") == "1"


def main() -> None:
    # Versicolor vs virginica from petal length and width: the two iris classes that overlap.
    iris = load_iris()
    keep = iris.target > 0
    X = iris.data[keep][:, 2:4]
    y = iris.target[keep] - 1
    X = (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi  # features as rotation angles
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=1, stratify=y
    )
    if FAST:
        X_train, y_train, X_test, y_test = X_train[:16], y_train[:16], X_test[:8], y_test[:8]

    fleet = multiqpu.Fleet.from_config()
    model = variational_classifier(2, 2, layers=2)
    trainer = Trainer(
        model,
        fleet,
        shots=256,
        batch_size=16,
        learning_rate=0.15,
        aggregation="async",
        seed=3,
    )
    print(f"fleet: {', '.join(d.spec for d in fleet)}")
    print(f"model: {model.num_qubits} qubits, {model.num_weights} weights, "
          f"{model.circuits_per_sample} circuits per sample with gradients")  # fmt: skip
    start = time.perf_counter()
    history = trainer.fit(X_train, y_train, epochs=1 if FAST else 3)
    elapsed = time.perf_counter() - start
    for e in history.epochs:
        print(f"epoch {e.epoch + 1}: loss {e.loss:.3f}, train accuracy {e.accuracy:.2f}, "
              f"{sum(e.circuits)} circuits, {e.seconds:.1f} s")  # fmt: skip
    accuracy = trainer.score(X_test, y_test)
    print(f"test accuracy on the fleet ({len(y_test)} flowers): {accuracy:.2f}")
    print(f"test accuracy of the weights, noise-free: {trainer.exact_score(X_test, y_test):.2f}")
    print(f"training took {elapsed:.1f} s; share of the training circuits per device:")
    for spec, share in sorted(history.share().items(), key=lambda kv: -kv[1]):
        print(f"  {spec:22s} {100 * share:5.1f}%")


if __name__ == "__main__":
    main()
