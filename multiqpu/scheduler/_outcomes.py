"""Outcomes in the placement core: what a finished, failed or lost job changes.

A finished job's new results are delivered once (a hedge and its straggler race: the first
result of each circuit wins, the other copies are cancelled); its times teach the learner. A
failed job's circuits go back to the front unless a live copy still covers them; a device
lost for good, or failing ``max_failures`` times in a row (and more often in a row than its
own failure rate so far makes likely: :func:`improbable_run`), is dropped and its work moved;
one dropped for failing (not lost) is benched: tried again after :data:`BENCH_S`, doubled at
each relapse (:func:`readmit`).

Functions of the core's state (:class:`~multiqpu.scheduler._state.CoreState`); see
:mod:`multiqpu.scheduler._core` for the whole.
"""

from __future__ import annotations

import numpy as np

from multiqpu.errors import DeviceUnavailableError
from multiqpu.scheduler._estimates import refresh, refresh_masks, update_sessions
from multiqpu.scheduler._records import Delivery, JobRecord
from multiqpu.scheduler._state import CoreState

__all__ = [
    "abandon",
    "drop",
    "fail",
    "improbable_run",
    "last_resort",
    "on_done",
    "on_failed",
    "promote",
    "readmit",
    "reopen",
    "requeue_uncovered",
]


def abandon(core: CoreState, job: JobRecord, now: float) -> None:
    """Close a job that lost a race; if nothing of ours ran before it on its device, the
    time it spent waiting is a (censored) observation of that device's queue."""
    first = next(iter(core.dev[job.device].jobs), None) == job.job_id
    core.close(job)
    refund_charge(core, job)
    if job.started:  # it ran: the lane moves on now
        core.lane_free[job.device] = max(core.lane_free[job.device], now)
    else:
        core.refund_hedge(job)  # a copy cancelled in the queue duplicated nothing
    # right-censored: it says the wait is at least this long, nothing if that is less
    # than what we already expect
    if first and not job.in_session and now - job.submitted > core.learner.wait()[job.device]:
        core.learner.observe(
            job.device,
            queue_s=now - job.submitted,
            execution_s=None,
            predicted_s=job.raw_s,
            prior_wait_s=job.prior_wait,
        )
        refresh(core, job.device)


def refund_charge(core: CoreState, job: JobRecord) -> None:
    """A copy closed without delivering: the fidelity it was charged (as if it won) goes
    back to the budget."""
    if job.origin is not None and job.charge:
        core.fidelity_spent -= job.charge
        job.charge = 0.0


def on_done(
    core: CoreState, job_id: int, now: float, *, queue_s: float | None, execution_s: float | None
) -> Delivery | None:
    """A job finished. Returns what to deliver from it (None: nothing, its tasks were
    already delivered by another copy; drop the result)."""
    job = core.jobs.get(job_id)
    if job is None:
        return None
    core.close(job)
    d = job.device
    # A job that started the moment our previous job there finished waited behind our
    # own work, not (only) the vendor's queue: its wait says nothing about the queue.
    blocked = False
    if execution_s is not None:
        start = now - execution_s
        blocked = start <= core.last_end[d] + 1e-3 + 0.01 * execution_s
    core.last_end[d] = max(core.last_end[d], now)
    core.lane_free[d] = max(core.lane_free[d], now)
    core.learner.observe(
        d,
        queue_s=None if blocked or job.in_session else queue_s,
        execution_s=execution_s,
        predicted_s=job.raw_s,
        prior_wait_s=job.prior_wait,
    )
    core.consecutive_failures[d] = 0
    cancel: list[int] = []
    positions = np.arange(len(job.idx))
    origin = core.origin(job)
    if origin is not None and job.offset is not None and origin.done is not None:
        # a hedge came back before the straggler: its circuits not delivered yet (by an
        # earlier copy) are done; the straggler and any other copies go once all are
        positions = np.flatnonzero(~origin.done[job.offset])
        origin.done[job.offset] = True
        origin.hedges.remove(job.job_id)
        core.stats.hedges_won += 1
        if origin.done.all():
            if origin.job_id in core.jobs:
                abandon(core, origin, now)
                cancel.append(origin.job_id)
            core.ghosts.pop(origin.job_id, None)
            for h in origin.hedges:
                hedge = core.jobs.get(h)
                if hedge is not None:
                    abandon(core, hedge, now)
                    cancel.append(h)
    elif job.done is not None:
        # a straggler came back: deliver what its hedges did not, cancel the hedges
        positions = np.flatnonzero(~job.done)
        for h in job.hedges:
            hedge = core.jobs.get(h)
            if hedge is not None:
                abandon(core, hedge, now)
                cancel.append(h)
    idx, cls = job.idx[positions], job.cls[positions]
    core.remaining_by_class -= np.bincount(cls, minlength=core.tables.n_classes)
    core.stats.record(d, idx, cls, core.tables, now, queue_s, execution_s)
    if core.session_ttl[d] > 0:
        update_sessions(core, now, d)
    refresh(core, d)
    return Delivery(job.job_id, d, idx, cls, positions, tuple(cancel))


def fail(core: CoreState, job: JobRecord) -> int:
    """Close a failed job; requeue its circuits that no live copy still covers. Returns
    how many were requeued."""
    core.close(job)
    origin = core.origin(job)
    if origin is not None:  # a copy failed: its circuits may be copied again
        core.refund_hedge(job)
        refund_charge(core, job)
        origin.hedges.remove(job.job_id)
        if origin.job_id in core.jobs:
            return 0  # the straggler still covers its circuits
        return requeue_uncovered(core, origin)
    if job.done is None:
        core.requeue(job.idx, job.cls, job.device)
        return len(job.idx)
    # a straggler with copies failed: the copies carry on; keep its record so that no
    # circuit is delivered twice
    if promote(core, job):
        return 0
    core.ghosts[job.job_id] = job
    return requeue_uncovered(core, job)


def promote(core: CoreState, origin: JobRecord, copy_id: int | None = None) -> bool:
    """``origin`` is closed; if one open whole copy of it (``copy_id``, or its only open
    copy) covers every circuit and nothing was delivered yet, that copy becomes the job (no
    longer a copy: hedging may copy it in its turn). Returns whether it did."""
    live = [h for h in origin.hedges if h in core.jobs]
    if copy_id is not None:
        live = [h for h in live if h == copy_id] if len(live) <= 1 else []
    if len(live) != 1 or (origin.done is not None and origin.done.any()):
        return False
    copy = core.jobs[live[0]]
    if copy.offset is None or len(copy.offset) != len(origin.idx):
        return False
    origin.hedges.clear()
    core.ghosts.pop(origin.job_id, None)
    copy.origin, copy.offset, copy.redundant = None, None, False
    return True


def requeue_uncovered(core: CoreState, origin: JobRecord) -> int:
    assert origin.done is not None
    covered = origin.done.copy()
    for h in origin.hedges:
        hedge = core.jobs.get(h)
        if hedge is not None and hedge.offset is not None:
            covered[hedge.offset] = True
    lost = np.flatnonzero(~covered)
    if len(lost):
        core.requeue(origin.idx[lost], origin.cls[lost], origin.device)
        origin.done[lost] = True
    if origin.done.all() and not any(h in core.jobs for h in origin.hedges):
        core.ghosts.pop(origin.job_id, None)
    return len(lost)


def on_failed(core: CoreState, job_id: int, now: float, *, permanent: bool) -> tuple[int, ...]:
    """A job failed (``permanent``: the device is gone). Its tasks go back to the front
    unless another copy still runs them. Returns job ids the driver must cancel."""
    job = core.jobs.get(job_id)
    if job is None:
        return ()
    d = job.device
    core.lane_free[d] = max(core.lane_free[d], now)
    core.stats.failures[d] += 1
    core.consecutive_failures[d] += 1
    core.stats.retries += fail(core, job)
    cancel: tuple[int, ...] = ()
    if permanent:
        cancel = drop(core, d, now)
    elif core.consecutive_failures[d] >= core.config.max_failures and improbable_run(core, d):
        if last_resort(core, d):
            # failing, but the only live device some remaining circuit may use: keep trying
            # it (transient failures; a device really gone fails permanently)
            core.consecutive_failures[d] = 0
        else:
            cancel = drop(core, d, now)
            # benched, not gone: tried again after a pause (sooner if a loss leaves
            # nothing else)
            core.soft_dropped.add(d)
            core.benched_until[d] = now + BENCH_S * 2.0 ** int(core.benched[d])
            core.benched[d] += 1
    core.lane(d, now)
    return cancel


# a run of failures in a row on a device that has delivered before is taken as a broken
# device when a device failing as often as this one did before the run (with a prior of one
# failure in ten jobs) would fail that many times in a row with at most this probability: a
# device that fails 18 % of its jobs at random is kept (retries cover it) unless it fails 5
# in a row; one that never delivered is dropped after max_failures
RUN_ALPHA = 2e-4
_PRIOR_FAIL, _PRIOR_JOBS = 1.0, 10.0


#: a device dropped for failing in a row is tried again after this pause, doubled each time
#: it is dropped again: transient failures (0-20 % of jobs on real fleets) come in runs, and
#: a device left out for good may leave only slow ones (family seed 8095: balanced ran 512
#: days on two neutral-atom devices while the dropped superconducting one was fine)
BENCH_S = 600.0


def readmit(core: CoreState, now: float) -> None:
    """Bring back the benched devices whose pause is over (their failure tallies start
    again; :func:`improbable_run` still remembers their failures)."""
    back = [d for d, until in core.benched_until.items() if until <= now]
    for d in back:
        del core.benched_until[d]
        if d in core.soft_dropped:
            core.soft_dropped.discard(d)
            core.alive[d] = True
            core.consecutive_failures[d] = 0
            if d in core.stats.dropped:  # (the report lists the devices left out at the end)
                core.stats.dropped.remove(d)
    if back:
        refresh_masks(core, force=True)


def improbable_run(core: CoreState, d: int) -> bool:
    """The failures in a row on device ``d`` are unlikely for its failure rate so far."""
    if core.stats.jobs[d] == 0:
        return True  # it never delivered: its failures are all it has shown
    run = int(core.consecutive_failures[d])
    before_fail = float(core.stats.failures[d]) - run
    before_jobs = float(core.stats.jobs[d] + core.stats.failures[d]) - run
    rate = (before_fail + _PRIOR_FAIL) / (before_jobs + _PRIOR_JOBS)
    return bool(rate**run < RUN_ALPHA)


def last_resort(core: CoreState, d: int) -> bool:
    """Device ``d`` is the only live device allowed for some circuit still to deliver."""
    allowed = core.masks.allowed & core.alive[None, :]
    others = allowed.sum(axis=1) - allowed[:, d]
    return bool(((core.remaining_by_class > 0) & allowed[:, d] & (others == 0)).any())


def drop(core: CoreState, d: int, now: float) -> tuple[int, ...]:
    """Stop using device ``d``: its queued work moves, its open jobs are cancelled."""
    if not core.alive[d]:
        return ()
    core.alive[d] = False
    core.stats.dropped.append(d)
    moved = 0
    while core.dev[d].local:
        idx, cls = core.dev[d].local.pop()
        core.requeue(idx, cls, d)
        moved += len(idx)
    core.local_count[d] = 0
    core.local_work[d] = 0.0
    cancel = []
    for job in list(core.dev[d].jobs.values()):
        cancel.append(job.job_id)
        moved += fail(core, job)
    core.stats.failovers += moved
    core.soft_dropped.discard(d)
    refresh_masks(core, force=True)
    bad = core.unplaceable_classes()
    if len(bad) and core.soft_dropped:
        # devices dropped for failing in a row (not lost) come back rather than fail the run
        for k in sorted(core.soft_dropped):
            core.alive[k] = True
            core.consecutive_failures[k] = 0
            core.benched_until.pop(k, None)
        core.soft_dropped.clear()
        refresh_masks(core, force=True)
        bad = core.unplaceable_classes()
    if len(bad):
        raise DeviceUnavailableError(
            f"no device left that can run {int(core.remaining_by_class[bad].sum())} "
            f"remaining circuit(s) after losing device #{d}"
        )
    return tuple(cancel)


def reopen(core: CoreState, idx: np.ndarray, cls: np.ndarray, d: int) -> None:
    """Tasks delivered from device ``d`` are to be run again (their results were withdrawn:
    ``d`` failed its canary checks); they go back to the front."""
    core.stats.delivered -= len(idx)
    core.remaining_by_class += np.bincount(cls, minlength=core.tables.n_classes)
    core.requeue(idx, cls, d)
