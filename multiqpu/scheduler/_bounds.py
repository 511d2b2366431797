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

With a fidelity budget (``loss[c, d]``, what a circuit of kind ``c`` loses on ``d`` against its
most accurate device, and ``budget``) the program also has ``sum x[c, d] loss[c, d] <= budget``:
no schedule that loses no more fidelity can finish earlier. :func:`fluid_plan` returns the
split ``x`` as well; the ``balanced`` policy plans with it (see ``_policy``).

With ``ends`` (per device, when it stops for good: a device lost at that time, ``inf``
otherwise) the program also has ``sum_c t[c, d] x[c, d] <= max(0, ends[d] - w[d])``: no
schedule can use a device after it is gone, so the bound stays a lower bound.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fluid_floor", "fluid_lower_bound", "fluid_min_loss", "fluid_plan"]

# fluid_plan skips a set of started devices whose floor exceeds its T range by this much
_SKIP_MARGIN = 1e-3
# fluid_floor gives up this much (relative, and in seconds) to stay below the T HiGHS
# returns (it solves to feasibility tolerances of 1e-7): the shortcut never decides what
# the program would not
_FLOOR_SLACK = 1e-6


def fluid_floor(
    counts: np.ndarray, seconds: np.ndarray, waits: np.ndarray, eligible: np.ndarray
) -> float:
    """A lower bound on :func:`fluid_plan`'s ``T`` (with or without a fidelity budget), no
    linear program: all the work at each class's fastest eligible rate, poured over the
    devices as they start (``sum_d max(0, T - waits[d]) = work``), lowered by
    ``_FLOOR_SLACK``. ``inf`` when some class has no eligible device with a finite wait
    (then the caller solves the program)."""
    rows = np.flatnonzero(np.asarray(counts) > 0)
    if len(rows) == 0:
        return 0.0
    usable = np.isfinite(waits)
    ok = eligible[rows] & usable[None, :]
    if not ok.any(axis=1).all():
        return float("inf")
    fastest = np.where(ok, seconds[rows], np.inf).min(axis=1)
    work = float(np.dot(np.asarray(counts, dtype=float)[rows], fastest))
    w = np.sort(waits[ok.any(axis=0)])
    acc = 0.0
    for k in range(len(w)):
        acc += float(w[k])
        level = (work + acc) / (k + 1)
        if k + 1 == len(w) or level <= float(w[k + 1]):
            return level * (1.0 - _FLOOR_SLACK) - _FLOOR_SLACK
    return float("inf")  # pragma: no cover (the loop always returns)


def fluid_plan(
    counts: np.ndarray,
    seconds: np.ndarray,
    waits: np.ndarray,
    eligible: np.ndarray,
    *,
    loss: np.ndarray | None = None,
    budget: float | None = None,
    ends: np.ndarray | None = None,
) -> tuple[float, np.ndarray | None]:
    """The optimal ``T`` and split ``x`` (C, D) of the fluid program (module doc); ``(inf,
    None)`` when infeasible. ``counts`` (C,), ``seconds``, ``eligible`` and ``loss`` (C, D),
    ``waits`` and ``ends`` (D,)."""
    from scipy.optimize import linprog

    counts = np.asarray(counts, dtype=float)
    n_all, n_d = seconds.shape
    rows = np.flatnonzero(counts > 0)
    if len(rows) == 0:
        return 0.0, np.zeros((n_all, n_d))
    order = np.argsort(waits, kind="stable")
    best, plan = np.inf, None
    for k in range(1, n_d + 1):
        active = order[:k]
        lo = float(waits[order[k - 1]])
        hi = float(waits[order[k]]) if k < n_d else np.inf
        if lo >= best:
            break
        sub = eligible[np.ix_(rows, active)]
        if not sub.any(axis=1).all():
            continue
        if k < n_d:
            # the first k devices cannot finish the work before the next one starts (T <=
            # hi): the program is infeasible, by far more than HiGHS's tolerances
            floor = fluid_floor(counts, seconds[:, active], waits[active], eligible[:, active])
            if floor > hi * (1.0 + _SKIP_MARGIN) + _SKIP_MARGIN:
                continue
        ci, di = np.nonzero(sub)  # variables: (class row, active device) pairs, then T
        nv = len(ci) + 1
        cost = np.zeros(nv)
        cost[-1] = 1.0
        a_eq = np.zeros((len(rows), nv))
        a_eq[ci, np.arange(len(ci))] = 1.0
        a_ub = np.zeros((k, nv))
        a_ub[di, np.arange(len(ci))] = seconds[rows[ci], active[di]]
        a_ub[:, -1] = -1.0
        b_ub = -np.asarray(waits, dtype=float)[active]
        if loss is not None and budget is not None:
            row = np.zeros((1, nv))
            row[0, :-1] = loss[rows[ci], active[di]]
            a_ub = np.vstack([a_ub, row])
            b_ub = np.append(b_ub, max(budget, 0.0))
        if ends is not None:
            # a device that stops for good works at most until then
            stop = np.asarray(ends, dtype=float)[active] - np.asarray(waits, dtype=float)[active]
            for j in np.flatnonzero(np.isfinite(stop)):
                row = np.zeros((1, nv))
                on = di == j
                row[0, :-1][on] = seconds[rows[ci[on]], active[j]]
                a_ub = np.vstack([a_ub, row])
                b_ub = np.append(b_ub, max(float(stop[j]), 0.0))
        bounds = [(0, None)] * len(ci) + [(lo, None if not np.isfinite(hi) else hi)]
        res = linprog(
            cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=counts[rows], bounds=bounds, method="highs"
        )
        if res.status == 0 and float(res.x[-1]) < best:
            best = float(res.x[-1])
            plan = np.zeros((n_all, n_d))
            plan[rows[ci], active[di]] = res.x[:-1]
    return best, plan


def fluid_lower_bound(
    counts: np.ndarray,
    seconds: np.ndarray,
    waits: np.ndarray,
    eligible: np.ndarray,
    *,
    loss: np.ndarray | None = None,
    budget: float | None = None,
    ends: np.ndarray | None = None,
) -> float:
    """``counts`` (C,), ``seconds`` and ``eligible`` (C, D), ``waits`` and ``ends`` (D,); see
    module doc."""
    return fluid_plan(counts, seconds, waits, eligible, loss=loss, budget=budget, ends=ends)[0]


def fluid_min_loss(
    counts: np.ndarray,
    seconds: np.ndarray,
    waits: np.ndarray,
    eligible: np.ndarray,
    loss: np.ndarray,
    horizon: float,
) -> np.ndarray | None:
    """The split ``x`` (C, D) that loses least fidelity (``sum x loss``) among those that
    finish by ``horizon`` (every device ``d`` works at most ``horizon - waits[d]``); None
    when no split does."""
    from scipy.optimize import linprog

    counts = np.asarray(counts, dtype=float)
    n_all, n_d = seconds.shape
    rows = np.flatnonzero(counts > 0)
    if len(rows) == 0:
        return np.zeros((n_all, n_d))
    cap = np.maximum(horizon - np.asarray(waits, dtype=float), 0.0)
    usable = np.flatnonzero(cap > 0)
    sub = eligible[np.ix_(rows, usable)]
    if len(usable) == 0 or not sub.any(axis=1).all():
        return None
    ci, di = np.nonzero(sub)
    nv = len(ci)
    a_eq = np.zeros((len(rows), nv))
    a_eq[ci, np.arange(nv)] = 1.0
    a_ub = np.zeros((len(usable), nv))
    a_ub[di, np.arange(nv)] = seconds[rows[ci], usable[di]]
    res = linprog(
        loss[rows[ci], usable[di]],
        A_ub=a_ub,
        b_ub=cap[usable],
        A_eq=a_eq,
        b_eq=counts[rows],
        bounds=[(0, None)] * nv,
        method="highs",
    )
    if res.status != 0:
        return None
    plan = np.zeros((n_all, n_d))
    plan[rows[ci], usable[di]] = res.x
    return plan
