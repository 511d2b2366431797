"""Watch a trainer from a test: the weights after every step, and the samples whose gradients
the server used (by wrapping ``server.step`` and ``workers.absorb``)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from multiqpu.qnn import Trainer

__all__ = ["record_versions", "record_used"]


def record_versions(trainer: Trainer) -> list[np.ndarray]:
    """The trainer's weights now and after each step it takes from here on."""
    versions = [trainer.weights.copy()]
    step = trainer.server.step

    def recorded(grad: Any, factor: float = 1.0) -> None:
        step(grad, factor)
        versions.append(trainer.server.weights.copy())

    trainer.server.step = recorded  # type: ignore[method-assign]
    return versions


def record_used(trainer: Trainer) -> Counter[int]:
    """How many times each sample's gradient is absorbed from here on."""
    used: Counter[int] = Counter()
    absorb = trainer.workers.absorb

    def audited(done: Any, *args: Any) -> Any:
        used.update(int(i) for i in done.tag[0])
        return absorb(done, *args)

    trainer.workers.absorb = audited  # type: ignore[method-assign,assignment]
    return used
