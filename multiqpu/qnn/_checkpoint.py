"""Trainer checkpoints: the JSON state a :class:`~multiqpu.qnn.Trainer` saves after every
epoch and reads back on ``fit(..., resume=True)`` (weights, optimizer state, throughput
estimates, history, quarantined devices, the shuffling generator, the last weight change
that weight prediction extrapolates)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multiqpu.errors import InvalidInputError
from multiqpu.qnn.history import History

if TYPE_CHECKING:
    from multiqpu.qnn.trainer import Trainer

__all__ = ["FORMAT", "checkpoint_state", "load_checkpoint", "save_checkpoint"]

FORMAT = "multiqpu.qnn.checkpoint/1"


def checkpoint_state(t: Trainer) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "weights": t.weights.tolist(),
        "delta": t.server.delta.tolist(),
        "version": t.version,
        "optimizer": t.optimizer.state(),
        "throughput": t.workers.throughput.tolist(),
        "measured": t.workers.measured.tolist(),
        "devices": list(t.executor.names),
        "history": t.history.to_dict(),
        "rng": t._rng.bit_generator.state,
    }


def save_checkpoint(t: Trainer, path: str | os.PathLike[str]) -> None:
    """Atomically (a temporary file, then a rename), 0600 in a 0700 folder."""
    from multiqpu._private_files import private_dir, private_file

    path = Path(path)
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    private_file(tmp)
    tmp.write_text(json.dumps(checkpoint_state(t)))
    os.replace(tmp, path)


def load_checkpoint(t: Trainer, path: str | os.PathLike[str]) -> None:
    data = json.loads(Path(path).read_text())
    if data.get("format") != FORMAT:
        raise InvalidInputError(f"{path} is not a multiqpu QNN checkpoint")
    weights = np.asarray(data["weights"], dtype=float)
    if weights.shape != t.weights.shape:
        raise InvalidInputError(
            f"checkpoint {path} holds {weights.size} weights, the model has {t.weights.size}"
        )
    t.server.weights = weights
    # the last weight change (weight prediction); checkpoints before 2026-12-05 have none
    t.server.delta = np.asarray(data.get("delta", np.zeros_like(weights)), dtype=float)
    t.server.version = int(data["version"])
    t.optimizer.load(data["optimizer"])
    if list(data["devices"]) == list(t.executor.names):
        t.workers.throughput = np.asarray(data["throughput"], dtype=float)
        t.workers.measured = np.asarray(data["measured"], dtype=bool)
    t.history = History.from_dict(data["history"])
    for name in t.history.quarantined:  # quarantine survives a resume
        if name in t.executor.names:
            t.workers.excluded[list(t.executor.names).index(name)] = True
    t._rng.bit_generator.state = data["rng"]
