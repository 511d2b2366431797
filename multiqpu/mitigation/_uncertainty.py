"""Uncertainties through readout correction, extrapolation, combination and knitting.

Three sources, kept apart until the end:

* **Shot noise of the data**: per circuit and noise scale, the readout-corrected per-shot
  values of every column (a Pauli parity) give the mean and its exact covariance
  ``(E[z z^T] - m m^T) / (n - 1)``. Extrapolation is (column-wise) linear or linearised:
  ``Sigma_0 = sum_j J_j Sigma_j J_j``. Shards of one circuit run on several devices are
  averaged with fixed weights (their shots): ``Sigma = sum_s w_s^2 Sigma_s``.
* **Sampling error of the readout calibration**: one calibration corrects many circuits,
  so its error is common to them (not independent per circuit). Every column mean carries
  its first-order sensitivity ``d mean / d p`` to each calibration parameter ``p``
  (``p10``/``p01`` of a qubit, binomial variance), carried through extrapolation and
  combination; the knitted estimate's share is found by a parametric bootstrap over the
  parameters (the knitting is a polynomial in the circuit means), or exactly
  (``g^T Cov_p g``) where there is no knitting.
* Knitting (cut circuits): the cutting layer's reconstruction, fed the mitigated means and
  covariances (:func:`cutting_stats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from multiqpu.mitigation._readout import BitModel, ParamKey, _bits

if TYPE_CHECKING:
    import numpy as np

    from multiqpu.cutting._experiments import CutProblem
    from multiqpu.cutting._reconstruct import Stats
    from multiqpu.mitigation._zne import FitResult

__all__ = ["ColumnStats", "column_stats", "combine", "cutting_stats", "extrapolated", "knit"]


@dataclass(frozen=True, eq=False)
class ColumnStats:
    """Means of U columns, the covariance of those means, the shots behind them and their
    sensitivity to calibration parameters (``jac[p]`` is ``(U,)``)."""

    mean: np.ndarray
    cov: np.ndarray
    shots: float
    jac: Mapping[ParamKey, np.ndarray] = field(default_factory=dict)


def mask_bits(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if (mask >> i) & 1]


def column_stats(
    counts: Mapping[str, float], width: int, masks: Sequence[int], model: BitModel
) -> ColumnStats:
    """Readout-corrected column means of one circuit's counts (``model`` identity: raw)."""
    import numpy as np

    bits, w = _bits(counts, width)
    n = float(w.sum())
    if n <= 0:
        raise ValueError("no shots to estimate from")
    f = w / n
    z = 1.0 - 2.0 * bits.astype(float)  # (X, B)
    denom = z - model.a[None, :]  # z - a (never 0: |a| < 1)
    zc = denom / model.b[None, :]
    cols = np.ones((len(f), len(masks)))
    bit_lists = [mask_bits(int(m)) for m in masks]
    for u, bl in enumerate(bit_lists):
        if bl:
            cols[:, u] = np.prod(zc[:, bl], axis=1)
    mean = f @ cols
    second = cols.T @ (f[:, None] * cols)
    cov = (second - np.outer(mean, mean)) / max(n - 1.0, 1.0)
    jac: dict[ParamKey, np.ndarray] = {}
    for bit, keys in enumerate(model.keys):
        if keys is None:
            continue
        users = [u for u, bl in enumerate(bit_lists) if bit in bl]
        if not users:
            continue
        # d zhat / d p10 = zhat (1/(z-a) + 1/b);  d zhat / d p01 = zhat (-1/(z-a) + 1/b)
        inv_d = 1.0 / denom[:, bit]
        inv_b = 1.0 / model.b[bit]
        for key, sign in ((keys[0], 1.0), (keys[1], -1.0)):
            g = np.zeros(len(masks))
            g[users] = f @ (cols[:, users] * (sign * inv_d + inv_b)[:, None])
            jac[key] = jac[key] + g if key in jac else g
    return ColumnStats(mean, cov, n, jac)


def extrapolated(fit: FitResult, per_scale: Sequence[ColumnStats]) -> ColumnStats:
    """The zero-noise column stats of a fit (``per_scale`` in ``fit.scales`` order)."""
    jac: dict[ParamKey, np.ndarray] = {}
    for j, st in enumerate(per_scale):
        for key, g in st.jac.items():
            term = fit.jacobian[j] * g
            jac[key] = jac[key] + term if key in jac else term
    return ColumnStats(fit.value, fit.cov, sum(s.shots for s in per_scale), jac)


def combine(parts: Sequence[ColumnStats], weights: Sequence[float]) -> ColumnStats:
    """Fixed-weight average of independent estimates of the same columns."""
    import numpy as np

    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    if len(parts) == 1:
        return parts[0]
    mean = sum(wi * p.mean for wi, p in zip(w, parts, strict=True))
    cov = sum(wi**2 * p.cov for wi, p in zip(w, parts, strict=True))
    jac: dict[ParamKey, np.ndarray] = {}
    for wi, p in zip(w, parts, strict=True):
        for key, g in p.jac.items():
            jac[key] = jac[key] + wi * g if key in jac else wi * g
    return ColumnStats(np.asarray(mean), np.asarray(cov), float(sum(p.shots for p in parts)), jac)


def calibration_variance(stats: ColumnStats, variances: Mapping[ParamKey, float]) -> np.ndarray:
    """Per column, the variance its mean inherits from the calibration (one circuit)."""
    import numpy as np

    out = np.zeros(len(stats.mean))
    for key, g in stats.jac.items():
        out += g**2 * variances.get(key, 0.0)
    return out


# ---------------------------------------------------------------------- knitting
def cutting_stats(
    problem: CutProblem,
    per_circuit: Mapping[int, ColumnStats],
    shots: Mapping[int, float] | None = None,
) -> Stats:
    """The cutting layer's sufficient statistics holding given means and covariances.

    Its reconstruction reads a circuit's covariance of the means as ``(second - m m^T) /
    (n - 1)`` and its per-shot covariance (for allocating shots) as ``second - m m^T``.
    With ``n`` base shots behind a circuit (``shots``; default 1) it holds ``n + 1`` shots
    and ``second = n Sigma + m m^T``: the covariance of the means is exactly ``Sigma`` (the
    mitigated covariance) and the per-shot one ``n Sigma``, whatever lies behind them.
    """
    import numpy as np

    from multiqpu.cutting._reconstruct import Stats

    stats = Stats.empty(problem)
    for c, st in per_circuit.items():
        lo, hi = int(problem.var_offset[c]), int(problem.var_offset[c + 1])
        u = hi - lo
        n = float(shots.get(c, 1)) if shots is not None else 1.0
        n = max(n, 1.0)
        stats.shots[c] = n + 1.0
        stats.mean[lo:hi] = st.mean
        stats.second[c, :u, :u] = n * st.cov + np.outer(st.mean, st.mean)
    return stats


def knit(
    problem: CutProblem,
    per_circuit: Mapping[int, ColumnStats],
    variances: Mapping[ParamKey, float],
    *,
    replicates: int = 200,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Knitted values, standard errors from the data and from the calibration (per
    observable)."""
    import numpy as np

    from multiqpu.cutting._reconstruct import reconstruct_expectations

    stats = cutting_stats(problem, per_circuit)
    values, data_se = reconstruct_expectations(problem, stats)
    keys = sorted({k for st in per_circuit.values() for k in st.jac if variances.get(k, 0) > 0})
    if not keys or replicates < 2:
        return values, data_se, np.zeros_like(values)
    index = {k: i for i, k in enumerate(keys)}
    sd = np.sqrt(np.array([variances[k] for k in keys]))
    rng = np.random.default_rng(seed)
    delta = rng.standard_normal((replicates, len(keys))) * sd[None, :]
    shifts: dict[int, np.ndarray] = {}
    for c, st in per_circuit.items():
        if not st.jac:
            continue
        cols = [index[k] for k in st.jac if k in index]
        mat = np.stack([st.jac[k] for k in st.jac if k in index], axis=1)  # (U, P_c)
        shifts[c] = delta[:, cols] @ mat.T  # (R, U)
    samples = np.empty((replicates, len(values)))
    base_mean = stats.mean.copy()
    for r in range(replicates):
        stats.mean[:] = base_mean
        for c, shift in shifts.items():
            lo, hi = int(problem.var_offset[c]), int(problem.var_offset[c + 1])
            stats.mean[lo:hi] += shift[r]
        samples[r] = _values_only(problem, stats)
    cal_se = samples.std(axis=0, ddof=1)
    return values, data_se, cal_se


def _values_only(problem: CutProblem, stats: Stats) -> np.ndarray:
    from multiqpu.cutting._reconstruct import reconstruct_expectations

    values, _ = reconstruct_expectations(problem, stats)
    return values
