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
  cancelled.
* **Failures.** A failed job's tasks go back to the front of the queue; a device lost for
  good (or failing ``max_failures`` times in a row) is dropped and its queued work moved.

Hedging, queued copies and late-session rescue live in ``_hedging``; the job and device
records in ``_records``; water-filling in ``_waterfill``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multiqpu.errors import DeviceUnavailableError, InvalidInputError
from multiqpu.scheduler._hedging import (
    copies,
    hedges,
    on_started,
    rescue_mask,
    stuck,
    waiting_session,
)
from multiqpu.scheduler._learning import Learner
from multiqpu.scheduler._policy import Masks, PolicyName, masks
from multiqpu.scheduler._records import Delivery, DeviceQueue, JobRecord, Submission
from multiqpu.scheduler._stats import Stats
from multiqpu.scheduler._tables import ClassTables, TaskSource
from multiqpu.scheduler._waterfill import capped_waterfill, fluid_level, waterfill

__all__ = ["Core", "CoreConfig", "Delivery", "Submission"]

_EPS = 1e-9
PLAN_RESERVE = 0.1  # balanced: share of the fidelity budget left unplanned, for later plans
# balanced: share of the fidelity budget held back from placement, steals and copies, for
# moving work off a session device whose first job is still queued when the rest is done
RESCUE_RESERVE = 0.05
REFERENCE_Z = 1.5  # sigmas of wait pessimism when deciding which devices set the fidelity bar
SESSION_WAIT_S = 2.0  # a job sent into a live session starts about this soon after
SESSION_INFLIGHT = 2  # jobs kept in a live session: the one running and the next
SESSION_OPENER = 1  # circuits in a session's first job (the one that queues)
SESSION_SPLIT = 5.0  # a session job takes 1/SESSION_SPLIT of the work still queued for it


@dataclass(frozen=True)
class CoreConfig:
    policy: PolicyName = "balanced"
    fidelity_margin: float = 0.02
    max_slowdown: float = 2.0
    patience_s: float = 60.0
    budget_usd: float | None = None
    deadline_at: float | None = None
    hedging: bool = True
    max_hedge_fraction: float = 0.25
    max_failures: int = 3
    min_job_s: float = 0.0
    job_timeout_s: float | None = None
    explore: bool = True
    risk_z: float = 0.5
    # queued copies: an idle device holds a place in its queue with a copy of a job still
    # waiting elsewhere; the first copy to start running wins, the others are cancelled
    # while still queued (needs a driver that reports starts: Core.on_started)
    redundancy: int = 2


class Core:
    """See the module docstring. ``tables`` holds the per-(class, device) estimates,
    ``concurrency`` and ``max_batch`` are per device, ``learner`` holds wait/speed estimates."""

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
        self.t = tables
        self.source = source
        self.cfg = config
        self.learner = learner
        nd = tables.n_devices
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
        self._rescue_on = bool(self.session_ttl.any())
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
        self.last_end = np.full(nd, -np.inf)  # when our latest job on the device finished
        self.jobs: dict[int, JobRecord] = {}
        self.ghosts: dict[int, JobRecord] = {}  # failed stragglers whose copies still run
        self._next_id = 0
        self.total = source.total
        self.stats = Stats(nd, start=now)
        self.remaining_by_class = source.class_counts(tables.n_classes).astype(np.int64)
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
        self._plan: np.ndarray | None = None  # balanced: (C, D) where the plan runs each class
        self._planned_at = -1  # tasks delivered when it was planned
        # balanced: fidelity each class may still lose by new placements (the plan's share)
        self._quota: np.ndarray | None = None
        self._chunk = 1024
        self._now = now
        # devices never seen get one single-circuit job early, so their real wait is learned
        # (a probe that turns out slow is hedged like any straggler)
        self.needs_probe = (learner.jobs == 0) & (
            config.explore and config.budget_usd is None and self.total >= 10 * nd
        )
        self.refresh_estimates()

    # ------------------------------------------------------------------ estimates
    def _budget_plan(self, *, force: bool = False) -> np.ndarray:
        """``balanced``: (C, D) the devices each class may run on, from the fluid plan (see
        _bounds) of the work not yet submitted, on the estimated waits and speeds: the split
        that finishes earliest while what it loses against each circuit's most accurate
        device stays within (1 - PLAN_RESERVE) of what is left of the fidelity budget. A class
        may use every device at least as accurate as the least accurate one the plan gives
        it. Re-planned after every 5 % of the tasks is delivered (estimates have moved, and
        what was spent is known) and when a device is dropped."""
        delivered = self.stats.delivered
        if (
            self._plan is not None
            and not force
            and delivered - self._planned_at < max(1, self.total // 20)
        ):
            return self._plan
        from multiqpu.scheduler._bounds import fluid_plan
        from multiqpu.scheduler._policy import FLOOR_MARGINS

        t = self.t
        n_c = t.n_classes
        movable = self.unplaced_by_class.astype(float)
        local_loss = 0.0
        for d, dev in enumerate(self.dev):
            for _, cls in dev.local:
                movable += np.bincount(cls, minlength=n_c)
                local_loss += float(self.loss[cls, d].sum())
        ok = t.fits & self.alive[None, :] & (t.fidelity >= t.floor[:, None])
        fid = np.where(ok, t.fidelity, -np.inf)
        best = fid.max(axis=1, initial=-np.inf)
        ok &= (
            fid
            >= (best * (1.0 - min(FLOOR_MARGINS * self.cfg.fidelity_margin, 1.0)))[:, None] - 1e-12
        )
        # before any plan: the most accurate devices only
        keep = ok & (fid >= best[:, None] - 1e-12) if self._plan is None else self._plan
        plan = None
        if movable.sum() > 0 and ok.any():
            now = self._now
            start = np.where(self.alive, np.maximum(self.lane_end, now + self.wait) - now, np.inf)
            left = self._fidelity_free() + local_loss
            _, plan = fluid_plan(
                movable, self.x, start, ok, loss=self.loss, budget=(1.0 - PLAN_RESERVE) * left
            )
        if plan is None:  # nothing to plan, or the budget is spent: carry on as planned
            use = keep
            if movable.sum() > 0:  # spent: new work goes to the most accurate devices
                self._quota = np.zeros(n_c)
        else:
            self._quota = (plan * self.loss).sum(axis=1)
            # a class may run on every device at least as accurate as the least accurate one
            # the plan gives it (water-filling then balances them); classes with nothing to
            # plan keep their devices
            low = np.where(plan > 1e-6, t.fidelity, np.inf).min(axis=1)
            use = np.where((movable > 0)[:, None], ok & (t.fidelity >= low[:, None] - 1e-12), keep)
        self._plan = use
        self._planned_at = delivered
        return use

    def _update_sessions(self, now: float, d: int | None = None) -> None:
        """Which session devices have a live session: one of our jobs there started (or was
        sent into the session), or the last one ended less than the session's TTL ago."""
        for k in range(len(self.dev)) if d is None else (d,):
            ttl = self.session_ttl[k]
            if ttl <= 0:
                continue
            live = now <= self.last_end[k] + ttl or any(
                j.started or j.in_session for j in self.dev[k].jobs.values()
            )
            if live != self.live[k]:
                self.live[k] = live
                self.slots[k] = min(int(self.conc[k]), SESSION_INFLIGHT if live else 1)
                self.refresh_estimates(k)

    def _wait_quantile(self, z: float) -> np.ndarray:
        """The learner's wait quantile, or SESSION_WAIT_S where a session is live."""
        w = self.learner.wait_quantile(z)
        return np.where(self.live, np.minimum(w, SESSION_WAIT_S), w) if self.live.any() else w

    def _fidelity_left(self) -> float:
        """``balanced``: what is left of the fidelity budget (0 once spent)."""
        return max(self.fidelity_budget - self.fidelity_spent, 0.0)

    def _fidelity_free(self) -> float:
        """``balanced``: what is left of it for placement, steals and copies (the rest is
        kept for rescues, see RESCUE_RESERVE)."""
        reserve = RESCUE_RESERVE if self._rescue_on else 0.0
        return max((1.0 - reserve) * self.fidelity_budget - self.fidelity_spent, 0.0)

    def _refresh_masks(self, *, force: bool = False) -> None:
        self._stale = 0
        t = self.t
        threshold = None
        if self.cfg.policy == "balanced":
            # how long the fleet needs for the remaining work (any device that fits): a device
            # finishing one circuit within max_slowdown times that (or patience_s) may set
            # the fidelity bar
            now = self._now
            eligible = t.fits & self.alive[None, :] & (t.fidelity >= t.floor[:, None])
            u = self.remaining_by_class.astype(float)
            count = u @ eligible
            ok = count > 0
            level = now
            if ok.any() and u.sum() > 0:
                xbar = (u @ (eligible * self.x)) / np.maximum(count, 1.0)
                F = self.finish_times(now)
                level = fluid_level(F[ok], xbar[ok], count[ok], float(u.sum()))
            threshold = self.cfg.max_slowdown * max(level - now, 0.0) + self.cfg.patience_s
        planned = None
        if self.cfg.policy == "balanced":
            planned = self._budget_plan(force=force)
        self.masks: Masks = masks(
            self.cfg.policy,
            fits=t.fits,
            fidelity=t.fidelity,
            price=t.price,
            alive=self.alive,
            floor=t.floor,
            margin=self.cfg.fidelity_margin,
            # a device sets the bar only if even a pessimistic estimate says it is quick
            completion=self._pessimistic_wait()[None, :] + self.x,
            max_slowdown=self.cfg.max_slowdown,
            min_threshold=threshold,
            planned=planned,
        )
        pref = self.masks.preferred & self.alive[None, :]
        self.mask_group = np.unique(pref, axis=0, return_inverse=True)[1].reshape(-1)
        allowed = self.masks.allowed
        self.min_price = np.where(allowed, t.price, np.inf).min(axis=1, initial=np.inf)
        self.min_price[~np.isfinite(self.min_price)] = 0.0

    def _pessimistic_wait(self) -> np.ndarray:
        """A high quantile of each device's wait, raised to the age of its oldest job still
        out (a job waiting that long says the queue is at least that long now)."""
        w = self.learner.wait_quantile(REFERENCE_Z).copy()
        now = self._now
        for d, dev in enumerate(self.dev):
            if dev.jobs:
                oldest = next(iter(dev.jobs.values()))
                w[d] = max(w[d], now - oldest.submitted)
        return w

    def unplaceable_classes(self) -> np.ndarray:
        """Classes with tasks left and no device allowed to run them."""
        return np.flatnonzero((self.remaining_by_class > 0) & ~self.masks.allowed.any(axis=1))

    def refresh_estimates(self, d: int | None = None) -> None:
        """Recompute per-task times and job sizes from the learner (after it changed), for
        one device or all."""
        lr = self.learner
        cols = slice(None) if d is None else slice(d, d + 1)
        # plan with a pessimistic wait: a device whose queue we know badly gets less work
        wait = lr.wait_quantile(self.cfg.risk_z)[cols]
        speed, overhead = lr.speed()[cols], lr.overhead()[cols]
        per_task = speed[None, :] * self.t.raw_s[:, cols]  # (C, D')
        w = self.t.weight / max(float(self.t.weight.sum()), _EPS)
        mean_task = np.maximum((w[:, None] * per_task).sum(axis=0), 1e-6)
        conc = self.conc[cols]
        # a job long enough that the other concurrent jobs cover a pessimistic queue wait
        # (so the device never runs dry between our jobs) and its overhead is amortised
        wait_hi = lr.wait_quantile(1.0)[cols]
        live = self.live[cols]
        wait = np.where(live, SESSION_WAIT_S, wait)
        # in a session the next job does not queue: nothing to cover but the overhead
        wait_hi = np.where(self.session_ttl[cols] > 0, 0.0, wait_hi)
        target = np.maximum(
            np.maximum(10.0 * overhead, 1.5 * wait_hi / np.maximum(conc - 1, 1)),
            self.cfg.min_job_s,
        )
        per_job = np.clip(np.ceil(target / mean_task), 1, self.max_batch[cols])
        if d is None:
            self.wait = wait.copy()
            self.job_s = np.empty_like(wait)
            self.overhead = overhead.copy()
            self.x = np.empty_like(per_task)
            self.horizon = np.empty_like(wait)
        else:
            self.wait[cols] = wait
            self.overhead[cols] = overhead
        self.job_s[cols] = np.maximum(per_job * mean_task, 1e-6)  # work per job, seconds
        self.x[:, cols] = per_task + (overhead / per_job)[None, :] + _EPS  # amortised
        # commit up to a full pipeline of the largest jobs beyond the wait: work that will not
        # start before that stays unplaced, to be placed later with fresher estimates
        self.horizon[cols] = wait + conc * np.maximum(
            self.job_s[cols], self.max_batch[cols] * mean_task
        )
        for dd in range(len(self.dev)) if d is None else (d,):
            self._lane(dd, None)
        if d is None:
            self._refresh_masks()
        elif self.cfg.policy == "balanced":
            # the fidelity bar depends on learned times: refresh it every few completions
            self._stale += 1
            if self._stale >= max(1, len(self.dev) // 4):
                self._refresh_masks()

    def _lane(self, d: int, now: float | None) -> None:
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

    def finish_times(self, now: float) -> np.ndarray:
        return np.maximum(self.lane_end, now + self.wait) + self.local_work

    # ------------------------------------------------------------------ the driver's entry
    def pump(self, now: float) -> list[Submission]:
        """Place, steal, batch and hedge; returns the jobs to submit now."""
        tic = time.perf_counter()
        self._now = now
        if self.session_ttl.any():
            self._update_sessions(now)
            # the rescue reserve is kept while a session that holds work has not started
            waiting = (self.session_ttl > 0) & ~self.live
            self._rescue_on = bool((waiting & ((self.local_count > 0) | (self.inflight > 0))).any())
        self._place(now)
        if not self.front and self.source.remaining == 0:
            self._steal(now)
        subs = self._batches(now)
        if self.cfg.hedging and not self.front and self.source.remaining == 0:
            subs.extend(hedges(self, now))
        if self.cfg.redundancy > 0:
            subs.extend(copies(self, now))
        self.stats.core_s += time.perf_counter() - tic
        return subs

    # ------------------------------------------------------------------ placement
    def _take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx_parts: list[np.ndarray] = []
        cls_parts: list[np.ndarray] = []
        have = 0
        while self.front and have < n:
            idx, cls = self.front.popleft()
            k = n - have
            if len(idx) > k:
                self.front.appendleft((idx[k:], cls[k:]))
                idx, cls = idx[:k], cls[:k]
            idx_parts.append(idx)
            cls_parts.append(cls)
            have += len(idx)
        if have < n and self.source.remaining:
            idx, cls = self.source.take(n - have)
            idx_parts.append(idx)
            cls_parts.append(cls)
        if not idx_parts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        if len(idx_parts) == 1:
            return idx_parts[0], cls_parts[0]
        return np.concatenate(idx_parts), np.concatenate(cls_parts)

    def _plan_level(self, F: np.ndarray) -> tuple[float, np.ndarray]:
        """The fluid level of all unplaced work: the time ``L`` by which the devices, each
        taking only classes it is preferred for at its mean per-task time, could finish it.
        Devices expected to be busy past ``L`` get no new work now."""
        u = self.unplaced_by_class.astype(float)
        pref = self.masks.preferred & self.alive[None, :]
        count = u @ pref  # tasks each device could take
        xbar = (u @ (pref * self.x)) / np.maximum(count, 1.0)
        ok = count > 0
        total = float(u.sum())
        if total <= 0 or not ok.any():
            return float(F.min()), xbar
        return fluid_level(F[ok], xbar[ok], count[ok], total), xbar

    def _place(self, now: float) -> None:
        tic = time.perf_counter()
        while self.front or self.source.remaining:
            F = self.finish_times(now)
            cap = now + self.horizon
            level, xbar = self._plan_level(F)
            limit = np.minimum(level, cap)
            room = np.where(self.alive, np.maximum(limit - F, 0.0), 0.0)
            idle = self.alive & (self.local_count == 0) & (self.inflight < self.slots)
            capacity = int(np.sum(room / np.maximum(xbar, 1e-9))) + int(idle.sum())
            idx, cls = self._take(min(max(capacity, 16), self._chunk))
            if len(idx) == 0:
                break
            leftover = self._place_chunk(idx, cls, now, F, limit, cap)
            if leftover:
                left = sum(len(seg[0]) for seg in leftover)
                # adapt the chunk to what the devices actually took
                self._chunk = max(16, min(65536, 2 * (len(idx) - left)))
                for seg in reversed(leftover):
                    self.front.appendleft(seg)
                break
            self._chunk = min(65536, 2 * self._chunk)
        self.stats.place_s += time.perf_counter() - tic

    def _place_chunk(
        self,
        idx: np.ndarray,
        cls: np.ndarray,
        now: float,
        F: np.ndarray,
        limit: np.ndarray,
        cap: np.ndarray,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        # Tasks are water-filled in groups that share their preferred devices (one group per
        # class when a budget or deadline needs per-class prices and times).
        exact = (
            self.cfg.budget_usd is not None
            or self.cfg.deadline_at is not None
            or self._quota is not None
        )
        keys = cls if exact else self.mask_group[cls]
        order = np.argsort(keys, kind="stable")
        cls_sorted = cls[order]
        idx_sorted = idx[order]
        bounds = np.flatnonzero(np.diff(keys[order])) + 1
        starts = np.concatenate(([0], bounds))
        ends = np.concatenate((bounds, [len(cls_sorted)]))
        leftover: list[tuple[np.ndarray, np.ndarray]] = []
        n_c = self.t.n_classes
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            c = int(cls_sorted[a])
            if self.needs_probe.any():
                for d in np.flatnonzero(self.needs_probe & self.masks.preferred[c] & self.alive):
                    if a == b:
                        break
                    if self._quota is not None and self.loss[c, d] > min(
                        max(float(self._quota[c]), 0.0), self._fidelity_left()
                    ):
                        continue  # balanced: a probe too must fit the fidelity budget
                    if self._quota is not None:
                        self._quota[c] -= self.loss[c, d]
                    self._put(int(d), idx_sorted[a : a + 1], cls_sorted[a : a + 1], F)
                    self.needs_probe[d] = False
                    self.unplaced_by_class[int(cls_sorted[a])] -= 1
                    self.stats.placements += 1
                    self.stats.probes += 1
                    a += 1
                if a == b:
                    continue
            g_cls = cls_sorted[a:b]
            n_by_dev = self._assign(c, g_cls, F, limit, cap)
            if n_by_dev is None:
                leftover.append((idx_sorted[a:b], g_cls))
                continue
            devs, counts = n_by_dev
            pos = a
            for d, n in zip(devs.tolist(), counts.tolist(), strict=True):
                if n <= 0:
                    continue
                self._put(d, idx_sorted[pos : pos + n], cls_sorted[pos : pos + n], F)
                pos += n
            self.unplaced_by_class -= np.bincount(cls_sorted[a:pos], minlength=n_c)
            self.stats.placements += pos - a
            if pos < b:
                leftover.append((idx_sorted[pos:b], cls_sorted[pos:b]))
        return leftover

    def _put(self, d: int, idx: np.ndarray, cls: np.ndarray, F: np.ndarray) -> None:
        n = len(idx)
        work = float(self.x[cls, d].sum())
        g = self.t.group[cls]
        if n > 1 and g.min() != g.max():  # one shots value per job: one group per segment
            order = np.argsort(g, kind="stable")
            idx, cls, g = idx[order], cls[order], g[order]
            cuts = (np.flatnonzero(np.diff(g)) + 1).tolist()
            for a, b in zip([0, *cuts], [*cuts, n], strict=True):
                self.dev[d].local.append((idx[a:b], cls[a:b]))
        else:
            self.dev[d].local.append((idx, cls))
        self.local_count[d] += n
        self.local_work[d] += work
        F[d] += work
        self.spent += float(self.t.price[cls, d].sum())
        self.fidelity_spent += float(self.loss[cls, d].sum())

    def _assign(
        self, c: int, g_cls: np.ndarray, F: np.ndarray, limit: np.ndarray, cap: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """How many of the tasks ``g_cls`` (all with class ``c``'s preferred devices) each
        device takes now."""
        k = len(g_cls)
        sel = np.flatnonzero(self.masks.preferred[c] & self.alive)
        if len(sel) == 0:
            sel = np.flatnonzero(self.masks.allowed[c] & self.alive)
            if len(sel) == 0:
                return None
        if k == 1 or (g_cls[0] == g_cls[-1] and (g_cls == c).all()):
            xc = self.x[c]
        else:
            xc = np.bincount(g_cls, minlength=self.t.n_classes) @ self.x / k
        if self.cfg.deadline_at is not None:
            _, level = waterfill(F[sel], xc[sel], k)
            if level > self.cfg.deadline_at:
                wider = np.flatnonzero(self.masks.allowed[c] & self.alive)
                if len(wider) > len(sel):
                    sel = wider
        restricted = False
        if self.cfg.budget_usd is not None:
            cheap = self._within_budget(c, k, sel, F)
            restricted = len(cheap) < len(sel) or not np.array_equal(cheap, sel)
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
            if self.local_count[sel[j]] > 0:
                return None
            room[j] = 1
        n = capped_waterfill(Fs, xs, k, room)
        if self._quota is not None:
            n = self._within_quota(c, sel, n, Fs, xs, k, room, cap[sel])
        if n.sum() == 0:
            return None
        return sel, n

    def _within_quota(
        self,
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
        assert self._quota is not None
        lc = self.loss[c, sel]
        q = min(max(float(self._quota[c]), 0.0), self._fidelity_free())
        spend = float(n @ lc)
        if spend <= q + 1e-12:  # the usual case
            self._quota[c] -= spend
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
        self._quota[c] -= float(n @ lc)
        return n

    def _within_budget(self, c: int, k: int, sel: np.ndarray, F: np.ndarray) -> np.ndarray:
        """Devices for ``k`` tasks of class ``c`` that keep the budget feasible: the tasks not
        yet placed must still fit at their cheapest prices."""
        assert self.cfg.budget_usd is not None
        price = self.t.price[c]
        reserve_after = float(
            np.dot(self.unplaced_by_class, self.min_price) - k * self.min_price[c]
        )
        slack = self.cfg.budget_usd - self.spent - reserve_after
        n, _ = waterfill(F[sel], self.x[c][sel], k)
        if float(np.dot(n, price[sel])) <= slack + 1e-12:
            return sel
        allowed = np.flatnonzero(self.masks.allowed[c] & self.alive)
        limit = self.min_price[c] + max(slack - k * self.min_price[c], 0.0) / max(k, 1)
        cheap = allowed[price[allowed] <= limit + 1e-12]
        if len(cheap) == 0 or k * self.min_price[c] > slack + 1e-9:
            raise InvalidInputError(
                f"budget_usd={self.cfg.budget_usd} is spent: ${self.spent:.2f} committed, "
                f"${reserve_after + k * self.min_price[c]:.2f} still needed at the cheapest "
                "prices; raise the budget or run fewer circuits"
            )
        return cheap

    # ------------------------------------------------------------------ stealing
    def _steal(self, now: float) -> None:
        hungry = np.flatnonzero(self.alive & (self.local_count == 0) & (self.inflight < self.slots))
        if len(hungry) == 0 or not self.local_count.any():
            return
        for d in hungry.tolist():
            for _ in range(64):
                F = self.finish_times(now)
                victims = np.flatnonzero(self.local_count > 0)
                victims = victims[victims != d]
                if len(victims) == 0:
                    return
                v = int(victims[np.argmax(F[victims])])
                _, seg_cls = self.dev[v].local[-1]
                c = int(seg_cls[-1])
                held = stuck(self, v, now)
                if not (self.masks.preferred[c, d] or (held and rescue_mask(self)[c, d])):
                    break
                xd, xv = self.x[c, d], self.x[c, v]
                # move j tasks while the last one still finishes earlier on d
                j = int(np.floor((F[v] - F[d] + xv) / (xd + xv) - 1e-9))
                other = np.flatnonzero(seg_cls[::-1] != c)
                same = int(other[0]) if len(other) else len(seg_cls)  # trailing class-c tasks
                j = min(j, same, int(np.ceil(self.job_s[d] / xd)))
                extra = self.t.price[c, d] - self.t.price[c, v]
                if self.cfg.budget_usd is not None and extra > 0:
                    reserve = float(np.dot(self.unplaced_by_class, self.min_price))
                    room = self.cfg.budget_usd - reserve - self.spent
                    j = min(j, int(np.floor(room / extra + 1e-9)))
                worse = self.loss[c, d] - self.loss[c, v]
                # balanced: within the budget; off a session device that has not started
                # (while others are idle: we steal), the rescue reserve too, and past the
                # budget once its first job is late
                if self._quota is not None and worse > 1e-12 and not held:
                    if waiting_session(self, v):
                        q = self._fidelity_left()
                    else:
                        q = min(max(float(self._quota[c]), 0.0), self._fidelity_free())
                    j = min(j, int(np.floor(q / worse + 1e-9)))
                if j <= 0 or F[d] + xd >= F[v]:
                    break
                if self._quota is not None:
                    self._quota[c] -= j * worse
                self._move_tail(v, d, j, c)
                self.stats.steals += j

    def _move_tail(self, v: int, d: int, j: int, c: int) -> None:
        seg_idx, seg_cls = self.dev[v].local.pop()
        moved_idx = seg_idx[-j:]
        if len(seg_idx) > j:
            self.dev[v].local.append((seg_idx[:-j], seg_cls[:-j]))
        self.local_count[v] -= j
        self.local_work[v] = max(self.local_work[v] - j * self.x[c, v], 0.0)
        self.dev[d].local.append((moved_idx, np.full(j, c, dtype=np.int64)))
        self.local_count[d] += j
        self.local_work[d] += j * self.x[c, d]
        self.spent += j * (self.t.price[c, d] - self.t.price[c, v])
        self.fidelity_spent += j * (self.loss[c, d] - self.loss[c, v])

    # ------------------------------------------------------------------ batches
    def _batches(self, now: float) -> list[Submission]:
        subs: list[Submission] = []
        ready = np.flatnonzero(self.alive & (self.local_count > 0) & (self.inflight < self.slots))
        for d in ready.tolist():
            while self.local_count[d] > 0 and self.inflight[d] < self.slots[d]:
                subs.append(self._form_job(d, now))
            self._lane(d, now)
        return subs

    def _form_job(self, d: int, now: float) -> Submission:
        local = self.dev[d].local
        group = int(self.t.group[int(local[0][1][0])])
        limit = int(self.max_batch[d])
        if self.session_ttl[d] > 0 and not self.live[d] and self.inflight[d] == 0:
            limit = SESSION_OPENER  # the session's first job: it may wait long in the queue
        # split what is queued here over the free slots: submitted now, it all waits in the
        # vendor's queue at once instead of paying one wait per job in turn, and no single
        # unlucky wait holds all of it; each job still at least 4x its overhead
        free = max(int(self.slots[d] - self.inflight[d]), 1)
        share = self.local_work[d] / free
        if self.session_ttl[d] > 0:
            # what stays here is not bound yet (others may still steal it): jobs of
            # 1/SESSION_SPLIT of it, so they shrink towards the end
            share = self.local_work[d] / SESSION_SPLIT
        target = max(4.0 * self.overhead[d], self.cfg.min_job_s, share)
        x = self.x[:, d]
        taken_idx: list[np.ndarray] = []
        taken_cls: list[np.ndarray] = []
        count, work = 0, 0.0
        keep: list[tuple[np.ndarray, np.ndarray]] = []
        # count == 0: always take something (target can be 0: no job overhead, and
        # local_work rounded down to 0 by earlier subtractions)
        while local and count < limit and (work < target or count == 0):
            seg_idx, seg_cls = local.popleft()
            if int(self.t.group[int(seg_cls[0])]) != group:
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
        self.local_count[d] -= count
        self.local_work[d] = max(self.local_work[d] - work, 0.0)
        if self.local_count[d] == 0:
            self.local_work[d] = 0.0
        return self._register(d, idx, cls, group, now)

    def _register(
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
        raw = float(self.t.raw_s[cls, d].sum())
        job = JobRecord(
            job_id=self._next_id,
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
        job.deadline = now + float(self._wait_quantile(1.0)[d]) + 2.0 * job.exec_s
        self._next_id += 1
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

    def attach(self, device: int, idx: np.ndarray, cls: np.ndarray, now: float) -> int:
        """Register a job already at the provider (a resumed run re-attached to it); its
        tasks must not come from the source. Returns the job id."""
        idx = np.asarray(idx, dtype=np.int64)
        cls = np.asarray(cls, dtype=np.int64)
        self.total += len(idx)
        self.remaining_by_class += np.bincount(cls, minlength=self.t.n_classes)
        sub = self._register(device, idx, cls, int(self.t.group[int(cls[0])]), now)
        self._lane(device, now)
        return sub.job_id

    def on_started(self, job_id: int, now: float) -> tuple[int, ...]:
        """A job started running. If it has queued copies (or is one), those still queued
        are cancelled. Returns the job ids the driver must cancel."""
        return on_started(self, job_id, now)

    # ------------------------------------------------------------------ outcomes
    def _close(self, job: JobRecord) -> None:
        self.jobs.pop(job.job_id, None)
        self.dev[job.device].jobs.pop(job.job_id, None)
        self.inflight[job.device] -= 1

    def _abandon(self, job: JobRecord, now: float) -> None:
        """Close a job that lost a race; if nothing of ours ran before it on its device, the
        time it spent waiting is a (censored) observation of that device's queue."""
        first = next(iter(self.dev[job.device].jobs), None) == job.job_id
        self._close(job)
        # right-censored: it says the wait is at least this long, nothing if that is less
        # than what we already expect
        if first and not job.in_session and now - job.submitted > self.learner.wait()[job.device]:
            self.learner.observe(
                job.device,
                queue_s=now - job.submitted,
                execution_s=None,
                predicted_s=job.raw_s,
                prior_wait_s=job.prior_wait,
            )
            self.refresh_estimates(job.device)

    def on_done(
        self, job_id: int, now: float, *, queue_s: float | None, execution_s: float | None
    ) -> Delivery | None:
        """A job finished. Returns what to deliver from it (None: nothing, its tasks were
        already delivered by another copy; drop the result)."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        self._close(job)
        d = job.device
        # A job that started the moment our previous job there finished waited behind our
        # own work, not (only) the vendor's queue: its wait says nothing about the queue.
        blocked = False
        if execution_s is not None:
            start = now - execution_s
            blocked = start <= self.last_end[d] + 1e-3 + 0.01 * execution_s
        self.last_end[d] = max(self.last_end[d], now)
        self.learner.observe(
            d,
            queue_s=None if blocked or job.in_session else queue_s,
            execution_s=execution_s,
            predicted_s=job.raw_s,
            prior_wait_s=job.prior_wait,
        )
        self.consecutive_failures[d] = 0
        cancel: list[int] = []
        positions = np.arange(len(job.idx))
        origin = self._origin(job)
        if origin is not None and job.offset is not None and origin.done is not None:
            # a hedge came back before the straggler: its circuits not delivered yet (by an
            # earlier copy) are done; the straggler and any other copies go once all are
            positions = np.flatnonzero(~origin.done[job.offset])
            origin.done[job.offset] = True
            origin.hedges.remove(job.job_id)
            self.stats.hedges_won += 1
            if origin.done.all():
                if origin.job_id in self.jobs:
                    self._abandon(origin, now)
                    cancel.append(origin.job_id)
                self.ghosts.pop(origin.job_id, None)
                for h in origin.hedges:
                    hedge = self.jobs.get(h)
                    if hedge is not None:
                        self._abandon(hedge, now)
                        cancel.append(h)
        elif job.done is not None:
            # a straggler came back: deliver what its hedges did not, cancel the hedges
            positions = np.flatnonzero(~job.done)
            for h in job.hedges:
                hedge = self.jobs.get(h)
                if hedge is not None:
                    self._abandon(hedge, now)
                    cancel.append(h)
        idx, cls = job.idx[positions], job.cls[positions]
        self.remaining_by_class -= np.bincount(cls, minlength=self.t.n_classes)
        self.stats.record(d, idx, cls, self.t, now, queue_s, execution_s)
        if self.session_ttl[d] > 0:
            self._update_sessions(now, d)
        self.refresh_estimates(d)
        return Delivery(job.job_id, d, idx, cls, positions, tuple(cancel))

    def _origin(self, job: JobRecord) -> JobRecord | None:
        if job.origin is None:
            return None
        return self.jobs.get(job.origin) or self.ghosts.get(job.origin)

    def _fail(self, job: JobRecord) -> int:
        """Close a failed job; requeue its circuits that no live copy still covers. Returns
        how many were requeued."""
        self._close(job)
        origin = self._origin(job)
        if origin is not None:  # a copy failed
            origin.hedges.remove(job.job_id)
            if origin.job_id in self.jobs:
                return 0  # the straggler still covers its circuits
            return self._requeue_uncovered(origin)
        if job.done is None:
            self._requeue(job.idx, job.cls, job.device)
            return len(job.idx)
        # a straggler with copies failed: the copies carry on; keep its record so that no
        # circuit is delivered twice
        self.ghosts[job.job_id] = job
        return self._requeue_uncovered(job)

    def _requeue_uncovered(self, origin: JobRecord) -> int:
        assert origin.done is not None
        covered = origin.done.copy()
        for h in origin.hedges:
            hedge = self.jobs.get(h)
            if hedge is not None and hedge.offset is not None:
                covered[hedge.offset] = True
        lost = np.flatnonzero(~covered)
        if len(lost):
            self._requeue(origin.idx[lost], origin.cls[lost], origin.device)
            origin.done[lost] = True
        if origin.done.all() and not any(h in self.jobs for h in origin.hedges):
            self.ghosts.pop(origin.job_id, None)
        return len(lost)

    def on_failed(self, job_id: int, now: float, *, permanent: bool) -> tuple[int, ...]:
        """A job failed (``permanent``: the device is gone). Its tasks go back to the front
        unless another copy still runs them. Returns job ids the driver must cancel."""
        job = self.jobs.get(job_id)
        if job is None:
            return ()
        d = job.device
        self.stats.failures[d] += 1
        self.consecutive_failures[d] += 1
        self.stats.retries += self._fail(job)
        cancel: tuple[int, ...] = ()
        if permanent or self.consecutive_failures[d] >= self.cfg.max_failures:
            cancel = self.drop(d, now)
        self._lane(d, now)
        return cancel

    def _requeue(self, idx: np.ndarray, cls: np.ndarray, d: int) -> None:
        """Tasks placed on device ``d`` go back to the front (their fidelity loss there is
        refunded: they are charged again where they are placed next)."""
        self.fidelity_spent -= float(self.loss[cls, d].sum())
        self.front.appendleft((idx, cls))
        self.unplaced_by_class += np.bincount(cls, minlength=self.t.n_classes)

    def drop(self, d: int, now: float) -> tuple[int, ...]:
        """Stop using device ``d``: its queued work moves, its open jobs are cancelled."""
        if not self.alive[d]:
            return ()
        self.alive[d] = False
        self.stats.dropped.append(d)
        moved = 0
        while self.dev[d].local:
            idx, cls = self.dev[d].local.pop()
            self._requeue(idx, cls, d)
            moved += len(idx)
        self.local_count[d] = 0
        self.local_work[d] = 0.0
        cancel = []
        for job in list(self.dev[d].jobs.values()):
            cancel.append(job.job_id)
            moved += self._fail(job)
        self.stats.failovers += moved
        self._refresh_masks(force=True)
        bad = self.unplaceable_classes()
        if len(bad):
            raise DeviceUnavailableError(
                f"no device left that can run {int(self.remaining_by_class[bad].sum())} "
                f"remaining circuit(s) after losing device #{d}"
            )
        return tuple(cancel)

    # ------------------------------------------------------------------ timers
    def timeouts(self, now: float) -> list[int]:
        """Jobs past their time limit (treat as failed: cancel, then :meth:`on_failed`)."""
        out = []
        wq = self.learner.wait_quantile(3.0)
        fixed = self.cfg.job_timeout_s
        for job in self.jobs.values():
            limit = fixed if fixed is not None else 10.0 * (wq[job.device] + job.exec_s) + 60.0
            if now - job.submitted > limit:
                out.append(job.job_id)
        return out

    def next_wakeup(self, now: float) -> float | None:
        """When the driver should call :meth:`pump` again even if nothing happens."""
        if not self.jobs:
            return None
        ends = [j.expected_end for j in self.jobs.values() if j.expected_end > now]
        soonest = min(ends) if ends else np.inf
        ages = [now - j.submitted for j in self.jobs.values()]
        recheck = now + max(0.1 * float(np.median(ages)), 1e-3)
        return float(min(soonest, recheck))

    @property
    def finished(self) -> bool:
        return self.stats.delivered >= self.total

    def device_wait(self) -> np.ndarray:
        return self.wait
