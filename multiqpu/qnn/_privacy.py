"""Differentially private training (DP-SGD) and its privacy budget.

``Trainer(..., privacy=Privacy(clip=C, noise=sigma, delta=1e-5, max_epsilon=eps))``:

* every sample's gradient is clipped to L2 norm ``C`` on the host, from the parameter-shift
  results of its own circuits, before any sum (so one sample moves the sum by at most ``C``);
* the step's gradient is ``(sum of clipped gradients + N(0, (sigma C)^2 I)) / B`` for the
  ``B`` samples of the step (Abadi et al. CCS'16; for variational circuits, Watkins, Chen &
  Yoo, Sci. Rep. 2023);
* the budget: epsilon at ``delta`` from Google's ``dp-accounting`` (its RDP accountant,
  ``steps`` Poisson-sampled Gaussian events with sampling rate ``q = batch_size / n`` and
  noise multiplier ``sigma``, integer orders 2..256), reported per epoch
  (``EpochRecord.epsilon``);
* with ``max_epsilon``, an epoch that would end above it is not started: training stops at
  the last epoch within budget and ``History.stopped`` says so.

The accountant assumes Poisson sampling; the trainer draws shuffled fixed-size batches, the
usual practice of DP-SGD libraries (the same caveat applies to them). Differential privacy
here protects the *trained weights* (and anything derived from them) against inference about
one training sample; it does not hide a sample's features from the device that runs its
circuits (see docs/trust.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multiqpu.errors import InvalidInputError

__all__ = ["ORDERS", "PrivateMean", "Privacy", "clip_rows", "epsilon"]

#: the RDP orders the accountant evaluates
ORDERS = tuple(float(a) for a in range(2, 257))


@dataclass(frozen=True)
class Privacy:
    """DP-SGD settings: per-sample clip norm, noise multiplier, delta and an optional cap on
    epsilon."""

    clip: float
    noise: float
    delta: float = 1e-5
    max_epsilon: float | None = None

    def __post_init__(self) -> None:
        if not (self.clip > 0 and self.noise > 0 and 0 < self.delta < 1):
            raise InvalidInputError("Privacy needs clip > 0, noise > 0 and 0 < delta < 1")
        if self.max_epsilon is not None and self.max_epsilon <= 0:
            raise InvalidInputError(f"max_epsilon must be > 0, got {self.max_epsilon}")

    def epsilon(self, rate: float, steps: int) -> float:
        """Epsilon at :attr:`delta` after ``steps`` steps at sampling rate ``rate``."""
        return epsilon(rate, self.noise, steps, self.delta)


def epsilon(rate: float, noise: float, steps: int, delta: float) -> float:
    """Epsilon of ``steps`` Poisson-sampled Gaussian mechanisms (``dp-accounting``'s RDP
    accountant)."""
    try:
        import dp_accounting
    except ImportError as exc:  # pragma: no cover - the extra is part of `all`
        raise InvalidInputError(
            "privacy accounting needs dp-accounting: pip install 'multiqpu[privacy]'"
        ) from exc
    if steps <= 0:
        return 0.0
    accountant = dp_accounting.rdp.RdpAccountant(list(ORDERS))
    event = dp_accounting.PoissonSampledDpEvent(rate, dp_accounting.GaussianDpEvent(noise))
    accountant.compose(event, int(steps))
    return float(accountant.get_epsilon(delta))


def clip_rows(grads: np.ndarray, clip: float) -> np.ndarray:
    """Scale each row to L2 norm at most ``clip``."""
    norms = np.linalg.norm(grads, axis=1, keepdims=True)
    return np.asarray(grads * np.minimum(1.0, clip / np.maximum(norms, 1e-300)))


class PrivateMean:
    """The DP-SGD aggregator: weighted mean plus Gaussian noise of standard deviation
    ``noise * clip / B``, ``B`` the sum of the weights (the step's samples)."""

    def __init__(self, privacy: Privacy, rng: np.random.Generator) -> None:
        self.privacy = privacy
        self.rng = rng

    def __call__(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        w = np.asarray(weights, dtype=float)
        total = float(w.sum())
        mean = np.tensordot(w / total, rows, axes=1)
        sd = self.privacy.noise * self.privacy.clip / total
        return np.asarray(mean + self.rng.normal(0.0, sd, size=mean.shape))
