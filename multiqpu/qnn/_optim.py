"""Optimizers with a serialisable state (for checkpoints): Adam and plain SGD."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from multiqpu.errors import InvalidInputError

__all__ = ["SGD", "Adam", "Optimizer", "make_optimizer"]


class Optimizer(Protocol):
    def step(self, weights: np.ndarray, grad: np.ndarray) -> np.ndarray: ...
    def state(self) -> dict[str, Any]: ...
    def load(self, state: dict[str, Any]) -> None: ...


class SGD:
    def __init__(self, learning_rate: float = 0.1) -> None:
        self.learning_rate = learning_rate

    def step(self, weights: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return weights - self.learning_rate * grad

    def state(self) -> dict[str, Any]:
        return {"name": "sgd", "learning_rate": self.learning_rate}

    def load(self, state: dict[str, Any]) -> None:
        self.learning_rate = float(state["learning_rate"])


class Adam:
    def __init__(
        self,
        learning_rate: float = 0.1,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        self.learning_rate, self.beta1, self.beta2, self.eps = learning_rate, beta1, beta2, eps
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self.t = 0

    def step(self, weights: np.ndarray, grad: np.ndarray) -> np.ndarray:
        if self.m is None or self.v is None:
            self.m = np.zeros_like(weights)
            self.v = np.zeros_like(weights)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return weights - self.learning_rate * m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self) -> dict[str, Any]:
        return {
            "name": "adam",
            "learning_rate": self.learning_rate,
            "betas": [self.beta1, self.beta2],
            "eps": self.eps,
            "t": self.t,
            "m": None if self.m is None else self.m.tolist(),
            "v": None if self.v is None else self.v.tolist(),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.learning_rate = float(state["learning_rate"])
        self.beta1, self.beta2 = (float(b) for b in state["betas"])
        self.eps = float(state["eps"])
        self.t = int(state["t"])
        self.m = None if state["m"] is None else np.asarray(state["m"], dtype=float)
        self.v = None if state["v"] is None else np.asarray(state["v"], dtype=float)


def make_optimizer(optimizer: str | Optimizer, learning_rate: float) -> Optimizer:
    if not isinstance(optimizer, str):
        return optimizer
    if optimizer == "adam":
        return Adam(learning_rate)
    if optimizer == "sgd":
        return SGD(learning_rate)
    raise InvalidInputError(f"optimizer must be 'adam', 'sgd' or an object, got {optimizer!r}")
