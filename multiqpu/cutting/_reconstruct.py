"""Vectorised reconstruction with standard errors (numpy; no per-shot Python loop).

Each circuit's results are folded, as they arrive, into sufficient statistics: for every
column ``u`` (a Pauli of its measurement group, signed by the QPD parity) the mean ``m_u``
of the ±1 outcome, and the matrix of second moments ``E[z_u z_v]``. Counts are decoded
once per *distinct outcome*, never per shot.

The estimate is a multilinear polynomial in the circuit means (:mod:`._experiments`).
Circuits are independent, so its variance is, to first order (the delta method applied to
each circuit's shots),

    Var = sum_c  g_c^T Cov_c g_c / n_c,     Cov_c = n/(n-1) (E[z z^T] - m m^T)

with ``g_c`` the gradient of the estimate with respect to circuit ``c``'s column means,
evaluated at the estimates. Evaluated at estimates, ``g_c^2`` is biased up by ``g_c``'s own
variance (which comes from the *other* fragments' circuits), and the exact variance of a
product of independent means has a second-order term ``Var_a Var_b``; the two meet in
:func:`_pair_correction`, which makes the estimate exact to second order (it matters when
some circuits get few shots, e.g. near-zero gradients after adaptive allocation). Exact
results (``shots=None``) have ``n = inf`` and contribute no variance.

For output distributions (CutQC-style knitting of fragment quasi-distributions) the same
reasoning gives per-outcome errors: see :func:`reconstruct_distribution`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from multiqpu.cutting._experiments import CutProblem, SubExperiment
    from multiqpu.device import CircuitResult

__all__ = [
    "FoldTable",
    "Partial",
    "Stats",
    "decode",
    "error_budget",
    "partial",
    "partials",
    "reconstruct_distribution",
    "reconstruct_expectations",
]

#: Outcome tables are decoded in chunks of this many (outcome, bit) cells.
_CHUNK_CELLS = 1 << 22


def decode(result: CircuitResult) -> tuple[np.ndarray, np.ndarray, float]:
    """Distinct outcomes as integers (clbit 0 = bit 0), their weights (counts or
    probabilities) and the number of shots (``inf`` for exact probabilities)."""
    import numpy as np

    table: Mapping[str, float] = (
        result.probabilities if result.probabilities is not None else result.counts
    )
    keys = list(table)
    if keys and len(keys[0]) > 62:  # does not fit int64: exact Python integers
        ints = np.array([int(k.replace(" ", ""), 2) for k in keys], dtype=object)
    else:
        ints = np.fromiter((int(k.replace(" ", ""), 2) for k in keys), np.int64, len(keys))
    weights = np.fromiter((float(table[k]) for k in keys), float, len(keys))
    if result.probabilities is not None:
        return ints, weights, float("inf")
    return ints, weights, float(weights.sum())


def _parity(values: np.ndarray) -> np.ndarray:
    import numpy as np

    if values.dtype == object:
        return np.vectorize(lambda v: int(v).bit_count() & 1, otypes=[np.int64])(values)
    return np.bitwise_count(values) & 1


#: One result's statistics: (shots, column means, second moments) with observables, or
#: (shots, signed quasi-distribution, outcome frequencies) for distributions.
Partial = tuple[float, "np.ndarray", "np.ndarray"]


@dataclass(frozen=True)
class FoldTable:
    """What folding a result needs of its problem: per circuit, its bit masks. A
    reconstruction-chunk task is sent this (a few integers per circuit), not the problem."""

    expectations: bool  # observables (True) or a distribution (False)
    #: per circuit: (column_masks, qpd_mask, num_obs_bits)
    masks: tuple[tuple[tuple[int, ...], int, int], ...]

    @classmethod
    def of(cls, problem: CutProblem) -> FoldTable:
        return cls(
            problem.observables is not None,
            tuple((e.column_masks, e.qpd_mask, e.num_obs_bits) for e in problem.experiments),
        )


def partial(problem: CutProblem, index: int, result: CircuitResult) -> Partial | None:
    """What one result for circuit ``index`` adds (None: an empty result). The costly part
    of folding (decoding outcomes, parities); :meth:`Stats.merge` pools it in."""
    exp: SubExperiment = problem.experiments[index]
    masks = (exp.column_masks, exp.qpd_mask, exp.num_obs_bits)
    return _partial(problem.observables is not None, masks, result)


def _partial(
    expectations: bool, masks: tuple[tuple[int, ...], int, int], result: CircuitResult
) -> Partial | None:
    import numpy as np

    column_masks, qpd_mask, num_obs_bits = masks
    ints, weights, n = decode(result)
    total = weights.sum()
    if total <= 0:
        return None
    # Sums of counts times +-1 are sums of integers: exact in float64 (below 2^53) in any
    # order, so a result folded in another process, with other BLAS threads or another
    # memory alignment (multiqpu.engine), gives the same bits. Divide once, at the end.
    if expectations:
        cols = np.asarray(column_masks, dtype=ints.dtype if ints.dtype != object else object)
        z = 1 - 2 * _parity(ints[:, None] & cols[None, :]).astype(float)
        return n, (weights @ z) / total, (z.T @ (weights[:, None] * z)) / total
    sign = 1 - 2 * _parity(ints & qpd_mask).astype(float) if qpd_mask else 1.0
    y = (ints & ((1 << num_obs_bits) - 1)).astype(np.int64)
    size = 1 << num_obs_bits
    return (
        n,
        np.bincount(y, weights=weights * sign, minlength=size) / total,
        np.bincount(y, weights=weights, minlength=size) / total,
    )


def partials(
    table: FoldTable, items: list[tuple[int, CircuitResult]]
) -> list[tuple[int, Partial | None]]:
    """:func:`partial` for a chunk of ``(index, result)`` pairs: a reconstruction chunk, the
    unit an engine runs as one task (multiqpu.engine)."""
    return [(i, _partial(table.expectations, table.masks[i], r)) for i, r in items]


@dataclass
class Stats:
    """Running sufficient statistics of every circuit of a problem."""

    shots: np.ndarray  # (C,) float: shots so far (inf: exact; 0: nothing yet)
    mean: np.ndarray  # (V,) column means
    second: np.ndarray  # (C, U, U) second moments E[z_u z_v] (padded)
    dist: list[np.ndarray | None]  # distribution mode: signed quasi-distribution per circuit
    unsigned: list[np.ndarray | None]  # distribution mode: outcome frequencies per circuit

    @classmethod
    def empty(cls, problem: CutProblem) -> Stats:
        import numpy as np

        widths = np.diff(problem.var_offset)
        umax = int(widths.max(initial=1))
        c = len(problem.experiments)
        stats = cls(
            shots=np.zeros(c),
            mean=np.zeros(problem.num_variables),
            second=np.zeros((c, umax, umax)),
            dist=[None] * c,
            unsigned=[None] * c,
        )
        for i, exp in enumerate(problem.experiments):
            if exp.trivial:  # nothing measured: every column is exactly +1
                stats.shots[i] = float("inf")
                stats.mean[problem.var_offset[i] : problem.var_offset[i + 1]] = 1.0
                stats.second[i] = 1.0
                if problem.observables is None:  # no output bits: the outcome "" for sure
                    stats.dist[i] = np.ones(1)
                    stats.unsigned[i] = np.ones(1)
        return stats

    def add(self, problem: CutProblem, index: int, result: CircuitResult) -> None:
        """Fold one result for circuit ``index`` in (pooled with earlier ones)."""
        part = partial(problem, index, result)
        if part is not None:
            self.merge(problem, index, part)

    def merge(self, problem: CutProblem, index: int, part: Partial) -> None:
        """Fold one result's :func:`partial` statistics in (pooled with earlier ones)."""
        import numpy as np

        n, first, second_or_unsigned = part
        lo, hi = problem.var_offset[index], problem.var_offset[index + 1]
        old = self.shots[index]
        if np.isinf(n) or old == 0 or np.isinf(old):
            w_old, w_new = 0.0, 1.0
            self.shots[index] = n
        else:
            w_old, w_new = old / (old + n), n / (old + n)
            self.shots[index] = old + n
        if problem.observables is not None:
            mean, second = first, second_or_unsigned
            u = hi - lo
            self.mean[lo:hi] = w_old * self.mean[lo:hi] + w_new * mean
            block = self.second[index, :u, :u]
            self.second[index, :u, :u] = w_old * block + w_new * second
        else:
            mean_dist, mean_unsigned = first, second_or_unsigned
            prev, prev_u = self.dist[index], self.unsigned[index]
            self.dist[index] = (
                mean_dist if prev is None or w_old == 0 else (w_old * prev + w_new * mean_dist)
            )
            self.unsigned[index] = (
                mean_unsigned
                if prev_u is None or w_old == 0
                else (w_old * prev_u + w_new * mean_unsigned)
            )
            self.mean[lo] = float(self.dist[index].sum())  # type: ignore[union-attr]

    def per_shot_variance(self, problem: CutProblem, *, smoothing: float = 0.0) -> np.ndarray:
        """Per circuit, ``sum_k g_k^T Cov g_k``: the variance one of its shots adds to the
        estimate (summed over observables), for Neyman allocation of further shots.
        ``smoothing`` adds that many pseudo-shots of unit variance to each column (a pilot
        whose few outcomes all agree has not shown that the variance is zero)."""
        import numpy as np

        if problem.observables is None:
            return np.asarray([e.weight for e in problem.experiments]) ** 2
        _, grad = _values_and_gradient(problem, self.mean)
        stats = self
        if smoothing > 0:
            n = np.where(np.isfinite(self.shots), self.shots, np.inf)[:, None, None]
            eye = np.eye(self.second.shape[1])[None, :, :]
            widths = np.diff(problem.var_offset)
            rows = np.repeat(np.arange(len(widths)), widths)
            cols = np.arange(problem.num_variables) - np.repeat(problem.var_offset[:-1], widths)
            mpad = np.zeros(self.second.shape[:2])
            mpad[rows, cols] = self.mean
            cov = self.second - mpad[:, :, None] * mpad[:, None, :]
            finite = np.isfinite(n)  # exact sub-experiments (inf shots) keep their own
            w = np.ones_like(n)
            w[finite] = n[finite] / (n[finite] + smoothing)
            smoothed = w * cov + (1 - w) * eye + mpad[:, :, None] * mpad[:, None, :]
            stats = Stats(self.shots, self.mean, smoothed, self.dist, self.unsigned)
        return _per_shot_variance(problem, stats, grad).sum(axis=1)


def _values_and_gradient(problem: CutProblem, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values per Pauli (P,) and gradient d value_k / d mean_v as (V, K)."""
    import numpy as np

    assert problem.observables is not None
    h = problem.observables.coeffs  # (K, P)
    num_p = h.shape[1]
    vals = mean[problem.mono_var]  # (M, F)
    f = vals.shape[1]
    coef = problem.mono_coef
    theta = np.bincount(problem.mono_pauli, weights=coef * vals.prod(axis=1), minlength=num_p)
    nvar = problem.num_variables
    grad_p = np.zeros(nvar * num_p)
    for frag in range(f):
        others = coef * np.delete(vals, frag, axis=1).prod(axis=1)
        flat = problem.mono_var[:, frag] * num_p + problem.mono_pauli
        grad_p += np.bincount(flat, weights=others, minlength=nvar * num_p)
    grad = grad_p.reshape(nvar, num_p) @ h.T  # (V, K)
    return theta, grad


def _per_shot_variance(problem: CutProblem, stats: Stats, grad: np.ndarray) -> np.ndarray:
    """(C, K): g^T Cov g per circuit (variance of one shot's contribution)."""
    import numpy as np

    offs = problem.var_offset
    c = len(problem.experiments)
    umax = stats.second.shape[1]
    k = grad.shape[1]
    gpad = np.zeros((c, umax, k))
    mpad = np.zeros((c, umax))
    widths = np.diff(offs)
    rows = np.repeat(np.arange(c), widths)
    cols = np.arange(offs[-1]) - np.repeat(offs[:-1], widths)
    gpad[rows, cols] = grad
    mpad[rows, cols] = stats.mean
    cov = stats.second - mpad[:, :, None] * mpad[:, None, :]
    out = np.einsum("cuk,cuv,cvk->ck", gpad, cov, gpad)
    return np.maximum(out, 0.0)


def reconstruct_expectations(problem: CutProblem, stats: Stats) -> tuple[np.ndarray, np.ndarray]:
    """Values (K,) and standard errors (K,) of the problem's observables."""
    import numpy as np

    assert problem.observables is not None
    theta, grad = _values_and_gradient(problem, stats.mean)
    values = problem.observables.coeffs @ theta
    n = stats.shots
    if (n == 0).any():
        missing = int(np.nonzero(n == 0)[0][0])
        raise RuntimeError(f"no result for sub-experiment {missing}")
    per_shot = _per_shot_variance(problem, stats, grad)
    finite = np.isfinite(n)
    var = np.zeros(per_shot.shape[1])
    if finite.any():
        # Cov/(n-1): the unbiased variance of a circuit's mean (n == 1: unknown).
        scale = np.zeros(len(n))
        scale[finite] = np.where(n[finite] > 1, 1.0 / np.maximum(n[finite] - 1, 1), np.inf)
        var = (per_shot * scale[:, None]).sum(axis=0)
        var = np.maximum(var - _pair_correction(problem, stats, scale), 0.0)
    return values, np.sqrt(var)


def error_budget(
    problem: CutProblem, stats: Stats, device_shots: Mapping[int, Mapping[str, float]]
) -> list[tuple[int, str, np.ndarray]]:
    """Each (fragment, device) pair's share of the estimate's variance, per observable:
    ``(fragment, device, variance (K,))``, largest total first.

    Circuit ``c`` adds ``g_c^T Cov_c g_c / (n_c - 1)`` to the variance (first order, the sum
    :func:`reconstruct_expectations` starts from); its pooled mean weighs each device's shots
    by ``n_cd / n_c``, so device ``d`` accounts for that fraction of circuit ``c``'s term.
    ``device_shots[c]``: the shots of circuit ``c`` per device. The shares add up to the
    first-order variance; the second-order correction (small unless some circuits got very
    few shots) is not apportioned."""
    import numpy as np

    assert problem.observables is not None
    _, grad = _values_and_gradient(problem, stats.mean)
    per_shot = _per_shot_variance(problem, stats, grad)  # (C, K)
    n = stats.shots
    out: dict[tuple[int, str], np.ndarray] = {}
    for c, by_device in device_shots.items():
        if not np.isfinite(n[c]) or n[c] <= 1:
            continue
        term = per_shot[c] / (n[c] - 1)
        total = sum(by_device.values())
        for device, shots in by_device.items():
            if total > 0 and np.isfinite(shots):
                key = (problem.experiments[c].fragment, device)
                out[key] = out.get(key, 0.0) + term * (shots / total)
    rows = [(f, d, np.asarray(v, dtype=float)) for (f, d), v in out.items()]
    return sorted(rows, key=lambda r: -float(r[2].sum()))


#: Skip the second-order correction above this many (pair, observable, column^2) cells.
_MAX_PAIR_CELLS = 1 << 24


def _pair_correction(problem: CutProblem, stats: Stats, scale: np.ndarray) -> np.ndarray:
    """Second-order term the plug-in delta method counts twice, per observable:

        sum over fragment pairs, circuits a, b:  tr(V_a H_ab V_b H_ab^T)

    with ``V`` each circuit's estimated covariance of its column means and ``H_ab`` the
    mixed second derivative of the estimate. (The plug-in gradient's square is biased up by
    its own variance; for independent circuits this removes that bias exactly to second
    order, so the error stays honest when some circuits have few shots.)"""
    import numpy as np

    assert problem.observables is not None
    mono_var = problem.mono_var
    m, f = mono_var.shape
    k = problem.observables.coeffs.shape[0]
    out = np.zeros(k)
    if f < 2 or m == 0:
        return out
    c_count = len(problem.experiments)
    umax = stats.second.shape[1]
    widths = np.diff(problem.var_offset)
    circ_of_var = np.repeat(np.arange(c_count), widths)
    col_of_var = np.arange(problem.num_variables) - np.repeat(problem.var_offset[:-1], widths)
    mpad = np.zeros((c_count, umax))
    mpad[circ_of_var, col_of_var] = stats.mean
    cov = (stats.second - mpad[:, :, None] * mpad[:, None, :]) * np.where(
        np.isfinite(scale), scale, 0.0
    )[:, None, None]
    vals = stats.mean[mono_var]
    weights = problem.mono_coef[:, None] * problem.observables.coeffs[:, problem.mono_pauli].T
    for l1 in range(f):
        for l2 in range(l1 + 1, f):
            rest = np.delete(vals, [l1, l2], axis=1).prod(axis=1)
            w = weights * rest[:, None]  # (M, K)
            va, vb = mono_var[:, l1], mono_var[:, l2]
            ca, cb = circ_of_var[va], circ_of_var[vb]
            pairs, inv = np.unique(ca * c_count + cb, return_inverse=True)
            inv = inv.reshape(-1)
            if len(pairs) * k * umax * umax > _MAX_PAIR_CELLS:
                return np.zeros(k)  # too big to correct: stay (slightly) conservative
            flat = ((inv[:, None] * k + np.arange(k)) * umax + col_of_var[va][:, None]) * umax
            flat = flat + col_of_var[vb][:, None]
            h = np.bincount(flat.reshape(-1), weights=w.reshape(-1),
                            minlength=len(pairs) * k * umax * umax)  # fmt: skip
            h = h.reshape(len(pairs), k, umax, umax)
            a, b = cov[pairs // c_count], cov[pairs % c_count]
            out += np.einsum("pua,pkav,pvb,pkub->k", a, h, b, h)
    return out


def _kron_rows(parts: list[np.ndarray]) -> np.ndarray:
    """Row-wise Kronecker product of (M, d_i) arrays -> (M, prod d_i)."""
    acc = parts[0]
    for p in parts[1:]:
        acc = (acc[:, :, None] * p[:, None, :]).reshape(acc.shape[0], -1)
    return acc


def _knit(
    coef: np.ndarray, circ: np.ndarray, dists: list[np.ndarray], frags: list[int], sizes: list[int]
) -> np.ndarray:
    """sum_m coef_m kron_{L in frags} dists[circ[m, L]] -> (prod sizes,)"""
    import numpy as np

    total = int(np.prod(sizes)) if sizes else 1
    out = np.zeros(total)
    chunk = max(1, _CHUNK_CELLS // max(total, 1))
    for start in range(0, len(coef), chunk):
        sl = slice(start, start + chunk)
        parts = [np.stack([dists[c] for c in circ[sl, f]]) for f in frags]
        rows = _kron_rows(parts) if parts else np.ones((len(coef[sl]), 1))
        out += coef[sl] @ rows
    return out


def reconstruct_distribution(
    problem: CutProblem, stats: Stats, measured: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and standard errors over the measured original qubits (index bit j is
    ``measured[j]``), knitted from the fragments' quasi-distributions."""
    import numpy as np

    frag_ids = list(range(problem.num_fragments))
    dists: list[np.ndarray] = [d for d in stats.dist]  # type: ignore[misc]
    if any(d is None for d in dists):
        raise RuntimeError("a sub-experiment has no result")
    sizes = [1 << len(problem.output_qubits[f]) for f in frag_ids]
    coef, circ = problem.mono_coef, problem.mono_var
    flat = _knit(coef, circ, dists, frag_ids, sizes)

    var_flat = np.zeros_like(flat)
    for frag in frag_ids:
        others = [f for f in frag_ids if f != frag]
        col = circ[:, frag]
        uniq, inv = np.unique(col, return_inverse=True)
        osizes = [sizes[f] for f in others]
        h = np.zeros((len(uniq), int(np.prod(osizes)) if osizes else 1))
        for j in range(len(uniq)):
            sel = inv.reshape(-1) == j
            h[j] = _knit(coef[sel], circ[sel], dists, others, osizes)
        n = stats.shots[uniq]
        spread = np.stack([stats.unsigned[c] - stats.dist[c] ** 2 for c in uniq])
        scale = np.where(np.isfinite(n), 1.0 / np.maximum(n - 1, 1), 0.0)
        v = np.einsum("cy,cr->yr", spread * scale[:, None], h**2)  # (d_frag, prod others)
        tensor = v.reshape([sizes[frag], *osizes])
        tensor = np.moveaxis(tensor, 0, frag)
        var_flat += tensor.reshape(-1)

    # Fragment-ordered index -> index over `measured` (unmeasured idle qubits read 0).
    pos = {q: j for j, q in enumerate(measured)}
    grids = np.unravel_index(np.arange(flat.size), sizes) if sizes else ()
    target = np.zeros(flat.size, dtype=np.int64)
    for f, y in zip(frag_ids, grids, strict=True):
        for bit, q in enumerate(problem.output_qubits[f]):
            target += ((y >> bit) & 1).astype(np.int64) << pos[q]
    probs = np.zeros(1 << len(measured))
    errs = np.zeros(1 << len(measured))
    probs[target] = flat
    errs[target] = np.sqrt(np.maximum(var_flat, 0.0))
    return probs, errs
