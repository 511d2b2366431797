"""Train a QNN wider than every device of the fleet: model parallelism through cutting.

The classifier has 3 qubits; the fleet's two simulated QPUs have 2 qubits each. No device
fits the model, so the trainer estimates every forward and parameter-shift circuit through
the estimate pipeline (multiqpu.pipeline.estimate), which cuts each circuit into fragments
that fit, runs the sub-experiments on both devices and knits the results, with a standard
error, into the model's outputs and gradients. The same model trained uncut on a 3-qubit
device is printed beside it.

Run: python examples/qnn_cut_training.py          (about a minute)
     MULTIQPU_EXAMPLE_FAST=1 python examples/qnn_cut_training.py   (one epoch)
"""

from __future__ import annotations

import os

import numpy as np

import multiqpu
from multiqpu.pool import DevicePool
from multiqpu.qnn import Trainer, variational_classifier

FAST = os.environ.get("MULTIQPU_EXAMPLE_FAST") == "1"


def main() -> None:
    rng = np.random.default_rng(11)
    # two clusters of angles, one per class
    X = np.concatenate([rng.normal(0.6, 0.25, (2, 3)), rng.normal(2.5, 0.25, (2, 3))])
    y = np.array([0, 0, 1, 1])
    model = variational_classifier(3, 2, layers=1)
    settings = {"shots": 2000, "batch_size": 2, "learning_rate": 0.2, "seed": 5,
                "aggregation": "sync", "progress": False}  # fmt: skip
    epochs = 1 if FAST else 3

    small = DevicePool([multiqpu.device("local:ideal", num_qubits=2, seed=i, label=f"two{i}")
                        for i in range(2)])  # fmt: skip
    cut = Trainer(model, small, cut_options={"use_scheduler": False}, **settings)
    print(f"model: {model.num_qubits} qubits; devices: {', '.join(d.spec for d in small)} "
          f"(2 qubits each) -> worker {cut.executor.names[0]}")  # fmt: skip
    cut_history = cut.fit(X, y, epochs=epochs)

    wide = DevicePool([multiqpu.device("local:ideal", num_qubits=3, seed=1, label="three")])
    uncut = Trainer(model, wide, **settings)
    uncut_history = uncut.fit(X, y, epochs=epochs)

    for name, h in (("cut", cut_history), ("uncut", uncut_history)):
        print(f"{name:6s} training loss per epoch: " + ", ".join(f"{e.loss:.3f}" for e in h.epochs))
    print(f"exact accuracy of the weights: cut {cut.exact_score(X, y):.2f}, "
          f"uncut {uncut.exact_score(X, y):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
