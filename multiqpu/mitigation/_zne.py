"""Zero-noise extrapolation: extrapolators and the per-device fit.

A :class:`DeviceFit` holds the points (noise scale, mean vector, covariance of the mean) of
ONE circuit on ONE device and refuses points from any other device: scale factors measured
on different devices never meet in one fit (their noise differs, so one curve through
them would model neither). Fits of several devices are made with :func:`fit_per_device`,
which keeps them apart.

Every extrapolator returns, besides the zero-noise value, its Jacobian with respect to the
per-scale means (column by column), so uncertainties propagate exactly for the linear ones
(Richardson, least-squares polynomials: fixed coefficients ``gamma_j``, covariance
``sum_j gamma_j^2 Sigma_j``) and to first order for the exponential one.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DeviceFit",
    "Exponential",
    "Extrapolator",
    "FitResult",
    "Polynomial",
    "Richardson",
    "extrapolator_for",
    "fit_per_device",
]


class Extrapolator(abc.ABC):
    """Maps values measured at noise scales ``lambda_j`` to the value at ``lambda = 0``."""

    name: str = "extrapolator"
    min_points: int = 2

    def coefficients(self, scales: Sequence[float]) -> np.ndarray | None:
        """Fixed weights ``gamma`` with ``value(0) = sum_j gamma_j y_j`` (None: nonlinear)."""
        return None

    @abc.abstractmethod
    def extrapolate(
        self, scales: Sequence[float], values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``values`` is ``(k, U)`` (k scales, U independent columns). Returns the zero-noise
        values ``(U,)`` and the Jacobian ``(k, U)``: d value_u / d values[j, u]."""

    def fallbacks(self, scales: Sequence[float], values: np.ndarray) -> int:
        """How many columns the extrapolator could not treat its own way."""
        return 0

    def check(self, scales: Sequence[float]) -> None:
        if len(scales) < self.min_points:
            raise InvalidInputError(
                f"the {self.name} extrapolator needs at least {self.min_points} noise scales, "
                f"got {len(scales)}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Polynomial(Extrapolator):
    """Least-squares polynomial of degree ``order`` in the scale, read at zero."""

    def __init__(self, order: int) -> None:
        if order < 1:
            raise InvalidInputError(f"polynomial order must be >= 1, got {order}")
        self.order = order
        self.min_points = order + 1
        self.name = {1: "linear", 2: "quadratic"}.get(order, f"polynomial({order})")

    def coefficients(self, scales: Sequence[float]) -> np.ndarray:
        import numpy as np

        self.check(scales)
        lam = np.asarray(scales, dtype=float)
        vander = lam[:, None] ** np.arange(self.order + 1)[None, :]  # (k, p+1)
        return np.asarray(np.linalg.pinv(vander)[0])  # first row: the intercept

    def extrapolate(
        self, scales: Sequence[float], values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        gamma = self.coefficients(scales)
        values = np.asarray(values, dtype=float)
        jac = np.repeat(gamma[:, None], values.shape[1], axis=1)
        return gamma @ values, jac

    def __repr__(self) -> str:
        return f"Polynomial(order={self.order})"


class Richardson(Polynomial):
    """The polynomial through all points (degree k - 1): Richardson extrapolation. For
    scales (1, 3, 5) the weights are (15/8, -5/4, 3/8)."""

    def __init__(self, points: int = 2) -> None:
        super().__init__(max(1, points - 1))
        self.name = "richardson"

    def coefficients(self, scales: Sequence[float]) -> np.ndarray:
        import numpy as np

        self.check(scales)
        lam = np.asarray(scales, dtype=float)
        # Lagrange basis at 0: gamma_j = prod_{i != j} lambda_i / (lambda_i - lambda_j)
        gamma = np.ones(len(lam))
        for j in range(len(lam)):
            for i in range(len(lam)):
                if i != j:
                    gamma[j] *= lam[i] / (lam[i] - lam[j])
        return gamma

    def check(self, scales: Sequence[float]) -> None:
        if len(scales) < 2:
            raise InvalidInputError("Richardson extrapolation needs at least 2 noise scales")

    def __repr__(self) -> str:
        return "Richardson()"


class Exponential(Extrapolator):
    """``y = a * exp(-b * lambda)`` fitted by least squares on ``log|y|`` (a line), read at
    zero. Only defined where every point has the same sign and is away from zero; other
    columns fall back to ``fallback`` (Richardson; counted by :meth:`fallbacks`)."""

    name = "exponential"

    def __init__(self, fallback: Extrapolator | None = None) -> None:
        self.fallback = fallback or Richardson()

    @staticmethod
    def _usable(y: np.ndarray) -> np.ndarray:
        import numpy as np

        sign = np.sign(y[0])
        return np.asarray(
            (np.abs(y) > 1e-9).all(axis=0) & (np.sign(y) == sign[None, :]).all(axis=0)
        )

    def fallbacks(self, scales: Sequence[float], values: np.ndarray) -> int:
        import numpy as np

        return int((~self._usable(np.asarray(values, dtype=float))).sum())

    def extrapolate(
        self, scales: Sequence[float], values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        self.check(scales)
        y = np.asarray(values, dtype=float)
        gamma = Polynomial(1).coefficients(scales)  # (k,)
        sign = np.sign(y[0])
        ok = self._usable(y)
        out, jac = self.fallback.extrapolate(scales, y)
        if ok.any():
            logs = np.log(np.abs(y[:, ok]))
            y0 = sign[ok] * np.exp(gamma @ logs)
            out[ok] = y0
            jac[:, ok] = y0[None, :] * gamma[:, None] / y[:, ok]
        return out, jac

    def __repr__(self) -> str:
        return "Exponential()"


def extrapolator_for(spec: str | Extrapolator, points: int) -> Extrapolator:
    """The extrapolator a :class:`~multiqpu.ZNE` option names."""
    if isinstance(spec, Extrapolator):
        return spec
    if spec == "richardson":
        return Richardson(points)
    if spec == "linear":
        return Polynomial(1)
    if spec == "quadratic":
        return Polynomial(2)
    if spec == "exponential":
        return Exponential()
    raise InvalidInputError(f"unknown extrapolator {spec!r}")


@dataclass(frozen=True, eq=False)
class FitResult:
    """A zero-noise estimate from one device.

    ``value`` (U,) and ``cov`` (U, U) are the extrapolated means and their covariance;
    ``jacobian[j]`` (U,) is d value / d mean at ``scales[j]`` (column-wise), for
    propagating errors that are correlated across circuits (readout calibration).
    """

    device: str
    scales: tuple[float, ...]
    value: np.ndarray
    cov: np.ndarray
    jacobian: np.ndarray  # (k, U)
    fallbacks: int = 0


class DeviceFit:
    """The points of one circuit on one device, and their extrapolation to zero noise.

    ``add`` refuses a point from another device (and a scale given twice): a fit that
    mixes devices cannot be built.
    """

    def __init__(self, device: str, extrapolator: Extrapolator) -> None:
        if not device:
            raise InvalidInputError("a DeviceFit belongs to one named device")
        self.device = device
        self.extrapolator = extrapolator
        self._points: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def add(self, device: str, scale: float, mean: Any, cov: Any) -> None:
        import numpy as np

        if device != self.device:
            raise InvalidInputError(
                f"this fit holds data from {self.device}; a point measured on {device} cannot "
                "join it (noise differs between devices: extrapolate each device on its own "
                "and combine the zero-noise values)"
            )
        scale = float(scale)
        if scale in self._points:
            raise InvalidInputError(f"scale {scale:g} was already added to this fit")
        m = np.atleast_1d(np.asarray(mean, dtype=float))
        c = np.asarray(cov, dtype=float).reshape(len(m), len(m))
        if self._points:
            width = len(next(iter(self._points.values()))[0])
            if len(m) != width:
                raise InvalidInputError(f"point has {len(m)} columns, the fit has {width}")
        self._points[scale] = (m, c)

    @property
    def scales(self) -> tuple[float, ...]:
        return tuple(sorted(self._points))

    def __len__(self) -> int:
        return len(self._points)

    def result(self) -> FitResult:
        import numpy as np

        scales = self.scales
        if len(scales) < 2:
            raise InvalidInputError(
                f"a zero-noise fit needs at least two scales; {self.device} has {len(scales)}"
            )
        means = np.stack([self._points[s][0] for s in scales])  # (k, U)
        covs = np.stack([self._points[s][1] for s in scales])  # (k, U, U)
        value, jac = self.extrapolator.extrapolate(scales, means)
        cov = np.einsum("ju,juv,jv->uv", jac, covs, jac)
        fallbacks = self.extrapolator.fallbacks(scales, means)
        return FitResult(self.device, scales, value, cov, jac, fallbacks)


def fit_per_device(
    points: Iterable[tuple[str, float, Any, Any]], extrapolator: Extrapolator
) -> dict[str, FitResult]:
    """One fit per device from ``(device, scale, mean, cov)`` points: never one fit across
    devices."""
    fits: dict[str, DeviceFit] = {}
    for device, scale, mean, cov in points:
        fit = fits.get(device)
        if fit is None:
            fit = fits[device] = DeviceFit(device, extrapolator)
        fit.add(device, scale, mean, cov)
    return {d: f.result() for d, f in fits.items()}
