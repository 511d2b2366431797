"""The fluid lower bound on the makespan of a workload on a (simulated) fleet.

Each device ``d`` starts after its queue wait ``w[d]`` (the wait a job submitted at the start
would see, without per-job jitter) and then works without pause at its real rate: a circuit
of kind ``c`` takes ``t[c, d]`` seconds (real execution time plus its share of a per-job
overhead with the largest allowed jobs). Work is divisible (fluid). The bound is the
earliest ``T`` such that the circuits can be split so that every device finishes by ``T``:

    minimise T  s.t.  sum_d x[c, d] = n[c],   sum_c t[c, d] x[c, d] <= max(0, T - w[d]),
                      x >= 0,  x[c, d] = 0 where the device may not run kind c.

``max(0, T - w)`` is not concave, so we solve one linear program per set of started devices
(the k devices with the shortest waits, ``w_(k) <= T <= w_(k+1)``) and take the best.
No schedule that respects the same eligibility can finish earlier.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fluid_lower_bound"]


def fluid_lower_bound(
    counts: np.ndarray, seconds: np.ndarray, waits: np.ndarray, eligible: np.ndarray
) -> float:
    """``counts`` (C,), ``seconds`` and ``eligible`` (C, D), ``waits`` (D,); see module doc."""
    from scipy.optimize import linprog

    counts = np.asarray(counts, dtype=float)
    keep = counts > 0
    counts, seconds, eligible = counts[keep], seconds[keep], eligible[keep]
    n_c, n_d = seconds.shape
    order = np.argsort(waits)
    best = np.inf
    for k in range(1, n_d + 1):
        active = order[:k]
        lo = float(waits[order[k - 1]])
        hi = float(waits[order[k]]) if k < n_d else np.inf
        if lo >= best:
            break
        pairs = [(c, d) for c in range(n_c) for d in active if eligible[c, d]]
        if not pairs:
            continue
        if not all(eligible[c, active].any() for c in range(n_c)):
            continue
        nv = len(pairs) + 1  # x's then T
        cost = np.zeros(nv)
        cost[-1] = 1.0
        a_eq = np.zeros((n_c, nv))
        for j, (c, _) in enumerate(pairs):
            a_eq[c, j] = 1.0
        pos = {int(d): i for i, d in enumerate(active)}
        a_ub = np.zeros((k, nv))
        b_ub = np.zeros(k)
        for j, (c, d) in enumerate(pairs):
            a_ub[pos[int(d)], j] = seconds[c, d]
        a_ub[:, -1] = -1.0
        b_ub[:] = -waits[active]
        bounds = [(0, None)] * len(pairs) + [(lo, None if not np.isfinite(hi) else hi)]
        res = linprog(
            cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=counts, bounds=bounds, method="highs"
        )
        if res.status == 0:
            best = min(best, float(res.x[-1]))
    return float(best)
