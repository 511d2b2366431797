"""The placement core's state: what is committed where, what is in flight, what was spent.

:class:`CoreState` holds every array and record the placement core works on, with the small
operations that keep them consistent (registering and closing a job, requeueing tasks, the
expected end of a device's lane). The decisions live in modules that act on it:

* ``_estimates``: per-task times, job sizes, horizons, policy masks and live sessions, from
  what the learner knows;
* ``_budget``: ``balanced``'s fidelity budget (the plan and each class's quota) and
  ``budget_usd``;
* ``_placement``: lazy earliest-finish placement and work stealing; ``_jobs``: job forming;
* ``_hedging``: hedges, queued copies and rescue off late sessions;
* ``_outcomes``: what a finished, failed or lost job changes.

:class:`~multiqpu.scheduler._core.Core` is the driver's face over them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multiqpu.scheduler._learning import Learner
from multiqpu.scheduler._policy import Masks, PolicyName
from multiqpu.scheduler._records import DeviceQueue, JobRecord, Submission
from multiqpu.scheduler._stats import Stats
from multiqpu.scheduler._tables import ClassTables, TaskSource

__all__ = [
    "EPS",
    "RESCUE_RESERVE",
    "SESSION_INFLIGHT",
    "SESSION_OPENER",
    "SESSION_SPLIT",
    "SESSION_WAIT_S",
    "CoreConfig",
    "CoreState",
]

EPS = 1e-9
# balanced: share of the fidelity budget held back from placement, steals and copies, for
# moving work off a session device whose first job is still queued when the rest is done
RESCUE_RESERVE = 0.05
SESSION_WAIT_S = 2.0  # a job sent into a live session starts about this soon after
SESSION_INFLIGHT = 2  # jobs kept in a live session: the one running and the next
SESSION_OPENER = 1  # circuits in a session's first job (the one that queues)
SESSION_SPLIT = 5.0  # a session job takes 1/SESSION_SPLIT of the work still queued for it


@dataclass(frozen=True, kw_only=True)
class CoreConfig:
    """How the placement core places (every field changes placement; see docs/scheduler.md).

    ``redundancy`` has no default: queued copies need a driver that reports when a job
    starts running (:meth:`Core.on_started`). The virtual clock does and passes its own
    value; the async executor passes 0 (see ``_probing.core_config``)."""

    # queued copies: an idle device holds a place in its queue with a copy of a job still
    # waiting elsewhere; the first copy to start running wins, the others are cancelled
    # while still queued; at most this many copies of a job
    redundancy: int
    policy: PolicyName = "balanced"
    fidelity_margin: float = 0.02
    # balanced: never plan a makespan longer than this times the fastest plan's on the same
    # estimates (None: the fidelity margin is a hard target)
    max_slowdown: float | None = 1.5
    budget_usd: float | None = None
    deadline_at: float | None = None
    hedging: bool = True
    # hedge a job that overruns its estimate while work is still left (``_overrun``)
    overrun_hedging: bool = True
    # copies (hedges) duplicate at most this share of the run's circuits; in the run's tail
    # the worst straggler is still copied, one a look (``_hedging.hedges``)
    max_hedge_fraction: float = 0.25
    max_failures: int = 3
    min_job_s: float = 0.0
    job_timeout_s: float | None = None
    explore: bool = True
    risk_z: float = 0.5


class CoreState:
    """Everything the placement core knows, per device (arrays of length D), per class
    (length C) and per job (:class:`JobRecord`). See the module docstring.

    ``price`` is the tables' price with unknown prices (NaN) as 0: the budget arithmetic
    only meets them without a budget (with ``budget_usd`` set, devices that cannot price a
    class are excluded from it before the run, see ``_probing``)."""

    def __init__(
        self,
        tables: ClassTables,
        source: TaskSource,
        *,
        concurrency: Sequence[int] | np.ndarray,
        max_batch: Sequence[int] | np.ndarray,
        learner: Learner,
        config: CoreConfig,
        alive: Sequence[bool] | np.ndarray | None = None,
        now: float = 0.0,
        sessions: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        self.tables = tables
        self.source = source
        self.config = config
        self.learner = learner
        nd, nc = tables.n_devices, tables.n_classes
        self.price = np.nan_to_num(tables.price, nan=0.0)
        self.conc = np.maximum(np.asarray(concurrency, dtype=np.int64), 1)
        self.max_batch = np.maximum(np.asarray(max_batch, dtype=np.int64), 1)
        self.alive = np.ones(nd, bool) if alive is None else np.asarray(alive, bool).copy()
        self.dev = [DeviceQueue() for _ in range(nd)]
        # devices that run our jobs in a session (IBM Session mode): > 0, how long a session
        # lives after our last job there ended; ``live``: a session is open now
        self.session_ttl = (
            np.zeros(nd) if sessions is None else np.asarray(sessions, dtype=float).copy()
        )
        self.live = np.zeros(nd, dtype=bool)
        self.rescue_on = bool(self.session_ttl.any())
        # jobs a device may hold at once: its concurrency; on a session device one job (the
        # session's first, waiting in the queue) until the session is live, then the running
        # job and the next, so that work stays unbound until a device can take it
        self.slots = np.where(self.session_ttl > 0, 1, self.conc)
        self.front: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self.local_work = np.zeros(nd)
        self.local_count = np.zeros(nd, dtype=np.int64)
        self.inflight = np.zeros(nd, dtype=np.int64)
        self.lane_end = np.full(nd, now)
        self.consecutive_failures = np.zeros(nd, dtype=np.int64)
        self.soft_dropped: set[int] = set()  # dropped for failing in a row, not lost
        # ...benched until then, when they are tried again (_outcomes.readmit), and how
        # often each was benched (each relapse doubles the pause)
        self.benched_until: dict[int, float] = {}
        self.benched = np.zeros(nd, dtype=np.int64)
        self.last_end = np.full(nd, -np.inf)  # when our latest job on the device finished
        # when our lane there last moved on (a job of ours ended, failed, timed out or was
        # cancelled while running): the default time limit counts from then (Core.timeouts)
        self.lane_free = np.full(nd, -np.inf)
        self.jobs: dict[int, JobRecord] = {}
        self.ghosts: dict[int, JobRecord] = {}  # failed stragglers whose copies still run
        self.next_id = 0
        self.total = source.total
        self.stats = Stats(nd, start=now)
        self.remaining_by_class = source.class_counts(nc).astype(np.int64)
        self.unplaced_by_class = self.remaining_by_class.copy()
        self.spent = 0.0
        # balanced: the fidelity budget (see _policy): what a placement loses against the
        # class's most accurate device, summed over committed placements, may reach
        # fidelity_margin x the fidelity every circuit would have on its most accurate device
        ok = tables.fits & self.alive[None, :] & (tables.fidelity >= tables.floor[:, None])
        top = np.where(ok, tables.fidelity, -np.inf).max(axis=1, initial=-np.inf)
        top = np.where(np.isfinite(top), top, 0.0)
        self.top = top
        self.loss = np.where(ok, np.maximum(top[:, None] - tables.fidelity, 0.0), 0.0)
        self.fidelity_budget = config.fidelity_margin * float(self.remaining_by_class @ top)
        self.fidelity_spent = 0.0
        self.plan: np.ndarray | None = None  # balanced: (C, D) where the plan runs each class
        self.planned_at = -1  # tasks delivered when it was planned
        # balanced: fidelity each class may still lose by new placements (the plan's share)
        self.quota: np.ndarray | None = None
        # balanced: the run fell back to fastest for good (``_budget.late_guard``)
        self.fallen_back = False
        self.chunk = 1024  # tasks taken from the source per placement round (adapted)
        self.now = now  # the time of the latest pump
        self.plan_end = now  # when the work not yet submitted is expected done (fluid)
        self.stale = 0  # device estimates refreshed since the masks were
        # devices never seen get one single-circuit job early, so their real wait is learned
        # (a probe that turns out slow is hedged like any straggler)
        self.needs_probe = (learner.jobs == 0) & (
            config.explore and config.budget_usd is None and self.total >= 10 * nd
        )
        # derived from the learner by _estimates.refresh (called before first use)
        self.wait = np.zeros(nd)  # planning wait per device (pessimistic, or a session's)
        self.job_s = np.zeros(nd)  # work per job, seconds
        self.overhead = np.zeros(nd)
        self.x = np.zeros((nc, nd))  # amortised seconds per task of each class
        self.horizon = np.zeros(nd)  # how far ahead of now work is committed to a device
        empty = np.zeros((nc, nd), dtype=bool)
        self.masks = Masks(empty, empty)
        self.mask_group = np.zeros(nc, dtype=np.int64)
        self.min_price = np.zeros(nc)  # cheapest allowed price per class

    # ------------------------------------------------------------------ derived views
    def batch_limit(self, d: int) -> int:
        """Circuits a job on device ``d`` may hold: one (a probe) while its speed is
        unknown (no job of ours finished there yet), else its ``max_circuits_per_job``."""
        if self.config.explore and self.learner.jobs[d] == 0:
            return 1
        return int(self.max_batch[d])

    def wait_quantile(self, z: float) -> np.ndarray:
        """The learner's wait quantile, or SESSION_WAIT_S where a session is live."""
        w = self.learner.wait_quantile(z)
        return np.where(self.live, np.minimum(w, SESSION_WAIT_S), w) if self.live.any() else w

    def fidelity_left(self) -> float:
        """``balanced``: what is left of the fidelity budget (0 once spent)."""
        return max(self.fidelity_budget - self.fidelity_spent, 0.0)

    def fidelity_free(self) -> float:
        """``balanced``: what is left of it for placement, steals and copies (the rest is
        kept for rescues, see RESCUE_RESERVE)."""
        reserve = RESCUE_RESERVE if self.rescue_on else 0.0
        return max((1.0 - reserve) * self.fidelity_budget - self.fidelity_spent, 0.0)

    def finish_times(self, now: float) -> np.ndarray:
        """When each device is expected to finish what is committed to it."""
        return np.maximum(self.lane_end, now + self.wait) + self.local_work

    def unplaceable_classes(self) -> np.ndarray:
        """Classes with tasks left and no device allowed to run them."""
        return np.flatnonzero((self.remaining_by_class > 0) & ~self.masks.allowed.any(axis=1))

    def waiting_session(self, d: int) -> bool:
        """A session device whose session has not started: its first job is still queued."""
        return bool(self.session_ttl[d] > 0 and not self.live[d])

    def origin(self, job: JobRecord) -> JobRecord | None:
        """The straggler a hedge or queued copy copies (open, or a ghost), if any."""
        if job.origin is None:
            return None
        return self.jobs.get(job.origin) or self.ghosts.get(job.origin)

    # ------------------------------------------------------------------ bookkeeping
    def lane(self, d: int, now: float | None) -> None:
        """Expected end of device ``d``'s in-flight jobs (our jobs run one at a time)."""
        t = -np.inf
        wait = self.wait[d]
        for job in self.dev[d].jobs.values():  # insertion order = submission order
            start = max(t, job.submitted + wait)
            end = start + job.exec_s
            if now is not None and end < now:
                end = now + 0.5 * job.exec_s  # overdue: assume it is running now
            job.expected_end = end
            t = end
        self.lane_end[d] = t if np.isfinite(t) else -np.inf

    def register(
        self,
        d: int,
        idx: np.ndarray,
        cls: np.ndarray,
        group: int,
        now: float,
        *,
        origin: JobRecord | None = None,
        offset: np.ndarray | None = None,
    ) -> Submission:
        """Open a job of tasks ``idx`` on device ``d`` (a copy of ``origin``'s tasks at
        ``offset`` when given); returns what the driver must submit."""
        raw = float(self.tables.raw_s[cls, d].sum())
        job = JobRecord(
            job_id=self.next_id,
            device=d,
            idx=idx,
            cls=cls,
            group=group,
            submitted=now,
            exec_s=float(self.overhead[d] + self.learner.speed()[d] * raw),
            raw_s=raw,
            prior_wait=float(self.learner.reported[d]),
            in_session=bool(self.live[d]),
        )
        job.deadline = now + float(self.wait_quantile(1.0)[d]) + 2.0 * job.exec_s
        self.next_id += 1
        self.jobs[job.job_id] = job
        self.dev[d].jobs[job.job_id] = job
        self.inflight[d] += 1
        self.stats.submitted[d] += 1
        if origin is not None:
            job.origin = origin.job_id
            job.offset = offset
            origin.hedges.append(job.job_id)
            if origin.done is None:
                origin.done = np.zeros(len(origin.idx), dtype=bool)
        return Submission(job.job_id, d, idx, cls, group, origin.job_id if origin else None)

    def hedge_budget(self) -> int:
        """Circuits that hedges may still copy: ``max_hedge_fraction`` of the run's (at
        least 10), less those copied, plus those of copies that never ran (or failed): a
        copy cancelled in the queue, or one that ran instead of a straggler cancelled in
        the queue, duplicated no device time, so it does not use the budget up (a straggler
        left alone at the end of a run can still be copied)."""
        cap = max(10, int(self.config.max_hedge_fraction * self.total))
        return cap - self.stats.hedged_circuits + self.stats.hedge_refunds

    def refund_hedge(self, job: JobRecord) -> None:
        """``job``'s copied circuits go back to the hedge budget (see :meth:`hedge_budget`)."""
        self.stats.hedge_refunds += job.hedge_n
        job.hedge_n = 0

    def close(self, job: JobRecord) -> None:
        """Forget an open job (finished, failed or cancelled)."""
        self.jobs.pop(job.job_id, None)
        self.dev[job.device].jobs.pop(job.job_id, None)
        self.inflight[job.device] -= 1

    def requeue(self, idx: np.ndarray, cls: np.ndarray, d: int) -> None:
        """Tasks placed on device ``d`` go back to the front (their fidelity loss there is
        refunded, to the budget and to their classes' quotas: they are charged again where
        they are placed next. Kept spent, a quota left a class's failed circuits to its most
        accurate devices alone until the next plan: family seed 14047, ``balanced``, 21
        circuits of a failed job waited 4,500 s for a serial neutral-atom device while the
        device they failed on stood idle)."""
        self.fidelity_spent -= float(self.loss[cls, d].sum())
        if self.quota is not None:
            self.quota += np.bincount(cls, weights=self.loss[cls, d], minlength=len(self.quota))
        self.front.appendleft((idx, cls))
        self.unplaced_by_class += np.bincount(cls, minlength=self.tables.n_classes)
