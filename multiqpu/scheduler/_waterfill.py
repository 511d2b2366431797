"""Water-filling: how k identical tasks spread over devices so that each lands where it is
expected to finish first (greedy earliest-finish-time, computed at once).

Placement water-fills once per class and round, over a handful of devices, where numpy's
per-call overhead is most of the cost: for up to ``_SMALL`` devices (finite times, positive
per-task times) the same arithmetic runs on Python floats, in the same order, with the
same results (``tests/scheduler/test_driver_shortcuts.py`` compares both ways)."""

from __future__ import annotations

import heapq
import math

import numpy as np

__all__ = ["capped_waterfill", "fluid_level", "waterfill"]


def fluid_level(F: np.ndarray, x: np.ndarray, cap: np.ndarray, total: float) -> float:
    """The smallest ``L`` with ``sum(min((L - F) / x, cap)) >= total`` (piecewise linear in
    ``L``: solved exactly between sorted breakpoints)."""
    pts = np.unique(np.concatenate([F, F + cap * x]))
    absorbed = np.minimum(np.maximum(pts[:, None] - F[None, :], 0.0) / x[None, :], cap).sum(axis=1)
    i = int(np.searchsorted(absorbed, total, side="left"))
    if i >= len(pts):
        return float(pts[-1])
    if i == 0:
        return float(pts[0])
    a0, a1 = absorbed[i - 1], absorbed[i]
    return float(pts[i - 1] + (pts[i] - pts[i - 1]) * (total - a0) / max(a1 - a0, 1e-300))


def capped_waterfill(F: np.ndarray, x: np.ndarray, k: int, room: np.ndarray) -> np.ndarray:
    """:func:`_waterfill` with at most ``room[i]`` tasks on device ``i``."""
    if int(room.sum()) <= k:  # every device's room gets used: no choice to make
        return room.astype(np.int64).copy()
    with_room = np.flatnonzero(room > 0)
    if len(with_room) == 1:
        n1 = np.zeros(len(F), dtype=np.int64)
        n1[with_room[0]] = k
        return n1
    if len(F) <= _SMALL and room.dtype.kind in "iu":
        Fl, xl = F.tolist(), x.tolist()
        if _plain(Fl, xl, k):
            return np.array(_capped_small(Fl, xl, k, room.tolist()), dtype=np.int64)
    n = np.zeros(len(F), dtype=np.int64)
    left = k
    active = room > 0
    while left > 0 and active.any():
        a = np.flatnonzero(active)
        m, _ = waterfill(F[a] + n[a] * x[a], x[a], left)
        m = np.minimum(m, room[a] - n[a])
        got = int(m.sum())
        if got == 0:
            break
        n[a] += m
        left -= got
        active = n < room
    return n


def waterfill(F: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Greedy earliest-finish assignment of ``k`` identical tasks: device ``i`` finishes its
    ``j``-th new task at ``F[i] + j * x[i]``; returns counts per device and the level (the
    finish time of the last task placed)."""
    m = len(F)
    if m == 1:
        return np.array([k], dtype=np.int64), float(F[0] + k * x[0])
    if m <= _SMALL:
        Fl, xl = F.tolist(), x.tolist()
        if _plain(Fl, xl, k):
            out_small, level_small = _waterfill_small(Fl, xl, k)
            return np.array(out_small, dtype=np.int64), level_small
    order = np.argsort(F)
    Fs, rs = F[order], 1.0 / x[order]
    level_if = (k + np.cumsum(Fs * rs)) / np.cumsum(rs)
    nxt = np.append(Fs[1:], np.inf)
    j = int(np.argmax(level_if <= nxt))
    level = float(level_if[j])
    n = np.floor(np.maximum(level - Fs, 0.0) * rs + 1e-9).astype(np.int64)
    over = int(n.sum()) - k
    while over > 0:  # rounding: remove the latest-finishing slots
        last = Fs + n * x[order]
        last[n == 0] = -np.inf
        i = int(np.argmax(last))
        n[i] -= 1
        over -= 1
    rem = k - int(n.sum())
    if rem > 0:  # the remaining (< m) tasks go to the earliest next slots, one at a time
        xs = x[order]
        heap = [(float(Fs[i] + (n[i] + 1) * xs[i]), i) for i in range(m)]
        heapq.heapify(heap)
        for _ in range(rem):
            t, i = heapq.heappop(heap)
            n[i] += 1
            heapq.heappush(heap, (t + float(xs[i]), i))
    out = np.empty(m, dtype=np.int64)
    out[order] = n
    fin = F + out * x
    level = float(fin[out > 0].max()) if (out > 0).any() else float(F.min())
    return out, level


#: Devices up to which water-filling runs on Python floats.
_SMALL = 8


def _plain(F: list[float], x: list[float], k: int) -> bool:
    """Inputs the Python path takes: finite times, positive finite per-task times."""
    return (
        0 <= k < 2**52
        and all(math.isfinite(v) for v in F)
        and all(math.isfinite(v) and v > 0.0 for v in x)
    )


def _argsort(F: list[float]) -> list[int]:
    """``np.argsort(F)``: any sort gives its order when the values are distinct; ties are
    left to numpy (its order of equal values is its own)."""
    if len(set(F)) == len(F):
        return sorted(range(len(F)), key=F.__getitem__)
    return [int(i) for i in np.argsort(np.array(F))]


def _waterfill_small(F: list[float], x: list[float], k: int) -> tuple[list[int], float]:
    """:func:`waterfill` on Python floats (the same operations in the same order)."""
    m = len(F)
    if m == 1:
        return [k], F[0] + k * x[0]
    order = _argsort(F)
    Fs = [F[i] for i in order]
    xs = [x[i] for i in order]
    rs = [1.0 / v for v in xs]
    a, b = Fs[0] * rs[0], rs[0]  # running sums, as cumsum adds them
    level_if = [(k + a) / b]
    for i in range(1, m):
        a += Fs[i] * rs[i]
        b += rs[i]
        level_if.append((k + a) / b)
    nxt = [*Fs[1:], math.inf]
    j = next((i for i in range(m) if level_if[i] <= nxt[i]), 0)
    level = level_if[j]
    n = [math.floor(max(level - f, 0.0) * r + 1e-9) for f, r in zip(Fs, rs, strict=True)]
    over = sum(n) - k
    while over > 0:  # rounding: remove the latest-finishing slots (the first such)
        best, best_t = 0, -math.inf
        for i in range(m):
            t = Fs[i] + n[i] * xs[i] if n[i] != 0 else -math.inf
            if i == 0 or t > best_t:
                best, best_t = i, t
        n[best] -= 1
        over -= 1
    rem = k - sum(n)
    if rem > 0:
        heap = [(Fs[i] + (n[i] + 1) * xs[i], i) for i in range(m)]
        heapq.heapify(heap)
        for _ in range(rem):
            t, i = heapq.heappop(heap)
            n[i] += 1
            heapq.heappush(heap, (t + xs[i], i))
    out = [0] * m
    for p, i in enumerate(order):
        out[i] = n[p]
    used = [F[i] + out[i] * x[i] for i in range(m) if out[i] > 0]
    return out, (max(used) if used else min(F))


def _capped_small(F: list[float], x: list[float], k: int, room: list[int]) -> list[int]:
    """The loop of :func:`capped_waterfill` on Python numbers."""
    m = len(F)
    n = [0] * m
    left = k
    active = [r > 0 for r in room]
    while left > 0 and any(active):
        a = [i for i in range(m) if active[i]]
        got_each, _ = _waterfill_small([F[i] + n[i] * x[i] for i in a], [x[i] for i in a], left)
        got_each = [min(g, room[i] - n[i]) for g, i in zip(got_each, a, strict=True)]
        got = sum(got_each)
        if got == 0:
            break
        for g, i in zip(got_each, a, strict=True):
            n[i] += g
        left -= got
        active = [n[i] < room[i] for i in range(m)]
    return n
