"""Shot counts on a ladder: sub-experiments that share a count share jobs.

A Neyman allocation gives every sub-experiment its own shot count, and a job carries one
shot count (``Device.submit(circuits, shots)``), so the scheduler would send one job per
sub-experiment: a few milliseconds of the driver's bookkeeping each (placement, journal,
shipping), more than simulating a small fragment. :func:`on_ladder` rounds each count to
the nearest rung of a geometric ladder (rungs ``ratio`` apart) and keeps the total, so a
few dozen counts remain and the scheduler batches the sub-experiments that share one.

What it costs in precision is second order: the variance ``sum_i a_i / n_i`` of the
Neyman optimum ``n*`` is flat there, and counts ``n_i = n*_i (1 + e_i)`` with the same
total raise it by about ``sum_i (n*_i / N) e_i^2``; rungs 10 % apart move a count by at most
about 5 %, so the variance by at most about 0.25 % (the standard error by 0.13 %). The
allocation is already a defensive mixture (a quarter of the shots follow the prior
weights), which departs from Neyman by far more. The standard errors reported are those of
the counts actually run.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["LADDER_RATIO", "on_ladder"]

#: Neighbouring rungs of the ladder differ by this factor.
LADDER_RATIO = 1.1


def _rung(n: int, ratio: float) -> int:
    """The rung nearest ``n`` (in ratio); counts below 1 / (ratio - 1) are all rungs."""
    if n <= 1.0 / (ratio - 1.0):
        return n
    k = round(math.log(n) / math.log(ratio))
    return round(ratio**k)


def _next(n: int, ratio: float, up: bool) -> int:
    """The rung next to rung ``n`` (above or below)."""
    if n <= 1.0 / (ratio - 1.0):
        return n + 1 if up else n - 1
    k = round(math.log(n) / math.log(ratio)) + (1 if up else -1)
    other = round(ratio**k)
    return max(other, n + 1) if up else min(other, n - 1)


def on_ladder(shots: np.ndarray, *, minimum: int = 1, ratio: float = LADDER_RATIO) -> np.ndarray:
    """``shots`` (integers) rounded to the ladder with the same total: zeros stay zero,
    positive counts stay at least ``min(minimum, count)``. Rounding errors are settled by
    moving the counts that were rounded furthest one rung the other way; what no whole
    rung settles goes to the largest count (at most one count off the ladder, more only
    when floors are in the way)."""
    shots = np.asarray(shots, dtype=np.int64)
    out = shots.copy()
    active = np.flatnonzero(shots > 0)
    if len(active) < 2:
        return out
    floor = np.minimum(shots, minimum)
    for i in active.tolist():
        out[i] = max(_rung(int(shots[i]), ratio), int(floor[i]))
    diff = int(shots.sum() - out.sum())
    if diff:
        up = diff > 0
        # relative rounding error, most negative first when shots are missing
        err = (out[active] - shots[active]) / shots[active]
        for i in active[np.argsort(err if up else -err)].tolist():
            if (err_of := out[i] - shots[i]) == 0 or (err_of < 0) != up:
                break  # only counts rounded the other way move: none ends a rung off
            step = _next(int(out[i]), ratio, up) - int(out[i])
            if abs(step) > abs(diff) or (not up and out[i] + step < floor[i]):
                continue
            out[i] += step
            diff -= step
            if diff == 0:
                break
    # what no whole rung settled: added to the largest count, or taken from the largest
    # counts above their floors (they hold enough: the total was at least the floors')
    for i in active[np.argsort(-out[active], kind="stable")].tolist():
        if diff == 0:
            break
        take = diff if diff > 0 else -min(-diff, int(out[i] - floor[i]))
        out[i] += take
        diff -= take
    return out
