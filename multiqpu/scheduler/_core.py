"""The placement core: one synchronous, array-based scheduler driven by both the async
executor (real devices, wall clock) and the virtual-clock simulator (simulated devices).

The core never sleeps and never does I/O. A driver calls :meth:`Core.pump` whenever something
happened (start, a job finished or failed, a wake-up time passed); the core answers with the
jobs to submit now. Results and failures come back through :meth:`Core.on_done` and
:meth:`Core.on_failed`.

How work is placed (see docs/scheduler.md for the reasoning):

* **Lazy earliest-finish placement.** Each device ``d`` has an expected finish time ``F[d]`` of
  the work already committed to it: ``max(lane_end[d], now + wait[d]) + local_work[d]``.
  Tasks are taken from the source in order and, class by class, water-filled onto the
  policy's preferred devices so that each lands where it is expected to finish first
  (greedy earliest-finish-time, done for k identical tasks at once). A device is only given
  work up to a horizon of ``wait + concurrency x job length`` ahead; the rest stays unplaced,
  so later decisions use fresher estimates and a million-task stream never materialises.
* **Batches sized to speed.** A device with a free job slot submits a job of about
  ``job_s[d]`` seconds of work: long enough that its per-job overhead is amortised and that
  its concurrent jobs cover its queue wait, at most ``max_circuits_per_job`` circuits, one
  shots value per job.
* **Work stealing.** When the source is empty, a device with a free slot and nothing queued
  takes tasks from the tail of the device expected to finish last, while that moves them
  earlier.
* **Hedging.** In the tail, a job that is overdue (or expected to finish much later than an
  idle device could) is copied to that device; the first result wins and the other copy is
  cancelled. At any time, a job that overruns its estimate by a margin is copied once to
  the device that would finish it soonest (``_overrun``).
* **Failures.** A failed job's tasks go back to the front of the queue; a device lost for
  good (or failing ``max_failures`` times in a row) is dropped and its queued work moved.

The core is split by state: :class:`~multiqpu.scheduler._state.CoreState` holds everything
it knows (``Core.state``); ``_estimates`` derives times, job sizes and masks from the
learner; ``_budget`` plans the fidelity budget and keeps ``budget_usd``; ``_placement``
places and steals; ``_jobs`` forms jobs; ``_hedging`` copies stragglers and queued jobs and rescues
late sessions; ``_outcomes`` handles finished, failed and lost jobs. This class is the
driver's face over them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import numpy as np

from multiqpu.scheduler import (
    _budget,
    _estimates,
    _hedging,
    _jobs,
    _outcomes,
    _overrun,
    _placement,
)
from multiqpu.scheduler._learning import Learner
from multiqpu.scheduler._records import Delivery, Submission
from multiqpu.scheduler._state import CoreConfig, CoreState
from multiqpu.scheduler._stats import Stats
from multiqpu.scheduler._tables import ClassTables, TaskSource

__all__ = ["Core", "CoreConfig", "Delivery", "Submission"]


class Core:
    """See the module docstring. ``tables`` holds the per-(class, device) estimates,
    ``concurrency`` and ``max_batch`` are per device, ``learner`` holds wait/speed estimates;
    ``sessions`` per device: how long a session lives after our last job there (0: none)."""

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
        self.state = CoreState(
            tables,
            source,
            concurrency=concurrency,
            max_batch=max_batch,
            learner=learner,
            config=config,
            alive=alive,
            now=now,
            sessions=sessions,
        )
        _estimates.refresh(self.state)
        self._free_key = b""
        self._next_look = now
        self._next_guard = now
        self._overrun_at = np.inf  # when the next open job overruns (see _overrun)
        self._overrun_key = (-1, -1)
        self._overrun_masks: object = None  # the masks next_overrun last saw

    @property
    def stats(self) -> Stats:
        return self.state.stats

    @property
    def learner(self) -> Learner:
        return self.state.learner

    @property
    def finished(self) -> bool:
        return self.state.stats.delivered >= self.state.total

    def refresh_estimates(self, d: int | None = None) -> None:
        """Recompute per-task times, job sizes and masks after the learner changed (for one
        device or all)."""
        _estimates.refresh(self.state, d)

    # ------------------------------------------------------------------ the driver's entry
    def pump(self, now: float) -> list[Submission]:
        """Place, steal, batch and hedge; returns the jobs to submit now."""
        core = self.state
        tic = time.perf_counter()
        core.now = now
        if core.benched_until:
            _outcomes.readmit(core, now)  # devices benched for failing, tried again
        if core.session_ttl.any():
            _estimates.update_sessions(core, now)
            # the rescue reserve is kept while a session that holds work has not started
            waiting = (core.session_ttl > 0) & ~core.live
            core.rescue_on = bool((waiting & ((core.local_count > 0) | (core.inflight > 0))).any())
        if (
            core.config.policy == "balanced"
            and core.config.max_slowdown is not None
            and not core.fallen_back
            and now >= self._next_guard
        ):
            # balanced's guarantee held in the run (at most every 1 % of the time elapsed)
            self._next_guard = now + max(1e-3, 0.01 * (now - core.stats.start))
            if _budget.late_guard(core, now):
                _estimates.refresh_masks(core)
        _placement.place(core, now)
        if not core.front and core.source.remaining == 0:
            _placement.steal(core, now)
        # a job that overran its estimate is copied before new jobs take the free slots
        overrun = core.config.hedging and core.config.overrun_hedging
        subs: list[Submission] = []
        if overrun and (now >= self._overrun_at or self._overrun_changed()):
            subs = _overrun.hedge_overruns(core, now)
        subs.extend(_jobs.batches(core, now))
        if overrun and (now >= self._overrun_at or self._overrun_changed()):
            self._overrun_key = self._jobs_key()
            self._overrun_masks = core.masks
            self._overrun_at = _overrun.next_overrun(core, now) or np.inf
        # hedges and copies are looked for when a device became free or, otherwise, at
        # most every 1 % of the time elapsed (they only change as jobs age)
        free = core.alive & (core.local_count == 0) & (core.inflight < core.slots)
        key = free.tobytes()
        if key != self._free_key or now >= self._next_look:
            self._free_key = key
            found = 0
            if core.config.hedging and not core.front and core.source.remaining == 0:
                hedged = _hedging.hedges(core, now)
                found += len(hedged)
                subs.extend(hedged)
            if core.config.redundancy > 0:
                copied = _hedging.copies(core, now)
                found += len(copied)
                subs.extend(copied)
            if not found:
                self._next_look = now + max(1e-3, 0.01 * (now - core.stats.start))
        core.stats.core_s += time.perf_counter() - tic
        return subs

    def _jobs_key(self) -> tuple[int, int]:
        """Changes whenever a job opens or closes."""
        return (self.state.next_id, len(self.state.jobs))

    def _overrun_changed(self) -> bool:
        """A job opened or closed, or the masks changed (where a copy may go), since the
        next overrun was last worked out."""
        return self._overrun_key != self._jobs_key() or self._overrun_masks is not self.state.masks

    def attach(self, device: int, idx: np.ndarray, cls: np.ndarray, now: float) -> int:
        """Register a job already at the provider (a resumed run re-attached to it); its
        tasks must not come from the source. Returns the job id."""
        core = self.state
        idx = np.asarray(idx, dtype=np.int64)
        cls = np.asarray(cls, dtype=np.int64)
        core.total += len(idx)
        core.remaining_by_class += np.bincount(cls, minlength=core.tables.n_classes)
        sub = core.register(device, idx, cls, int(core.tables.group[int(cls[0])]), now)
        core.lane(device, now)
        return sub.job_id

    def on_started(self, job_id: int, now: float) -> tuple[int, ...]:
        """A job started running. If it has queued copies (or is one), those still queued
        are cancelled. Returns the job ids the driver must cancel."""
        return _hedging.on_started(self.state, job_id, now)

    def on_done(
        self, job_id: int, now: float, *, queue_s: float | None, execution_s: float | None
    ) -> Delivery | None:
        """A job finished. Returns what to deliver from it (None: nothing, its tasks were
        already delivered by another copy; drop the result)."""
        return _outcomes.on_done(self.state, job_id, now, queue_s=queue_s, execution_s=execution_s)

    def on_failed(self, job_id: int, now: float, *, permanent: bool) -> tuple[int, ...]:
        """A job failed (``permanent``: the device is gone). Its tasks go back to the front
        unless another copy still runs them. Returns job ids the driver must cancel."""
        return _outcomes.on_failed(self.state, job_id, now, permanent=permanent)

    def drop(self, d: int, now: float) -> tuple[int, ...]:
        """Stop using device ``d``: its queued work moves, its open jobs are cancelled."""
        return _outcomes.drop(self.state, d, now)

    def reopen(self, idx: np.ndarray, cls: np.ndarray, d: int) -> None:
        """Run again tasks already delivered from device ``d`` (results withdrawn)."""
        _outcomes.reopen(self.state, idx, cls, d)

    # ------------------------------------------------------------------ timers
    def timeouts(self, now: float) -> list[int]:
        """Jobs past their time limit (treat as failed: cancel, then :meth:`on_failed`).

        A ``job_timeout_s`` the user set applies to every job from its submission. The
        default, ``10 x (its device's 3-sigma wait + its run time) + 60 s``, judges only
        the first of our open jobs on each device, from its submission or from when our
        lane there last moved on (a job of ours ended, failed or timed out), whichever is
        later: our jobs run one at a time, so the jobs behind it wait for our own work,
        not for a broken device (family seed 6089: 50 one-circuit jobs sent at once to an
        ion trap with a 24 s queue timed out behind its first long job, counted as
        failures, and the run's fastest device was dropped)."""
        core = self.state
        out = []
        wq = core.learner.wait_quantile(3.0)
        fixed = core.config.job_timeout_s
        if fixed is not None:
            return [j.job_id for j in core.jobs.values() if now - j.submitted > fixed]
        for d, queue in enumerate(core.dev):
            head = next(iter(queue.jobs.values()), None)
            if head is None:
                continue
            since = max(head.submitted, float(core.lane_free[d]))
            if now - since > 10.0 * (wq[d] + head.exec_s) + 60.0:
                out.append(head.job_id)
        return out

    def next_wakeup(self, now: float) -> float | None:
        """When the driver should call :meth:`pump` again even if nothing happens."""
        jobs = self.state.jobs
        benched = min(self.state.benched_until.values(), default=np.inf)  # (readmitted then)
        if not jobs:
            return None if benched == np.inf else float(benched)
        ends = [j.expected_end for j in jobs.values() if j.expected_end > now]
        soonest = min(min(ends) if ends else np.inf, benched)
        ages = [now - j.submitted for j in jobs.values()]
        # (statistics.median: np.median's value, without its overhead on a short list)
        recheck = now + max(0.1 * float(statistics.median(ages)), 1e-3)
        # an open job overruns: it may be hedged then (see _overrun)
        return float(min(soonest, recheck, self._overrun_at))
