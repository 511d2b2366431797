"""Placement of the core: lazy earliest-finish placement and work stealing.

* **Lazy earliest-finish placement** (:func:`place`): tasks are taken from the source in
  order and, class by class, water-filled onto the policy's preferred devices so that each
  lands where it is expected to finish first, up to each device's horizon.
* **Work stealing** (:func:`steal`): when the source is empty, a device with a free slot and
  nothing queued takes tasks from the tail of the device expected to finish last.

Jobs are formed from what is placed in :mod:`multiqpu.scheduler._jobs`.

Functions of the core's state (:class:`~multiqpu.scheduler._state.CoreState`); see
:mod:`multiqpu.scheduler._core` for the whole.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from multiqpu.scheduler._budget import within_budget, within_quota
from multiqpu.scheduler._hedging import rescue_mask, stuck
from multiqpu.scheduler._state import CoreState
from multiqpu.scheduler._waterfill import capped_waterfill, fluid_level, waterfill

__all__ = [
    "PROBE_FRACTION",
    "SCAN_LIMIT",
    "assign",
    "group_keys",
    "level_tables",
    "move_tail",
    "place",
    "place_chunk",
    "put",
    "skip_blocked",
    "sort_groups",
    "steal",
    "take",
    "unplaceable",
]

# a device whose speed is unknown gets a probe (one circuit) first, only a circuit it is
# expected to finish within this share of the remaining plan
PROBE_FRACTION = 0.1
# placement looks at most this many tasks past those of classes it cannot place now
SCAN_LIMIT = 65536


def take(core: CoreState, n: int) -> tuple[np.ndarray, np.ndarray]:
    idx_parts: list[np.ndarray] = []
    cls_parts: list[np.ndarray] = []
    have = 0
    while core.front and have < n:
        idx, cls = core.front.popleft()
        k = n - have
        if len(idx) > k:
            core.front.appendleft((idx[k:], cls[k:]))
            idx, cls = idx[:k], cls[:k]
        idx_parts.append(idx)
        cls_parts.append(cls)
        have += len(idx)
    if have < n and core.source.remaining:
        idx, cls = core.source.take(n - have)
        idx_parts.append(idx)
        cls_parts.append(cls)
    if not idx_parts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if len(idx_parts) == 1:
        return idx_parts[0], cls_parts[0]
    return np.concatenate(idx_parts), np.concatenate(cls_parts)


def plan_level(
    core: CoreState, F: np.ndarray, tables: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[float, np.ndarray]:
    """The fluid level of all unplaced work: the time ``L`` by which the devices, each
    taking only classes it is preferred for at its mean per-task time, could finish it.
    Devices expected to be busy past ``L`` get no new work now. ``tables``: the policy's
    live devices per class and their task times there (:func:`level_tables`), when the
    caller keeps them over several calls."""
    u = core.unplaced_by_class.astype(float)
    pref, px = tables if tables is not None else level_tables(core)
    count = u @ pref  # tasks each device could take
    xbar = (u @ px) / np.maximum(count, 1.0)
    ok = count > 0
    total = float(u.sum())
    if total <= 0 or not ok.any():
        return float(F.min()), xbar
    return fluid_level(F[ok], xbar[ok], count[ok], total), xbar


def level_tables(core: CoreState) -> tuple[np.ndarray, np.ndarray]:
    """For :func:`plan_level`: the live preferred devices of each class, and their task
    times there (zero elsewhere)."""
    pref = core.masks.preferred & core.alive[None, :]
    return pref, pref * core.x


def place(core: CoreState, now: float) -> None:
    """Place unplaced tasks, oldest first, on the devices with room before the plan's level.
    A class none of whose devices has room is *blocked* for the rest of the call; its tasks
    are set aside, in order, and up to ``SCAN_LIMIT`` tasks behind them are still placed
    (docs/scheduler.md, round 10: a blocked head of the line starved the rest)."""
    tic = time.perf_counter()
    held: list[tuple[np.ndarray, np.ndarray]] = []
    n_held = 0
    blocked = np.zeros(core.tables.n_classes, dtype=bool)
    if len(core.front) > 1:  # one segment: a blocked stretch is then skipped in one step
        core.front = deque(
            [
                (
                    np.concatenate([seg[0] for seg in core.front]),
                    np.concatenate([seg[1] for seg in core.front]),
                )
            ]
        )
    tables = level_tables(core)  # placing changes neither masks, liveness nor speeds
    fresh = True  # the levels below must be worked out (again): something was placed
    while core.front or core.source.remaining:
        if blocked.any() and (n_held >= SCAN_LIMIT or blocked[core.unplaced_by_class > 0].all()):
            break  # every class with work left is blocked, or far enough looked
        if fresh:
            F = core.finish_times(now)
            cap = now + core.horizon
            level, xbar = plan_level(core, F, tables)
            core.plan_end = max(level, now)
            limit = np.minimum(level, cap)
            room = np.where(core.alive, np.maximum(limit - F, 0.0), 0.0)
            idle = core.alive & (core.local_count == 0) & (core.inflight < core.slots)
            capacity = int(np.sum(room / np.maximum(xbar, 1e-9))) + int(idle.sum())
            dead = unplaceable(core, F, cap, tables[0])
            fresh = False
        want = min(max(capacity, 16), core.chunk)
        n_held += skip_blocked(core, blocked, want, held, n_held)
        idx, cls = take(core, want)
        while len(idx) and blocked[cls].any() and n_held < SCAN_LIMIT:
            skip = blocked[cls]
            held.append((idx[skip], cls[skip]))
            n_held += int(skip.sum())
            idx, cls = idx[~skip], cls[~skip]
            if len(idx) == 0:  # all blocked: look further (the level is unchanged)
                idx, cls = take(core, want)
        if len(idx) == 0:
            break
        if dead is not None and dead[cls].all():
            # what place_chunk would hand back, without trying: the chunk by group
            leftover = [sort_groups(core, idx, cls)]
        else:
            placed = core.stats.placements
            leftover = place_chunk(core, idx, cls, now, F, limit, cap)
            fresh = core.stats.placements != placed
        if leftover:
            left = sum(len(seg[0]) for seg in leftover)
            # adapt the chunk to what the devices actually took
            core.chunk = max(16, min(65536, 2 * (len(idx) - left)))
            for seg in leftover:
                blocked[seg[1]] = True
            held.extend(leftover)
            n_held += left
            continue
        core.chunk = min(65536, 2 * core.chunk)
    for seg in reversed(held):  # set aside: back to the head of the line, in order
        core.front.appendleft(seg)
    core.stats.place_s += time.perf_counter() - tic


def unplaceable(
    core: CoreState, F: np.ndarray, cap: np.ndarray, pref: np.ndarray
) -> np.ndarray | None:
    """Per class, whether :func:`place_chunk` surely places none of its tasks now: no probe
    is due on its devices, and each live device the policy prefers for it holds queued work
    and has no room before its horizon for even one of its tasks (by a margin, so that the
    mean task time of a group of such classes has none either). None: a deadline or budget
    makes ``assign`` look wider; no shortcut then. ``pref``: the live preferred devices."""
    if core.config.deadline_at is not None or core.config.budget_usd is not None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        full = (cap - F)[None, :] / core.x + 1e-9 < 1.0 - 1e-6
    ok = (full & (core.local_count > 0)[None, :]) | ~pref
    probing = (pref & core.needs_probe[None, :]).any(axis=1)
    # a class with no live preferred device: assign looks at its allowed ones (the first
    # class's, for a group), so no shortcut
    return ok.all(axis=1) & ~probing & pref.any(axis=1)


def group_keys(core: CoreState, cls: np.ndarray) -> np.ndarray:
    """What :func:`place_chunk` groups tasks by: their preferred devices, or their class
    when a budget or deadline needs per-class prices and times (or ``balanced`` its
    per-class quota)."""
    exact = (
        core.config.budget_usd is not None
        or core.config.deadline_at is not None
        or core.quota is not None
    )
    return cls if exact else core.mask_group[cls]


def sort_groups(core: CoreState, idx: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tasks in the order :func:`place_chunk` groups them."""
    order = np.argsort(group_keys(core, cls), kind="stable")
    return idx[order], cls[order]


def skip_blocked(
    core: CoreState,
    blocked: np.ndarray,
    want: int,
    held: list[tuple[np.ndarray, np.ndarray]],
    n_held: int,
) -> int:
    """Set aside, in one step, the whole chunks of ``want`` tasks at the head of the front
    that hold only blocked classes (what :func:`place` would set aside chunk by chunk), as
    far as ``SCAN_LIMIT`` lets it look; returns how many."""
    if not blocked.any() or not core.front or n_held >= SCAN_LIMIT:
        return 0
    idx, cls = core.front[0]
    free = np.flatnonzero(~blocked[cls])
    first = int(free[0]) if len(free) else len(cls)
    k = min(first // want, -(-(SCAN_LIMIT - n_held) // want))
    if k <= 0:
        return 0
    n = k * want
    held.append((idx[:n], cls[:n]))
    if n < len(idx):
        core.front[0] = (idx[n:], cls[n:])
    else:
        core.front.popleft()
    return n


def place_chunk(
    core: CoreState,
    idx: np.ndarray,
    cls: np.ndarray,
    now: float,
    F: np.ndarray,
    limit: np.ndarray,
    cap: np.ndarray,
) -> list[tuple[np.ndarray, np.ndarray]]:
    # Tasks are water-filled in groups (group_keys) that share their preferred devices
    keys = group_keys(core, cls)
    order = np.argsort(keys, kind="stable")
    cls_sorted = cls[order]
    idx_sorted = idx[order]
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(cls_sorted)]))
    leftover: list[tuple[np.ndarray, np.ndarray]] = []
    n_c = core.tables.n_classes
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        c = int(cls_sorted[a])
        if core.needs_probe.any():
            for d in np.flatnonzero(core.needs_probe & core.masks.preferred[c] & core.alive):
                if a == b:
                    break
                # the circuit of the group quickest there, if that is small next to the plan
                i = a + int(np.argmin(core.x[cls_sorted[a:b], d]))
                if core.x[int(cls_sorted[i]), d] > PROBE_FRACTION * (core.plan_end - now):
                    continue
                if now + core.learner.wait_quantile(-1.0)[d] > core.plan_end:
                    continue  # even an optimistic wait there ends after the plan: no probe
                if i != a:  # move it to the front of the group
                    idx_sorted[[a, i]] = idx_sorted[[i, a]]
                    cls_sorted[[a, i]] = cls_sorted[[i, a]]
                c = int(cls_sorted[a])
                if core.quota is not None and core.loss[c, d] > min(
                    max(float(core.quota[c]), 0.0), core.fidelity_left()
                ):
                    continue  # balanced: a probe too must fit the fidelity budget
                if core.quota is not None:
                    core.quota[c] -= core.loss[c, d]
                put(core, int(d), idx_sorted[a : a + 1], cls_sorted[a : a + 1], F)
                core.needs_probe[d] = False
                core.unplaced_by_class[int(cls_sorted[a])] -= 1
                core.stats.placements += 1
                core.stats.probes += 1
                a += 1
            if a == b:
                continue
            c = int(cls_sorted[a])
        g_cls = cls_sorted[a:b]
        n_by_dev = assign(core, c, g_cls, F, limit, cap)
        if n_by_dev is None:
            leftover.append((idx_sorted[a:b], g_cls))
            continue
        devs, counts = n_by_dev
        pos = a
        for d, n in zip(devs.tolist(), counts.tolist(), strict=True):
            if n <= 0:
                continue
            put(core, d, idx_sorted[pos : pos + n], cls_sorted[pos : pos + n], F)
            pos += n
        core.unplaced_by_class -= np.bincount(cls_sorted[a:pos], minlength=n_c)
        core.stats.placements += pos - a
        if pos < b:
            leftover.append((idx_sorted[pos:b], cls_sorted[pos:b]))
    return leftover


def put(core: CoreState, d: int, idx: np.ndarray, cls: np.ndarray, F: np.ndarray) -> None:
    n = len(idx)
    work = float(core.x[cls, d].sum())
    g = core.tables.group[cls]
    if n > 1 and g.min() != g.max():  # one shots value per job: one group per segment
        order = np.argsort(g, kind="stable")
        idx, cls, g = idx[order], cls[order], g[order]
        cuts = (np.flatnonzero(np.diff(g)) + 1).tolist()
        for a, b in zip([0, *cuts], [*cuts, n], strict=True):
            core.dev[d].local.append((idx[a:b], cls[a:b]))
    else:
        core.dev[d].local.append((idx, cls))
    core.local_count[d] += n
    core.local_work[d] += work
    F[d] += work
    core.spent += float(core.price[cls, d].sum())
    core.fidelity_spent += float(core.loss[cls, d].sum())


def assign(
    core: CoreState, c: int, g_cls: np.ndarray, F: np.ndarray, limit: np.ndarray, cap: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """How many of the tasks ``g_cls`` (all with class ``c``'s preferred devices) each
    device takes now."""
    k = len(g_cls)
    sel = np.flatnonzero(core.masks.preferred[c] & core.alive)
    if len(sel) == 0:
        sel = np.flatnonzero(core.masks.allowed[c] & core.alive)
        if len(sel) == 0:
            return None
    if k == 1 or (g_cls[0] == g_cls[-1] and (g_cls == c).all()):
        xc = core.x[c]
    else:
        xc = np.bincount(g_cls, minlength=core.tables.n_classes) @ core.x / k
    if core.config.deadline_at is not None:
        _, level = waterfill(F[sel], xc[sel], k)
        if level > core.config.deadline_at:
            wider = np.flatnonzero(core.masks.allowed[c] & core.alive)
            if len(wider) > len(sel):
                sel = wider
                core.stats.limits["deadline_s"] = core.stats.limits.get("deadline_s", 0) + 1
    restricted = False
    if core.config.budget_usd is not None:
        cheap = within_budget(core, c, k, sel, F)
        restricted = len(cheap) < len(sel) or not np.array_equal(cheap, sel)
        if restricted:
            core.stats.limits["budget_usd"] = core.stats.limits.get("budget_usd", 0) + 1
        sel = cheap
    Fs, xs = F[sel], xc[sel]
    # the plan level assumed the policy's devices; under a budget squeeze only the
    # horizon limits the cheaper ones
    lim = cap[sel].copy() if restricted else limit[sel].copy()
    # the device that would finish a task of this class first may always take one, up
    # to its own horizon, or past it when it has nothing queued (nothing can starve)
    j = int(np.argmin(Fs + xs))
    lim[j] = max(lim[j], min(Fs[j] + xs[j], cap[sel][j]))
    room = np.maximum(np.floor((lim - Fs) / xs + 1e-9), 0.0).astype(np.int64)
    if room.sum() == 0:
        if core.local_count[sel[j]] > 0:
            return None
        room[j] = 1
    n = capped_waterfill(Fs, xs, k, room)
    if core.quota is not None:
        n = within_quota(core, c, sel, n, Fs, xs, k, room, cap[sel])
    if n.sum() == 0:
        return None
    return sel, n


# ------------------------------------------------------------------ stealing
def steal(core: CoreState, now: float) -> None:
    hungry = np.flatnonzero(core.alive & (core.local_count == 0) & (core.inflight < core.slots))
    if len(hungry) == 0 or not core.local_count.any():
        return
    for d in hungry.tolist():
        for _ in range(64):
            F = core.finish_times(now)
            victims = np.flatnonzero(core.local_count > 0)
            victims = victims[victims != d]
            if len(victims) == 0:
                return
            v = int(victims[np.argmax(F[victims])])
            _, seg_cls = core.dev[v].local[-1]
            c = int(seg_cls[-1])
            held = stuck(core, v, now)
            if not (core.masks.preferred[c, d] or (held and rescue_mask(core)[c, d])):
                break
            xd, xv = core.x[c, d], core.x[c, v]
            # move j tasks while the last one still finishes earlier on d
            j = int(np.floor((F[v] - F[d] + xv) / (xd + xv) - 1e-9))
            other = np.flatnonzero(seg_cls[::-1] != c)
            same = int(other[0]) if len(other) else len(seg_cls)  # trailing class-c tasks
            j = min(j, same, int(np.ceil(core.job_s[d] / xd)))
            extra = core.price[c, d] - core.price[c, v]
            if core.config.budget_usd is not None and extra > 0:
                reserve = float(np.dot(core.unplaced_by_class, core.min_price))
                room = core.config.budget_usd - reserve - core.spent
                j = min(j, int(np.floor(room / extra + 1e-9)))
            worse = core.loss[c, d] - core.loss[c, v]
            # balanced: within the budget; off a session device that has not started
            # (while others are idle: we steal), the rescue reserve too, and past the
            # budget once its first job is late
            if core.quota is not None and worse > 1e-12 and not held:
                if core.waiting_session(v):
                    q = core.fidelity_left()
                else:
                    q = min(max(float(core.quota[c]), 0.0), core.fidelity_free())
                j = min(j, int(np.floor(q / worse + 1e-9)))
            if j <= 0 or F[d] + xd >= F[v]:
                break
            if core.quota is not None:
                core.quota[c] -= j * worse
            move_tail(core, v, d, j, c)
            core.stats.steals += j


def move_tail(core: CoreState, v: int, d: int, j: int, c: int) -> None:
    seg_idx, seg_cls = core.dev[v].local.pop()
    moved_idx = seg_idx[-j:]
    if len(seg_idx) > j:
        core.dev[v].local.append((seg_idx[:-j], seg_cls[:-j]))
    core.local_count[v] -= j
    core.local_work[v] = max(core.local_work[v] - j * core.x[c, v], 0.0)
    core.dev[d].local.append((moved_idx, np.full(j, c, dtype=np.int64)))
    core.local_count[d] += j
    core.local_work[d] += j * core.x[c, d]
    core.spent += j * (core.price[c, d] - core.price[c, v])
    core.fidelity_spent += j * (core.loss[c, d] - core.loss[c, v])
