"""Budgets of the placement core: ``balanced``'s fidelity budget and ``budget_usd``.

* **The fidelity plan** (:func:`budget_plan`): which devices each class may use, from the
  fluid plan of the work not yet submitted, and each class's share of the fidelity budget
  (``CoreState.quota``), re-planned as estimates move.
* **Quotas** (:func:`within_quota`): a placement's loss against the class's most accurate
  device is trimmed to the class's share.
* **Money** (:func:`within_budget`): a placement keeps ``budget_usd`` feasible for the tasks
  not yet placed, at their cheapest allowed prices.

Functions of the core's state (:class:`~multiqpu.scheduler._state.CoreState`).
"""

from __future__ import annotations

import numpy as np

from multiqpu.errors import InvalidInputError
from multiqpu.scheduler._bounds import fluid_floor
from multiqpu.scheduler._state import CoreState
from multiqpu.scheduler._waterfill import capped_waterfill, waterfill

__all__ = [
    "PLAN_RESERVE",
    "budget_plan",
    "late_guard",
    "projected_end",
    "within_budget",
    "within_quota",
]

PLAN_RESERVE = 0.1  # balanced: share of the fidelity budget left unplanned, for later plans
# balanced: a plan bound by max_slowdown aims at this share of the slowdown allowed (1 +
# SLOWDOWN_AIM x (max_slowdown - 1)): estimates err, most on the devices a plan loads most
SLOWDOWN_AIM = 0.5


def budget_plan(core: CoreState, *, force: bool = False) -> np.ndarray:
    """``balanced``: (C, D) the devices each class may run on, from the fluid plan (see
    _bounds) of the work not yet submitted, on the estimated waits and speeds.

    The plan is the split that finishes earliest while what it loses against each
    circuit's most accurate device stays within (1 - PLAN_RESERVE) of what is left of the
    fidelity budget, on the devices above the per-circuit floor. With ``max_slowdown``
    (``s``): when that plan would finish later than ``s`` times the fastest plan on the
    same estimates (every device that fits, any fidelity), or when no such plan exists,
    the plan is instead the split that loses least among those that finish within ``s``
    times the fastest one (the fastest split itself should that program find none), and
    the fidelity budget grows to what it loses (the run is bound by ``max_slowdown``). A
    class may use every device at least as accurate as the least accurate one the plan
    gives it. Re-planned after every 5 % of the tasks is delivered (estimates have moved,
    and what was spent is known) and when a device is dropped."""
    delivered = core.stats.delivered
    if core.fallen_back:
        # the run fell back to fastest (see late_guard): every live device that fits
        core.quota = None
        t = core.tables
        core.plan = t.fits & core.alive[None, :] & (t.fidelity >= t.floor[:, None])
        core.planned_at = delivered
        return core.plan
    if (
        core.plan is not None
        and not force
        and delivered - core.planned_at < max(1, core.total // 20)
    ):
        return core.plan
    from multiqpu.scheduler._bounds import fluid_min_loss, fluid_plan
    from multiqpu.scheduler._policy import FLOOR_MARGINS

    t = core.tables
    n_c = t.n_classes
    movable = core.unplaced_by_class.astype(float)
    local_loss = 0.0
    for d, dev in enumerate(core.dev):
        for _, cls in dev.local:
            movable += np.bincount(cls, minlength=n_c)
            local_loss += float(core.loss[cls, d].sum())
    eligible = t.fits & core.alive[None, :] & (t.fidelity >= t.floor[:, None])
    fid = np.where(eligible, t.fidelity, -np.inf)
    best = fid.max(axis=1, initial=-np.inf)
    ok = eligible & (
        fid
        >= (best * (1.0 - min(FLOOR_MARGINS * core.config.fidelity_margin, 1.0)))[:, None] - 1e-12
    )
    # before any plan: the most accurate devices only
    keep = ok & (fid >= best[:, None] - 1e-12) if core.plan is None else core.plan & ok
    plan, bound = None, "fidelity_margin"
    wide = ok
    if movable.sum() > 0 and ok.any() and _nothing_to_trade(core, eligible, fid, best, movable):
        # every device a class may use is as accurate as its best one (ideal simulators,
        # identical devices): any split loses nothing, and the fluid plan's outcome (each
        # class with work may use every eligible device, no quota) needs no linear program
        plan = eligible.astype(float)
    elif movable.sum() > 0 and ok.any():
        now = core.now
        start = np.where(core.alive, np.maximum(core.lane_end, now + core.wait) - now, np.inf)
        left = core.fidelity_free() + local_loss
        t_plan, plan = fluid_plan(
            movable, core.x, start, ok, loss=core.loss, budget=(1.0 - PLAN_RESERVE) * left
        )
        slowdown = core.config.max_slowdown
        if slowdown is not None:
            aim = 1.0 + SLOWDOWN_AIM * (slowdown - 1.0)
            # the fastest plan's T matters only when t_plan exceeds aim x T: a lower bound
            # on T that t_plan already keeps within decides it without the second program
            floor = fluid_floor(movable, core.x, start, eligible)
            fast: np.ndarray | None = None
            if np.isfinite(floor) and t_plan <= aim * floor:
                t_fast = floor  # stands in (the test below is then false, as with T)
            else:
                t_fast, fast = fluid_plan(movable, core.x, start, eligible)
            if np.isfinite(t_fast) and not t_plan <= aim * t_fast:
                quick = fluid_min_loss(movable, core.x, start, eligible, core.loss, aim * t_fast)
                if quick is None:
                    # no split within the horizon (only by numerical tolerance, as it holds
                    # the fastest one): the fastest split, never the most accurate devices
                    # alone below (a trial that fed this program other times than T's got
                    # here every time, and seed 9076 ran 81 M s on one neutral-atom device)
                    quick = fast
                if quick is not None:
                    plan, bound, wide = quick, "max_slowdown", eligible
                    need = float((quick * core.loss).sum())
                    # the fidelity budget grows to what this plan loses (with room for
                    # the reserves held back from placement)
                    core.fidelity_budget = max(
                        core.fidelity_budget, (core.fidelity_spent - local_loss + need) / 0.8
                    )
    if plan is None:  # nothing to plan, or the budget is spent: carry on as planned
        use = keep
        if movable.sum() > 0:  # spent: new work goes to the most accurate devices
            core.quota = np.zeros(n_c)
            bound = "fidelity_margin"
    else:
        core.quota = (plan * core.loss).sum(axis=1)
        # a class may run on every device at least as accurate as the least accurate one
        # the plan gives it (water-filling then balances them); classes with nothing to
        # plan keep their devices
        low = np.where(plan > 1e-6, t.fidelity, np.inf).min(axis=1)
        use = np.where((movable > 0)[:, None], wide & (t.fidelity >= low[:, None] - 1e-12), keep)
    # a class left without a live device (its planned ones were lost): its most accurate
    # live device; and the default floor is soft: if it excludes every live device that
    # fits, the work goes there anyway (only a fidelity_floor the user set is hard)
    empty = ~use.any(axis=1)
    if empty.any():
        use[empty] = (eligible & (fid >= best[:, None] - 1e-12))[empty]
    if movable.sum() > 0:
        core.stats.limits[bound] = core.stats.limits.get(bound, 0) + 1
    core.plan = use
    core.planned_at = delivered
    return use


def _nothing_to_trade(
    core: CoreState, eligible: np.ndarray, fid: np.ndarray, best: np.ndarray, movable: np.ndarray
) -> bool:
    """Whether the fluid plan of :func:`budget_plan` is foregone: every eligible (class,
    device) is within 1e-12 of the class's best fidelity and loses nothing, every class
    with work has an eligible device, and the program's inputs are finite (it then has a
    solution, which gives each class with work every eligible device, and the
    ``max_slowdown`` program is the same one)."""
    if (core.loss[eligible] > 0.0).any():
        return False
    if not (np.where(eligible, fid, np.inf) >= best[:, None] - 1e-12).all():
        return False
    if not eligible[movable > 0].any(axis=1).all():
        return False
    used = eligible.any(axis=0)
    start = np.maximum(core.lane_end, core.now + core.wait)
    return bool(np.isfinite(start[used]).all() and np.isfinite(core.x[eligible]).all())


def within_quota(
    core: CoreState,
    c: int,
    sel: np.ndarray,
    n: np.ndarray,
    Fs: np.ndarray,
    xs: np.ndarray,
    k: int,
    room: np.ndarray,
    cap: np.ndarray,
) -> np.ndarray:
    """``balanced``: trim the tasks the water-filling gave devices less accurate than
    class ``c``'s best until what they lose fits the class's share of the fidelity budget
    (the least accurate device first); the rest queues on the most accurate ones."""
    assert core.quota is not None
    lc = core.loss[c, sel]
    q = min(max(float(core.quota[c]), 0.0), core.fidelity_free())
    spend = float(n @ lc)
    if spend <= q + 1e-12:  # the usual case
        core.quota[c] -= spend
        return n
    room = room.copy()
    for _ in range(len(sel) + 1):
        spend = float(n @ lc)
        if spend <= q + 1e-12:
            break
        over = np.flatnonzero((n > 0) & (lc > 1e-12))
        i = int(over[np.argmax(lc[over])])
        room[i] = max(int(n[i] - np.ceil((spend - q) / lc[i] - 1e-9)), 0)
        n = capped_waterfill(Fs, xs, k, room)
    if n.sum() < k:
        # what was trimmed queues on the most accurate devices, up to their horizons
        # (one task at least, so that work never stalls; stealing may still move it)
        best = lc <= lc.min() + 1e-12
        far = np.maximum(np.floor((cap - Fs) / xs + 1e-9), 0.0).astype(np.int64)
        room[best] = np.maximum(room[best], far[best])
        if room[best].sum() == 0:
            room[int(np.argmin(np.where(best, Fs + xs, np.inf)))] = 1
        n = capped_waterfill(Fs, xs, k, room)
    core.quota[c] -= float(n @ lc)
    return n


def within_budget(core: CoreState, c: int, k: int, sel: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Devices for ``k`` tasks of class ``c`` that keep the budget feasible: the tasks not
    yet placed must still fit at their cheapest prices."""
    budget = core.config.budget_usd
    assert budget is not None
    price = core.price[c]
    reserve_after = float(np.dot(core.unplaced_by_class, core.min_price) - k * core.min_price[c])
    slack = budget - core.spent - reserve_after
    n, _ = waterfill(F[sel], core.x[c][sel], k)
    if float(np.dot(n, price[sel])) <= slack + 1e-12:
        return sel
    allowed = np.flatnonzero(core.masks.allowed[c] & core.alive)
    limit = core.min_price[c] + max(slack - k * core.min_price[c], 0.0) / max(k, 1)
    cheap = allowed[price[allowed] <= limit + 1e-12]
    if len(cheap) == 0 or k * core.min_price[c] > slack + 1e-9:
        raise InvalidInputError(
            f"budget_usd={budget} is spent: ${core.spent:.2f} committed, "
            f"${reserve_after + k * core.min_price[c]:.2f} still needed at the cheapest "
            "prices; raise the budget or run fewer circuits"
        )
    return cheap


def projected_end(core: CoreState, now: float) -> float:
    """When the run is expected to end on the current estimates: every open job (an
    overdue one later the longer it is late, see ``_hedging.straggler_end``; one on a device
    not learned yet by how long it has waited; a hedged one at its earliest copy). The work
    not yet submitted is left out: its plan keeps to ``max_slowdown`` by itself
    (:func:`budget_plan`)."""
    from multiqpu.scheduler._hedging import straggler_end

    end = now
    for job in core.jobs.values():
        if job.origin is not None:
            continue
        if core.learner.jobs[job.device] == 0:
            # a device not learned yet: judged by how long the job has waited (heavy
            # tails), not by the prior its report gave
            e = now + max(job.exec_s, 0.5 * (now - job.submitted))
        else:
            e = straggler_end(core, job, now)
        for h in job.hedges:
            if h in core.jobs:
                e = min(e, straggler_end(core, core.jobs[h], now))
        end = max(end, e)
    return end


def late_guard(core: CoreState, now: float) -> bool:
    """``balanced`` with ``max_slowdown`` (``s``): the guarantee in the run, not only in the
    plan. The plan of the work not yet submitted keeps to ``s`` times the fastest plan
    (:func:`budget_plan`); what it cannot see is a job already submitted that runs late
    (a queue far longer than its estimate) and whose rescue the fidelity budget forbids.
    Once a first result is in and every task is submitted, when an open job is expected to
    end (:func:`projected_end`) further off than ``s`` times the fastest plan of everything
    not yet delivered (every live device that fits, any fidelity, each starting after its
    estimated wait: the work in flight re-placed too), the rest of the run is hedged and
    copied as ``fastest`` would (no fidelity quota), for good;
    ``limits["max_slowdown_fallback"]`` records it. Returns whether the run has fallen
    back."""
    slowdown = core.config.max_slowdown
    if core.fallen_back or slowdown is None or core.config.policy != "balanced":
        return core.fallen_back
    if core.stats.delivered == 0:
        return False  # nothing learned yet: the plan's estimates are all there is
    if core.front or core.source.remaining:
        return False  # work left to place: the plan still decides (and re-plans)
    ahead = projected_end(core, now) - now
    t = core.tables
    eligible = t.fits & core.alive[None, :] & (t.fidelity >= t.floor[:, None])
    start = np.where(core.alive, core.wait, np.inf)
    # cheap test first: the fastest plan takes at least the shortest wait
    if ahead <= slowdown * float(start.min(initial=np.inf)):
        return False
    from multiqpu.scheduler._bounds import fluid_plan

    todo = core.remaining_by_class.astype(float)
    floor = fluid_floor(todo, core.x, start, eligible)
    if np.isfinite(floor) and ahead <= slowdown * floor:
        return False  # within s x a lower bound on the fastest plan: within s x the plan
    t_fast, _ = fluid_plan(todo, core.x, start, eligible)
    if not np.isfinite(t_fast) or ahead <= slowdown * t_fast:
        return False
    core.fallen_back = True
    core.stats.limits["max_slowdown_fallback"] = 1
    budget_plan(core, force=True)
    return True
