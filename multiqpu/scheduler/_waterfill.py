"""Water-filling: how k identical tasks spread over devices so that each lands where it is
expected to finish first (greedy earliest-finish-time, computed at once)."""

from __future__ import annotations

import heapq

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
