"""Classification loss on QNN outputs: logits ``z = scale * <O_k>``; one output means two
classes with ``P(class 1) = sigmoid(z)``, K >= 2 outputs a softmax over K classes. The loss is
the cross-entropy; its gradient reaches the weights through the parameter-shift Jacobian."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Loss", "loss_and_grad"]


@dataclass(frozen=True)
class Loss:
    outputs: int
    scale: float = 4.0

    def probabilities(self, f: np.ndarray) -> np.ndarray:
        """(n, classes) class probabilities from outputs (n, K)."""
        z = self.scale * np.asarray(f, dtype=float)
        if self.outputs == 1:
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def loss_and_grad(
    loss: Loss, f: np.ndarray, y: np.ndarray, jac: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample: cross-entropy, gradient w.r.t. the weights (``(n, P)``, empty when no
    Jacobian is given) and whether the most probable class is right."""
    p = loss.probabilities(f)
    n = len(y)
    picked = np.clip(p[np.arange(n), y], 1e-12, 1.0)
    values = -np.log(picked)
    correct = np.argmax(p, axis=1) == y
    if jac is None:
        return values, np.zeros((n, 0)), correct
    if loss.outputs == 1:
        dz = (p[:, 1] - y)[:, None]
    else:
        dz = p.copy()
        dz[np.arange(n), y] -= 1.0
    grad = np.einsum("nk,nkp->np", loss.scale * dz, jac)
    return values, grad, correct
