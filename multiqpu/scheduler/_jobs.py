"""Jobs of the core: what a device with a free slot submits of the work placed on it.

A device with a free slot submits a job of about ``job_s`` seconds of its queued work, one
shots value per job (:func:`form_job`), while the jobs it holds stay within the fleet's
remaining plan (:func:`lane_cap`). :func:`batches` forms them all for one pump.

Functions of the core's state (:class:`~multiqpu.scheduler._state.CoreState`); see
:mod:`multiqpu.scheduler._core` for the whole.
"""

from __future__ import annotations

import numpy as np

from multiqpu.scheduler._placement import PROBE_FRACTION, plan_level
from multiqpu.scheduler._records import Submission
from multiqpu.scheduler._state import SESSION_OPENER, SESSION_SPLIT, CoreState
from multiqpu.scheduler._waterfill import fluid_level

__all__ = [
    "JOB_FRACTION",
    "JOB_OVERHEADS",
    "LANE_FRACTION",
    "batches",
    "fleet_end",
    "form_job",
    "lane_cap",
    "plan_end",
]

# a job holds at most this share of the remaining plan (by the estimates): a device that
# turns out slower than expected holds up little, and slow devices get small jobs
JOB_FRACTION = 0.25
# ... but never less than this many times its device's per-job overhead of work (when there
# is that much): overhead then takes at most a tenth of the device's busy time (family
# benchmark, seeds 0-99: makespan / bound p50 1.68 -> 1.55 for `fastest`, every policy
# and key better; docs/scheduler.md, round 5)
JOB_OVERHEADS = 10.0
# the work all of a device's job slots together hold (sent, not done) is capped at this
# share of the fleet's remaining plan (``fleet_end``): a device with 10-50 slots of one
# circuit a job (ion traps, neutral atoms) otherwise commits hours of work that faster
# devices could take (round 7; a quarter, like one job, held superconducting devices to a
# job or two at a time, each paying its own queue wait: seeds 0-29 p50 1.49 -> 1.62)
LANE_FRACTION = 1.0


def plan_end(core: CoreState, now: float) -> float:
    """When the work not yet submitted (queued on devices and unplaced) would be done if it
    were spread over the live devices as a fluid, each from when it is free."""
    start = np.maximum(core.lane_end, now + core.wait)
    n = float(core.local_count.sum() + core.unplaced_by_class.sum())
    ok = core.alive & np.isfinite(start)
    if n <= 0 or not ok.any():
        return now
    _, xbar = plan_level(core, start)
    # devices that take none of the unplaced work: their own queue's mean task time
    own = core.local_work / np.maximum(core.local_count, 1)
    xbar = np.where(xbar > 0, xbar, own)
    ok &= xbar > 0
    if not ok.any():
        return now
    return fluid_level(start[ok], xbar[ok], np.full(int(ok.sum()), n), n)


def batches(core: CoreState, now: float) -> list[Submission]:
    subs: list[Submission] = []
    ready = np.flatnonzero(core.alive & (core.local_count > 0) & (core.inflight < core.slots))
    if len(ready):
        core.plan_end = max(plan_end(core, now), now)
    fleet = fleet_end(core, now) if len(ready) else now
    for d in ready.tolist():
        cap = lane_cap(core, d, now, fleet)
        committed = sum(j.exec_s for j in core.dev[d].jobs.values())
        while core.local_count[d] > 0 and core.inflight[d] < core.slots[d]:
            if core.inflight[d] > 0 and committed >= cap:
                break  # the rest stays queued here, movable, until a lane frees
            sub = form_job(core, d, now)
            committed += core.jobs[sub.job_id].exec_s
            subs.append(sub)
        core.lane(d, now)
    return subs


def fleet_end(core: CoreState, now: float) -> float:
    """When the work not yet submitted (unplaced, or queued on a device) would be done as a
    fluid over every live device the policy prefers for it, each from when it is free (a
    device's own jobs sent count: their lane delays it). Unlike :func:`plan_end`, devices
    holding no queued work take part."""
    u = core.unplaced_by_class.astype(float)
    n_c = core.tables.n_classes
    for dev in core.dev:
        for _, cls in dev.local:
            u += np.bincount(cls, minlength=n_c)
    total = float(u.sum())
    start = np.maximum(core.lane_end, now + core.wait)
    pref = core.masks.preferred & core.alive[None, :]
    count = u @ pref
    ok = (count > 0) & np.isfinite(start)
    if total <= 0 or not ok.any():
        return now
    xbar = (u @ (pref * core.x)) / np.maximum(count, 1.0)
    return fluid_level(start[ok], xbar[ok], count[ok], total)


def lane_cap(core: CoreState, d: int, now: float, fleet: float) -> float:
    """The work (seconds of execution) device ``d`` may hold in jobs sent and not done, over
    all its job slots together: ``LANE_FRACTION`` of the remaining plan, or of what the
    device alone must run when no other device may take its queued work (the rule that
    sizes one job, applied to its lanes together); at least one job's floor."""
    horizon = max(fleet - now, 0.0)
    local = core.dev[d].local
    if local:
        cls = np.concatenate([c for _, c in local]) if len(local) > 1 else local[0][1]
        others = core.masks.preferred[np.unique(cls)] & core.alive[None, :]
        others[:, d] = False
        if not others.any():  # pinned here: what it still needs, queue wait included
            own = float(max(core.lane_end[d], now + core.wait[d]) + core.local_work[d])
            horizon = max(horizon, own - now)
    floor = max(JOB_OVERHEADS * float(core.overhead[d]), core.config.min_job_s)
    session = core.session_ttl[d] > 0 and core.live[d]
    if core.config.explore and core.learner.jobs[d] == 0 and not session:
        # its speed is not known yet: the probes hold no more than a probe may (but a live
        # session is fed at once: its next job skips the queue, and an idle one closes)
        return PROBE_FRACTION * horizon
    return max(LANE_FRACTION * horizon, floor)


def form_job(core: CoreState, d: int, now: float) -> Submission:
    local = core.dev[d].local
    group = int(core.tables.group[int(local[0][1][0])])
    # split what is queued here over the free slots: submitted now, it all waits in the
    # vendor's queue at once instead of paying one wait per job in turn, and no single
    # unlucky wait holds all of it
    free = max(int(core.slots[d] - core.inflight[d]), 1)
    share = core.local_work[d] / free
    if core.session_ttl[d] > 0:
        # what stays here is not bound yet (others may still steal it): jobs of
        # 1/SESSION_SPLIT of it, so they shrink towards the end
        share = core.local_work[d] / SESSION_SPLIT
    # no job longer than a share of the remaining plan, or of what this device still needs
    # (its queue wait included) when that is longer: work the policy pins here (or that
    # waits behind a long queue) gains nothing from small jobs but one queue wait each;
    # and none shorter than JOB_OVERHEADS x its overhead or the user's min_job_s (at least
    # one circuit is taken)
    own = float(max(core.lane_end[d], now + core.wait[d]) + core.local_work[d])
    horizon = max(core.plan_end, own) - now
    floor = max(JOB_OVERHEADS * float(core.overhead[d]), core.config.min_job_s)
    target = max(min(share, JOB_FRACTION * horizon), floor)
    limit = core.batch_limit(d)  # one circuit (a probe) while its speed is unknown
    if core.session_ttl[d] > 0 and not core.live[d] and core.inflight[d] == 0:
        limit = SESSION_OPENER  # the session's first job: it may wait long in the queue
    x = core.x[:, d]
    taken_idx: list[np.ndarray] = []
    taken_cls: list[np.ndarray] = []
    count, work = 0, 0.0
    keep: list[tuple[np.ndarray, np.ndarray]] = []
    # count == 0: always take something (target can be 0: no job overhead, and
    # local_work rounded down to 0 by earlier subtractions)
    while local and count < limit and (work < target or count == 0):
        seg_idx, seg_cls = local.popleft()
        if int(core.tables.group[int(seg_cls[0])]) != group:
            keep.append((seg_idx, seg_cls))
            continue
        seg_x = x[seg_cls]
        cum = np.cumsum(seg_x)
        n = int(np.searchsorted(cum, target - work, side="left")) + 1
        n = min(n, len(seg_idx), limit - count)
        taken_idx.append(seg_idx[:n])
        taken_cls.append(seg_cls[:n])
        count += n
        work += float(cum[n - 1])
        if n < len(seg_idx):
            local.appendleft((seg_idx[n:], seg_cls[n:]))
    for seg in reversed(keep):
        local.appendleft(seg)
    idx = np.concatenate(taken_idx) if len(taken_idx) > 1 else taken_idx[0]
    cls = np.concatenate(taken_cls) if len(taken_cls) > 1 else taken_cls[0]
    core.local_count[d] -= count
    core.local_work[d] = max(core.local_work[d] - work, 0.0)
    if core.local_count[d] == 0:
        core.local_work[d] = 0.0
    return core.register(d, idx, cls, group, now)
