"""Overrun hedging: an open job that runs far past its estimate is copied, once, to the
device that would now finish its circuits soonest, at any point of the run (not only in the
tail, see :func:`multiqpu.scheduler._hedging.hedges`). The first result of each circuit wins
and the other copy is cancelled (the hedge machinery of ``_outcomes.on_done``).

When a job overruns: our jobs on a device run one after the other (the lane model of
``CoreState.lane``). Judged pessimistically, the first of our open jobs on a device is
expected to start by ``max(when our previous job there ended, submitted + wait quantile at
OVERRUN_Z sigmas)`` and to run at most ``OVERRUN_EXEC`` times its estimated execution time.
Past that end it overruns, and so do the jobs queued behind it (the device holds them all:
an outage, a stalled queue, a device far slower than its estimate). The wait quantile uses
the spread the learner has measured on that device's queue: on a heavy-tailed queue (log
jitter 1.5) the limit is about 20x the median wait, so an on-time job there overruns about
2 % of the time (the normal tail beyond two sigmas).

The copy goes to the device, other than the job's and not holding an overrun job itself,
with a free job slot, that the policy prefers for every circuit of the job (``balanced``: the
plan's devices, and the extra loss must fit the fidelity budget left; a ``fidelity_floor``
or ``most_accurate`` holds), within ``budget_usd``, and that is expected to finish it
earliest (judged with a one-sigma wait), provided that beats the straggler's own expected
end (``_hedging.straggler_end``) by at least ``OVERRUN_GAIN`` of the time left.
Copies share ``max_hedge_fraction`` with the tail's hedges. ``CoreConfig.overrun_hedging``
(and ``hedging``) turn it off.

Functions of the core's state; :class:`~multiqpu.scheduler._core.Core` calls :func:`hedge_overruns`
from ``pump`` (before new jobs take the free slots) and :func:`next_overrun` from
``next_wakeup``.
"""

from __future__ import annotations

import numpy as np

from multiqpu.scheduler._hedging import straggler_end
from multiqpu.scheduler._records import JobRecord, Submission
from multiqpu.scheduler._state import CoreState

__all__ = ["OVERRUN_EXEC", "OVERRUN_GAIN", "OVERRUN_Z", "hedge_overruns", "next_overrun"]

OVERRUN_Z = 2.0  # sigmas of the device's wait past which a job overruns
OVERRUN_EXEC = 2.0  # ... with at most this many times its estimated execution time
OVERRUN_GAIN = 0.2  # a copy must save at least this share of the straggler's time left


def _eligible(core: CoreState, job: JobRecord) -> bool:
    """A job that may still get an overrun hedge: an original (not a copy), never hedged or
    copied, not a waiting session's first job (``_hedging`` rescues those)."""
    return (
        job.origin is None
        and job.rounds == 0
        and job.done is None
        and not job.hedges
        and not core.waiting_session(job.device)
    )


def lane_overrun(core: CoreState) -> np.ndarray:
    """Per device, when its first open job overruns (inf: no open job)."""
    wq = core.wait_quantile(OVERRUN_Z)
    out = np.full(len(core.dev), np.inf)
    for d, queue in enumerate(core.dev):
        if queue.jobs:
            head = next(iter(queue.jobs.values()))
            t = max(float(core.last_end[d]), head.submitted + float(wq[d]))
            out[d] = t + OVERRUN_EXEC * head.exec_s
    return out


def overrun_times(core: CoreState) -> dict[int, float]:
    """When each eligible open job overruns (see the module docstring): the jobs behind
    the first open job on a device wait for it; once it overruns, the device holds them all.
    (Judged on the current estimates: a wait learned longer makes its jobs overrun later.)"""
    lanes = lane_overrun(core)
    out: dict[int, float] = {}
    for d, queue in enumerate(core.dev):
        for job in queue.jobs.values():
            job.overrun_at = float(lanes[d])
            if _eligible(core, job):
                out[job.job_id] = job.overrun_at
    return out


def next_overrun(core: CoreState, now: float) -> float | None:
    """When to look again: the earliest time after ``now`` at which an open job will
    overrun, or, for a job that overran but found no refuge yet, after another tenth of the
    time it has overrun by (its expected end moves as it ages). Jobs no other live device
    is preferred for are not watched: no copy of them could go anywhere until the masks
    change, and the core asks again then. None: no job to watch."""
    if not core.config.hedging or not core.config.overrun_hedging:
        return None
    alive = _bits(core.alive)
    later = []
    for k, t in overrun_times(core).items():
        job = core.jobs[k]
        if not _everywhere(core, job)[1] & alive & ~(1 << job.device):
            continue  # no device could take a copy until the masks change (a new look then)
        later.append(t if t > now else now + max(0.1 * (now - t), 1e-3))
    return min(later) if later else None


def hedge_overruns(core: CoreState, now: float) -> list[Submission]:
    """Copy the jobs that overran their estimate by ``now`` (see the module docstring)."""
    if not core.config.hedging or not core.config.overrun_hedging:
        return []
    late = [core.jobs[k] for k, t in overrun_times(core).items() if t <= now]
    if not late:
        return []
    budget = core.hedge_budget()
    subs: list[Submission] = []
    # no refuge: a device holding an overrun job
    stalled = np.array([any(j.overrun_at <= now for j in q.jobs.values()) for q in core.dev])
    free = _bits(core.alive & (core.inflight < core.slots) & ~stalled)
    late.sort(key=lambda j: j.submitted)  # the longest overdue first
    for job in late:
        if len(job.idx) > budget:
            continue
        copy = _copy(core, job, now, stalled, free)
        if copy:
            budget -= len(job.idx)
            subs.extend(copy)
            free = _bits(core.alive & (core.inflight < core.slots) & ~stalled)
    return subs


def _bits(mask: np.ndarray) -> int:
    return sum(1 << int(d) for d in np.flatnonzero(mask))


def _everywhere(core: CoreState, job: JobRecord) -> tuple[np.ndarray, int]:
    """The devices the policy prefers for every circuit of ``job``, as a mask and a bit set
    (kept on the job until the masks change)."""
    if job.everywhere is None or job.everywhere[0] is not core.masks:
        row = core.masks.preferred[job.unique_classes()].all(axis=0)
        job.everywhere = (core.masks, row, _bits(row))
    return job.everywhere[1], job.everywhere[2]


def _copy(
    core: CoreState, job: JobRecord, now: float, stalled: np.ndarray, free: int
) -> list[Submission]:
    """``free``: the devices with a free slot that hold no overrun job, as a bit set."""
    row, bits = _everywhere(core, job)
    if not free & bits & ~(1 << job.device):
        return []  # no refuge (most calls end here, so cheaply)
    ok = core.alive & (core.inflight < core.slots) & ~stalled & row
    ok[job.device] = False
    devs = np.flatnonzero(ok)
    n = len(job.idx)
    # the jobs a copy needs on each device (its size limit), within its free slots
    parts = -(-n // np.array([core.batch_limit(int(d)) for d in devs], dtype=np.int64))
    room = parts <= (core.slots - core.inflight)[devs]
    devs, parts = devs[room], parts[room]
    if len(devs) == 0:
        return []
    for d in devs.tolist():
        core.lane(d, now)
    speed = core.learner.speed()
    start = np.maximum(core.lane_end[devs], now + core.wait_quantile(1.0)[devs])
    run = parts * core.overhead[devs] + speed[devs] * core.tables.raw_s[job.cls][:, devs].sum(0)
    finish = start + run
    end = straggler_end(core, job, now)
    good = finish < end - OVERRUN_GAIN * (end - now)
    extra = np.zeros(len(devs))
    if core.quota is not None:  # balanced: what the copy loses if it wins, within the budget
        worse = core.loss[job.cls][:, devs] - core.loss[job.cls, job.device][:, None]
        extra = np.maximum(worse, 0.0).sum(axis=0)
        good &= extra <= core.fidelity_free() + 1e-12
    cost = np.zeros(len(devs))
    if core.config.budget_usd is not None:  # both copies may run to the end (and be paid)
        cost = core.price[job.cls][:, devs].sum(axis=0)
        reserve = float(np.dot(core.unplaced_by_class, core.min_price))
        good &= core.spent + cost + reserve <= core.config.budget_usd
    if not good.any():
        return []
    k = int(np.argmin(np.where(good, finish, np.inf)))
    d = int(devs[k])
    core.fidelity_spent += float(extra[k])
    core.spent += float(cost[k])
    job.rounds += 1
    core.stats.hedged_jobs += 1
    core.stats.hedged_circuits += n
    core.stats.overrun_hedges += 1
    subs = []
    step = core.batch_limit(d)
    worse_d = np.maximum(core.loss[job.cls, d] - core.loss[job.cls, job.device], 0.0)
    for pos in range(0, n, step):
        part = np.arange(pos, min(pos + step, n))
        subs.append(
            core.register(d, job.idx[part], job.cls[part], job.group, now, origin=job, offset=part)
        )
        hedge = core.jobs[subs[-1].job_id]
        hedge.hedge_n = len(part)
        if core.quota is not None:  # refunded if this part never delivers
            hedge.charge = float(worse_d[part].sum())
        core.stats.hedges += 1
    core.lane(d, now)
    return subs
