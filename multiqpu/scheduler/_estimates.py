"""What the placement core expects, derived from what its learner knows: per-task times, job
sizes and horizons per device, the policy's masks, and which session devices are live.

Functions of the core's state (:class:`~multiqpu.scheduler._state.CoreState`), called after
the learner or the set of live devices changed.
"""

from __future__ import annotations

import weakref

import numpy as np

from multiqpu.scheduler._budget import budget_plan
from multiqpu.scheduler._policy import masks
from multiqpu.scheduler._state import EPS, SESSION_INFLIGHT, SESSION_WAIT_S, CoreState

__all__ = ["refresh", "refresh_masks", "row_groups", "update_sessions"]

# per core: the inputs its masks were last computed from (plan, tables, live devices)
_INPUTS: weakref.WeakKeyDictionary[CoreState, tuple[np.ndarray | None, object, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def refresh_masks(core: CoreState, *, force: bool = False) -> None:
    """Recompute the policy's masks (for ``balanced``, from the fidelity plan; ``force``:
    re-plan now) and what depends on them."""
    core.stale = 0
    t = core.tables
    planned = None
    if core.config.policy == "balanced":
        planned = budget_plan(core, force=force)
    # the masks and what follows are functions of the plan (re-planned into a new array,
    # never changed in place), the tables and the live devices: unchanged inputs (the
    # usual case between re-plans) leave them as they are
    last = _INPUTS.get(core)
    if (
        last is not None
        and last[0] is planned
        and last[1] is t
        and np.array_equal(last[2], core.alive)
    ):
        return
    _INPUTS[core] = (planned, t, core.alive.copy())
    core.masks = masks(
        core.config.policy,
        fits=t.fits,
        fidelity=t.fidelity,
        price=t.price,
        alive=core.alive,
        floor=t.floor,
        margin=core.config.fidelity_margin,
        planned=planned,
    )
    pref = core.masks.preferred & core.alive[None, :]
    core.mask_group = row_groups(pref)
    allowed = core.masks.allowed
    core.min_price = np.where(allowed, core.price, np.inf).min(axis=1, initial=np.inf)
    core.min_price[~np.isfinite(core.min_price)] = 0.0


def row_groups(rows: np.ndarray) -> np.ndarray:
    """``np.unique(rows, axis=0, return_inverse=True)[1]`` for a boolean (C, D) array, the
    same labels (rows in lexicographic order), without ``unique``'s row sort on void
    views: each row read as a binary number, its first column the most significant bit."""
    n_c, n_d = rows.shape
    if n_d > 62 or n_c == 0:
        return np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)
    weights = np.left_shift(np.int64(1), np.arange(n_d - 1, -1, -1, dtype=np.int64))
    codes = rows.astype(np.int64) @ weights
    return np.unique(codes, return_inverse=True)[1].reshape(-1)


def refresh(core: CoreState, d: int | None = None) -> None:
    """Recompute per-task times and job sizes from the learner (after it changed), for
    one device or all."""
    lr = core.learner
    cols = slice(None) if d is None else slice(d, d + 1)
    # plan with a pessimistic wait: a device whose queue we know badly gets less work
    wait = lr.wait_quantile(core.config.risk_z)[cols]
    speed, overhead = lr.speed()[cols], lr.overhead()[cols]
    per_task = speed[None, :] * core.tables.raw_s[:, cols]  # (C, D')
    w = core.tables.weight / max(float(core.tables.weight.sum()), EPS)
    mean_task = np.maximum((w[:, None] * per_task).sum(axis=0), 1e-6)
    conc = core.conc[cols]
    # a job long enough that the other concurrent jobs cover a pessimistic queue wait
    # (so the device never runs dry between our jobs) and its overhead is amortised
    wait_hi = lr.wait_quantile(1.0)[cols]
    live = core.live[cols]
    wait = np.where(live, SESSION_WAIT_S, wait)
    # in a session the next job does not queue: nothing to cover but the overhead
    wait_hi = np.where(core.session_ttl[cols] > 0, 0.0, wait_hi)
    target = np.maximum(
        np.maximum(10.0 * overhead, 1.5 * wait_hi / np.maximum(conc - 1, 1)),
        core.config.min_job_s,
    )
    per_job = np.clip(np.ceil(target / mean_task), 1, core.max_batch[cols])
    if d is None:
        core.wait = wait.copy()
        core.job_s = np.empty_like(wait)
        core.overhead = overhead.copy()
        core.x = np.empty_like(per_task)
        core.horizon = np.empty_like(wait)
    else:
        core.wait[cols] = wait
        core.overhead[cols] = overhead
    core.job_s[cols] = np.maximum(per_job * mean_task, 1e-6)  # work per job, seconds
    # a device that queues every job (no session) runs at most ``conc`` jobs per mean
    # wait plus run: with heavy-tailed waits and small jobs (one circuit a task on ion and
    # neutral-atom devices) that, not its speed, bounds what it gets through
    sigma = np.minimum(lr.wait_sigma()[cols], 2.0)
    wait_mean = (lr.wait()[cols] + 1.0) * np.exp(0.5 * sigma**2) - 1.0
    job_run = overhead + per_job * mean_task
    queued = np.where(core.session_ttl[cols] > 0, 0.0, (wait_mean + job_run) / (conc * per_job))
    extra = np.maximum(queued - job_run / per_job, 0.0)
    core.x[:, cols] = per_task + (overhead / per_job + extra)[None, :] + EPS  # amortised
    # commit up to a full pipeline of the largest jobs beyond the wait: work that will not
    # start before that stays unplaced, to be placed later with fresher estimates
    core.horizon[cols] = wait + conc * np.maximum(
        core.job_s[cols], core.max_batch[cols] * mean_task
    )
    for dd in range(len(core.dev)) if d is None else (d,):
        core.lane(dd, None)
        # the work queued here is never below its worth in the new per-task times: kept
        # in the old ones, a device learned slower looked empty (form_job took every job
        # down to its floor, one circuit a job behind a 7 h queue: family seed 6088,
        # most_accurate). (Lowered to it on a device learned faster, jobs there came out
        # smaller: the reference fleet lost 3 %, so the higher figure is kept.)
        local = core.dev[dd].local
        if local:
            cls = np.concatenate([c for _, c in local]) if len(local) > 1 else local[0][1]
            core.local_work[dd] = max(float(core.local_work[dd]), float(core.x[cls, dd].sum()))
    if d is None:
        refresh_masks(core)
    elif core.config.policy == "balanced":
        # the fidelity bar depends on learned times: refresh it every few completions
        core.stale += 1
        if core.stale >= max(1, len(core.dev) // 4):
            refresh_masks(core)


def update_sessions(core: CoreState, now: float, d: int | None = None) -> None:
    """Which session devices have a live session: one of our jobs there started (or was
    sent into the session), or the last one ended less than the session's TTL ago."""
    for k in range(len(core.dev)) if d is None else (d,):
        ttl = core.session_ttl[k]
        if ttl <= 0:
            continue
        live = now <= core.last_end[k] + ttl or any(
            j.started or j.in_session for j in core.dev[k].jobs.values()
        )
        if live != core.live[k]:
            core.live[k] = live
            core.slots[k] = min(int(core.conc[k]), SESSION_INFLIGHT if live else 1)
            refresh(core, k)
