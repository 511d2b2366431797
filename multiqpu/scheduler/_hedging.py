"""Hedging, queued copies and session rescue: the part of the placement core that copies or
moves work already sent to a device (see :mod:`multiqpu.scheduler._core` for the whole).

* **Hedging**: in the tail, a job that is overdue, or expected much later than an idle device
  could manage, is split over idle devices; the first result of each circuit wins.
* **Queued copies** (``redundancy``): an idle device holds a copy of a job still waiting in
  another queue; the first copy to start running wins, the others are cancelled while queued
  (except a device's probe: it stays in its queue so that the queue gets measured, and the
  first result wins).
* **Late sessions**: the work of a session device whose first job is late may move anywhere
  above the fidelity floor once the rest of the fleet has nothing left.

Functions of the core's state (:class:`~multiqpu.scheduler._state.CoreState`);
:class:`~multiqpu.scheduler._core.Core` calls them from ``pump`` and ``on_started``, and
``_placement``'s stealing asks :func:`stuck` and :func:`rescue_mask`.
"""

from __future__ import annotations

import numpy as np

from multiqpu.scheduler._estimates import refresh_masks, update_sessions
from multiqpu.scheduler._learning import SPEED_SIGMA
from multiqpu.scheduler._outcomes import abandon, promote
from multiqpu.scheduler._records import JobRecord, Submission
from multiqpu.scheduler._state import EPS, CoreState
from multiqpu.scheduler._waterfill import capped_waterfill

__all__ = [
    "COPY_Z",
    "MAX_HEDGE_ROUNDS",
    "TAIL_HEDGE_CIRCUITS",
    "copies",
    "drop_copy",
    "hedges",
    "late",
    "on_started",
    "rescue_mask",
    "straggler_end",
    "stuck",
]

TAIL_HEDGE_CIRCUITS = 10  # copied per look in the tail once the budget is spent
# devices holding open copies of one straggler (copied again when a better refuge turns up;
# a queued copy counts once it runs, a queued hedge unless the refuge ends before it, see
# _open_copies; never more than twice this)
MAX_HEDGE_ROUNDS = 3
# a hedge on a device never measured is judged this many sigmas of the speed prior slow
UNKNOWN_SPEED_Z = 2.0
COPY_Z = -1.0  # queued copy: made if the holder's optimistic start (sigmas) beats the job's
MAX_COPIES = 3  # queued copies of one job, at most this many times ``redundancy``


def rescue_mask(core: CoreState) -> np.ndarray:
    """Where work may go off a late session: what the policy allows, and for
    ``balanced`` any device above the fidelity floor (past the fidelity budget)."""
    if core.config.policy != "balanced":
        return core.masks.allowed
    t = core.tables
    return core.masks.allowed | (t.fits & core.alive[None, :] & (t.fidelity >= t.floor[:, None]))


def stuck(core: CoreState, d: int, now: float) -> bool:
    """A waiting session whose first job is late."""
    return core.waiting_session(d) and any(late(core, j, now) for j in core.dev[d].jobs.values())


def late(core: CoreState, job: JobRecord, now: float) -> bool:
    """Past the time a pessimistic estimate gave it to finish when it was submitted."""
    return now > job.deadline


def straggler_end(core: CoreState, job: JobRecord, now: float) -> float:
    nominal = job.expected_end
    if now <= job.submitted + core.wait[job.device] + job.exec_s:
        return max(nominal, now)
    # overdue: the longer a job has been late, the later it is expected (heavy tails)
    return now + max(job.exec_s, 0.5 * (now - job.submitted))


def _speed_hi(core: CoreState, speed: np.ndarray, devs: np.ndarray) -> np.ndarray:
    """The speed a refuge is judged by: the learned one, or for a device none of our jobs
    finished on yet the prior's ``UNKNOWN_SPEED_Z`` sigmas on the slow side."""
    unknown = core.learner.jobs[devs] == 0
    return np.where(unknown, speed[devs] * np.exp(UNKNOWN_SPEED_Z * SPEED_SIGMA), speed[devs])


def _open_copies(
    core: CoreState, job: JobRecord, *, now: float = 0.0, before: float | None = None
) -> int:
    """Refuges of ``job`` that count against MAX_HEDGE_ROUNDS: devices holding a hedge of it
    still open, or a queued copy that runs. A queued copy not started yet costs nothing and is
    cancelled when any other copy starts (family seed 9054: a probe's two queued copies
    behind 1-3 h queues and one hedge left it unhedgeable while that hedge ran 327 s on a
    slow device), and a hedge split into one-circuit jobs on one device is one refuge (family
    seed 9086 in a trial not kept, docs/scheduler.md round 8: seven on one ion trap behind a
    2.6 h queue left a 7-circuit straggler unhedgeable for 10,000 s). With ``before``: a
    hedge still in its queue counts only if it is expected to end by then (a refuge that
    ends well before every queued hedge is taken: family seed 14028, a job's three hedges
    waited in 2-60 h queues while a device with a 50 s queue stood idle)."""
    held = set()
    for h in job.hedges:
        copy = core.jobs.get(h)
        if copy is None or (copy.redundant and not copy.started):
            continue
        if before is not None and not copy.started and straggler_end(core, copy, now) > before:
            continue
        held.add(copy.device)
    return len(held)


def hedges(core: CoreState, now: float) -> list[Submission]:
    # copies cost device time (and money): at most max_hedge_fraction of the circuits (but
    # the tail's worst straggler, below)
    budget = core.hedge_budget()
    tail = not core.unplaced_by_class.any() and not core.local_count.any()
    if budget <= 0 and tail:
        # the run's tail: only open jobs are left, so the idle fleet's time costs nothing
        # else; the last stragglers may still be copied (MAX_HEDGE_ROUNDS open copies each)
        budget = TAIL_HEDGE_CIRCUITS
    if core.config.policy == "balanced":
        refresh_masks(core)  # a device that turned out slow no longer sets the bar
    if budget <= 0:
        return []
    for d in range(len(core.dev)):
        core.lane(d, now)
    # idle: a free slot, nothing queued, and a new job would not wait behind our own
    idle = (core.local_count == 0) & (core.inflight < core.slots)
    idle &= core.alive & (core.lane_end <= now + core.wait)
    hungry = np.flatnonzero(idle)
    if len(hungry) == 0:
        return []
    # stragglers, judged by when they or their copies so far are expected to finish
    ends: dict[int, float] = {}
    stragglers: dict[int, JobRecord] = {}
    # open originals, and ghosts: an original closed while its copies run (a queued copy
    # that started while a hedge of the same job was open is not promoted; family seed
    # 78: its last circuit ran 70 min on a neutral-atom device, the fleet idle, as no one
    # judged it)
    for j in (*core.jobs.values(), *core.ghosts.values()):
        # (devices holding copies still open count, not copies gone, cancelled while queued
        # or failed, nor queued copies not started yet: a job that starts late on a slow
        # device is a straggler anew; the hedge budget bounds the copies in all)
        if j.origin is not None or _open_copies(core, j) >= 2 * MAX_HEDGE_ROUNDS:
            continue
        ghost = j.job_id not in core.jobs
        if ghost and not any(h in core.jobs for h in j.hedges):
            continue  # nothing of it runs (its copies are being settled)
        end = np.inf if ghost else straggler_end(core, j, now)
        for h in j.hedges:
            if h in core.jobs:
                end = min(end, straggler_end(core, core.jobs[h], now))
        ends[j.job_id] = end
        stragglers[j.job_id] = j
    if not ends:
        return []
    candidates = sorted(stragglers.values(), key=lambda j: ends[j.job_id], reverse=True)
    subs: list[Submission] = []
    free = {int(d): int(core.slots[d] - core.inflight[d]) for d in hungry}
    speed = core.learner.speed()
    free_mask = np.zeros(len(core.dev), dtype=bool)
    for job in candidates[: 4 * len(free) + 4]:  # the worst stragglers first
        if not free:
            continue
        # (in the tail, the worst straggler that fits a refuge is copied whatever the
        # budget left: family seed 9008 in a trial, docs/scheduler.md round 11, a
        # 209-circuit job over the 177 left held the idle fleet for 14,000 s)
        if len(job.idx) > budget and not (tail and not subs):
            continue
        end = ends[job.job_id]
        free_mask[:] = False
        free_mask[list(free)] = True
        free_mask[job.device] = False
        # off a late session, any allowed device will do
        # (balanced, a late job: any device that fits, within the fidelity budget below)
        if stuck(core, job.device, now):
            mask = rescue_mask(core)
        elif core.config.policy == "balanced" and late(core, job, now):
            mask = core.masks.allowed
        else:
            mask = core.masks.preferred
        ok = mask[job.unique_classes()].all(axis=0) & free_mask
        devs = np.flatnonzero(ok)
        # over the fidelity budget only for a late job when nothing else is left to run
        # (but work held by late sessions): a queue that holds it for ever must not hold
        # the whole run
        last = core.quota is not None and (
            late(core, job, now)
            and all(
                core.local_count[k] == 0 or stuck(core, k, now)
                for k in range(len(core.dev))
                if k != job.device
            )
        )
        if core.quota is not None and not last and len(devs):
            # balanced: only devices where all of the copy may land within what is left of
            # the budget (the earliest one may be less accurate; a refuge as accurate
            # costs nothing: family seed 78, the last circuit ran 70 min on a neutral-atom
            # device, the fleet idle, as the budget was spent)
            worse = core.loss[job.cls][:, devs] - core.loss[job.cls, job.device][:, None]
            devs = devs[np.maximum(worse, 0.0).sum(axis=0) <= core.fidelity_left() + 1e-12]
        if len(devs) == 0:
            continue
        # split the straggler's circuits over the idle devices, earliest finish first
        # (judged with a pessimistic wait: a device we know badly is a poor refuge)
        wait_hi = core.wait_quantile(1.0)[devs]
        start = np.maximum(core.lane_end[devs], now + wait_hi) + core.overhead[devs]
        # (and with a pessimistic speed where none of our jobs finished yet: a neutral-atom
        # device never measured took family seed 9054's last circuit for 327 s, while
        # devices known to be fast were idle)
        per_task = _speed_hi(core, speed, devs) * core.tables.raw_s[job.cls][:, devs].mean(axis=0)
        per_task = per_task + EPS
        # (a device whose speed is unknown takes probes of one circuit only)
        room = np.array([core.batch_limit(int(d)) * free[int(d)] for d in devs], dtype=np.int64)
        n = capped_waterfill(start, per_task, len(job.idx), room)
        if n.sum() < len(job.idx):
            continue
        finish = float((start + n * per_task)[n > 0].max())
        if finish >= end - 0.2 * (end - now):
            continue
        if _open_copies(core, job, now=now, before=finish) >= MAX_HEDGE_ROUNDS:
            continue
        if core.quota is not None:
            # balanced: what the copies lose if they win must fit in the fidelity budget
            # (charged as if they do)
            worse = core.loss[job.cls][:, devs] - core.loss[job.cls, job.device][:, None]
            owner = np.repeat(np.arange(len(devs)), n)
            per_circuit = np.maximum(worse[np.arange(len(job.idx)), owner], 0.0)
            extra = float(per_circuit.sum())
            if extra > core.fidelity_left() + 1e-12 and not last:
                continue
            core.fidelity_spent += extra
        if core.config.budget_usd is not None:
            extra = float(np.mean(core.price[job.cls][:, devs]) * len(job.idx))
            reserve = float(np.dot(core.unplaced_by_class, core.min_price))
            if core.spent + extra + reserve > core.config.budget_usd:
                continue
            core.spent += extra
        core.stats.hedged_jobs += 1
        core.stats.hedged_circuits += len(job.idx)
        job.rounds += 1
        budget -= len(job.idx)
        pos = 0
        for d, k in zip(devs.tolist(), n.tolist(), strict=True):
            while k > 0:
                m = min(k, core.batch_limit(d))
                part = np.arange(pos, pos + m)
                subs.append(
                    core.register(
                        d,
                        job.idx[part],
                        job.cls[part],
                        job.group,
                        now,
                        origin=job,
                        offset=part,
                    )
                )
                hedge = core.jobs[subs[-1].job_id]
                hedge.hedge_n = m
                if core.quota is not None:  # refunded if this part never delivers
                    hedge.charge = float(per_circuit[part].sum())
                core.stats.hedges += 1
                free[d] -= 1
                pos += m
                k -= m
            core.lane(d, now)
            if free[d] <= 0:
                del free[d]
    return subs


# ------------------------------------------------------------------ queued copies
def copies(core: CoreState, now: float) -> list[Submission]:
    """Idle devices (a free slot, nothing queued for them) take a copy of a job still
    waiting in another device's queue, the one expected to start latest, when they might
    start it earlier. Whichever copy starts running first wins; :meth:`on_started`
    cancels the others while they are still queued (a queued job costs nothing)."""
    idle = np.flatnonzero(core.alive & (core.local_count == 0) & (core.inflight < core.slots))
    if len(idle) == 0:
        return []
    waiting: list[tuple[float, JobRecord, list[float]]] = []
    wait_mid = core.learner.wait()
    for j in core.jobs.values():
        if j.started or j.origin is not None or not core.alive[j.device]:
            continue
        others: list[float] = []  # when its queued copies are expected to start
        if j.done is not None:  # copied before: only queued copies, none running
            live = [core.jobs.get(h) for h in j.hedges]
            if j.done.any() or any(h is None or not h.redundant or h.started for h in live):
                continue
            if len(live) >= MAX_COPIES * core.config.redundancy:
                continue
            others = [_queued_start(h, now, wait_mid) for h in live if h is not None]
        start = min([_queued_start(j, now, wait_mid), *others])
        waiting.append((start, j, others))
    if not waiting:
        return []
    waiting.sort(key=lambda e: e[0], reverse=True)
    lo = core.wait_quantile(COPY_Z)
    subs: list[Submission] = []
    free = {int(d): int(core.slots[d] - core.inflight[d]) for d in idle}
    for start, job, others in waiting[: 4 * len(free) + 4]:  # the latest to start first
        if not free:
            break
        ucls = job.unique_classes()
        # judged by when the copy would finish, not start: a device with a short queue but
        # slow for these circuits is no refuge
        best, best_end = -1, start + job.exec_s
        holders = {core.jobs[h].device for h in job.hedges if h in core.jobs}
        speed = core.learner.speed()
        for d in free:
            if d == job.device or d in holders or not core.masks.preferred[ucls, d].all():
                continue
            if len(job.idx) > core.batch_limit(d):  # a device not yet probed: one circuit
                continue
            start_d = max(now + lo[d], core.lane_end[d])
            if start_d >= best_end:
                continue
            run = core.overhead[d] + speed[d] * float(core.tables.raw_s[job.cls, d].sum())
            end_d = start_d + run
            if end_d < best_end:
                best, best_end = d, end_d
        if best < 0:
            continue
        # at most ``redundancy`` copies that may start before this one would end: a copy
        # far ahead of the others is still made (family seed 14028: a job's three copies
        # waited in 2-3 h queues while a device with a 40 s queue stood idle)
        if sum(1 for o in others if o < best_end) >= core.config.redundancy:
            continue
        extra, dearer = 0.0, 0.0
        if core.quota is not None:  # charged as if the copy wins
            worse = core.loss[job.cls, best] - core.loss[job.cls, job.device]
            extra = float(np.maximum(worse, 0.0).sum())
            if extra > core.fidelity_free() + 1e-12:
                continue
        if core.config.budget_usd is not None:
            dearer = max(
                float((core.price[job.cls, best] - core.price[job.cls, job.device]).sum()),
                0.0,
            )
            reserve = float(np.dot(core.unplaced_by_class, core.min_price))
            if dearer > 0 and core.spent + dearer + reserve > core.config.budget_usd:
                continue
        offset = np.arange(len(job.idx))
        sub = core.register(best, job.idx, job.cls, job.group, now, origin=job, offset=offset)
        copy = core.jobs[sub.job_id]
        copy.redundant = True
        copy.charge, copy.dearer = extra, dearer
        core.fidelity_spent += extra
        core.spent += dearer  # as if it runs, until it is cancelled
        core.stats.redundant += 1
        core.lane(best, now)
        free[best] -= 1
        if free[best] <= 0:
            del free[best]
        subs.append(sub)
    return subs


def _queued_start(job: JobRecord, now: float, wait_mid: np.ndarray) -> float:
    """When a job still in its queue is expected to start: by its device's lane, or later
    where the learner now expects a longer wait there (its fleet-wide prior moved since the
    device was last planned; family seed 14028: planned at 540 s, expected 34,000 s, three
    jobs looked due any moment and were not copied for 4,900 s); overdue, the longer it has
    waited, the later (heavy-tailed queues). Only copies go by this: placement keeps the
    planning wait (refreshed with it too, the plan chased the noise of other devices' queues:
    docs/scheduler.md, round 13). A job sent into a live session skips the queue, so the
    queue wait says nothing of it (judged by it, the reference fleet's session jobs looked
    late and were copied: round 14)."""
    due = job.submitted + float(wait_mid[job.device])  # the learner's expected start
    start = job.expected_end - job.exec_s
    if not job.in_session:
        start = max(start, due)
    if now > due:  # overdue in its queue
        start = max(start, now + 0.5 * (now - job.submitted))
    return start


def drop_copy(core: CoreState, copy: JobRecord, now: float, cancel: list[int]) -> None:
    """Cancel a queued copy that lost the race to start (its charge is refunded)."""
    origin = core.origin(copy)
    if origin is not None and copy.job_id in origin.hedges:
        origin.hedges.remove(copy.job_id)
    core.spent -= copy.dearer
    abandon(core, copy, now)  # refunds its fidelity charge
    core.lane(copy.device, now)
    cancel.append(copy.job_id)


def on_started(core: CoreState, job_id: int, now: float) -> tuple[int, ...]:
    """A job started running. If it has queued copies (or is one), those still queued
    are cancelled. Returns the job ids the driver must cancel."""
    job = core.jobs.get(job_id)
    if job is None or job.started:
        return ()
    job.started = True
    if core.session_ttl[job.device] > 0:
        update_sessions(core, now, job.device)
    cancel: list[int] = []
    if job.redundant:
        origin = core.origin(job)
        if origin is None:
            return ()
        for h in list(origin.hedges):
            other = core.jobs.get(h)
            if other is not None and other.redundant and not other.started and h != job_id:
                drop_copy(core, other, now, cancel)
        # a job on a device none of ours finished on yet (its probe) stays in its queue
        # beside the copy, first result wins: cancelled, it would leave that queue
        # unmeasured and the plan trusting the device's pending-job report (round 12)
        measured = core.learner.jobs[origin.device] > 0
        if origin.job_id in core.jobs and not origin.started and measured:
            # the copy holds every circuit: the origin is closed, kept as a ghost so that
            # the copy's results are delivered once
            # what the run loses is now the copy's, not the origin's plus the charge
            core.fidelity_spent += (
                float(core.loss[origin.cls, job.device].sum())
                - float(core.loss[origin.cls, origin.device].sum())
                - job.charge
            )
            job.charge = 0.0  # settled: the copy's loss replaces the origin's
            abandon(core, origin, now)
            core.refund_hedge(job)  # it runs instead of the straggler, not beside it
            core.lane(origin.device, now)
            cancel.append(origin.job_id)
            # nothing else covers those circuits: the copy is the job now (a straggler in
            # its own right, which hedging may copy again)
            if not promote(core, origin, job_id):
                core.ghosts[origin.job_id] = origin
    else:
        for h in list(job.hedges):
            other = core.jobs.get(h)
            if other is not None and other.redundant and not other.started:
                drop_copy(core, other, now, cancel)
    return tuple(cancel)
