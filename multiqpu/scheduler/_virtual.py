"""The virtual clock: a discrete-event simulation of simulated devices driven by the same
placement core as the async executor.

Device model (per :class:`~multiqpu.scheduler.SimDevice`): a job submitted at ``s`` waits
``wait(s)`` in the vendor's queue (its median, times the daily cycle, times a slowly drifting
load, times per-job jitter; outage windows pause it), then runs on the device's single
execution lane after our earlier jobs there: ``overhead + sum(shots x per-shot time) x
speed_bias`` with 5 % jitter. Jobs fail with the device's failure rate; a device ``lost_at``
some time fails everything it holds and refuses new work.

Baselines run through the same event loop with a fixed placement: ``least_busy`` (every
circuit to the device reporting the fewest pending jobs, qiskit-ibm-runtime's
``least_busy()`` rule) and ``round_robin``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from multiqpu.scheduler._baselines import FixedCore
from multiqpu.scheduler._core import Core, CoreConfig, Submission
from multiqpu.scheduler._learning import DeviceKnowledge, Learner
from multiqpu.scheduler._simfleet import SESSION_LATENCY_S, SimDevice, Workload, fleet_arrays
from multiqpu.scheduler._stats import Stats
from multiqpu.scheduler._tables import ClassTables, StreamSource

__all__ = ["REDUNDANCY", "QueueProcess", "SimRun", "run_virtual"]

_GRID_S = 900.0  # the drifting load is sampled every 15 minutes
_JITTER_S = 60.0  # jobs submitted within the same minute share their jitter (same queue spot)
_DRIFT_MEMORY_S = 7200.0
_KEEP = 1024  # rows of queue state kept behind the current time (memory stays flat)
REPORTED_JOB_S = 60.0  # the scheduler's prior: each pending job ahead costs a minute
# queued copies per job on the virtual clock: it tells the core when each job starts running
# (Core.on_started), so a copy that loses the start is cancelled while still queued
REDUNDANCY = 2


class QueueProcess:
    """The queue state of every device over virtual time (seeded, extended lazily)."""

    def __init__(self, devices: Sequence[SimDevice], *, seed: int, epoch_s: float) -> None:
        self.devices = list(devices)
        self.epoch_s = epoch_s
        seeds = np.random.SeedSequence(seed).spawn(2)
        self._rng = np.random.default_rng(seeds[0])
        self._rng_eta = np.random.default_rng(seeds[1])
        self._rho = math.exp(-_GRID_S / _DRIFT_MEMORY_S)
        self._z = self._rng.standard_normal((1, len(self.devices)))
        self._z_off = 0  # grid index of self._z[0]
        self._eta = np.empty((0, len(self.devices)))
        self._eta_off = 0

    def _extend(self, upto: int) -> None:
        upto -= self._z_off
        # extend first, then forget: a jump further ahead than the rows kept must not
        # drop the last row the process continues from (the same draws either way)
        while self._z.shape[0] <= upto:
            n = max(upto + 1 - self._z.shape[0], 64)
            new = np.empty((n, self._z.shape[1]))
            prev: np.ndarray = self._z[-1]
            eps: np.ndarray = self._rng.standard_normal((n, self._z.shape[1]))
            s = math.sqrt(1 - self._rho**2)
            for i in range(n):
                prev = self._rho * prev + s * eps[i]
                new[i] = prev
            self._z = np.vstack([self._z, new])
        if upto >= 4 * _KEEP:  # time only moves forward: forget the distant past
            drop = upto - _KEEP
            self._z = self._z[drop:]
            self._z_off += drop

    def level(self, d: int, t: float) -> float:
        """The wait a job submitted at ``t`` would see, before per-job jitter."""
        dev = self.devices[d]
        g = max(t, 0.0) / _GRID_S
        i = int(g)
        self._extend(i + 1)
        frac = g - i
        j = i - self._z_off
        if j < 0:
            raise ValueError("QueueProcess only moves forward in time")
        z = (1 - frac) * self._z[j, d] + frac * self._z[j + 1, d]
        return dev.median_wait_s * dev.load(t, self.epoch_s) * math.exp(dev.wait_drift * z)

    def wait(self, d: int, t: float) -> float:
        """The wait of a job submitted at ``t`` (jobs submitted within the same minute queue
        next to each other and share the per-job jitter)."""
        i = int(max(t, 0.0) // _JITTER_S) - self._eta_off
        if i < 0:
            raise ValueError("QueueProcess only moves forward in time")
        if i >= 4 * _KEEP:  # forget the distant past
            drop = i - _KEEP
            self._eta = self._eta[drop:]
            self._eta_off += drop
            i -= drop
        while i >= self._eta.shape[0]:
            block = self._rng_eta.standard_normal((256, len(self.devices)))
            self._eta = np.vstack([self._eta, block])
        return self.level(d, t) * math.exp(self.devices[d].wait_jitter * self._eta[i, d])

    def earliest_start(self, d: int, t: float = 0.0) -> float:
        """The earliest time any job submitted at or after ``t`` could start on device ``d``
        (ignoring outages): ``min over s >= t of s + wait(s)``."""
        best = t + self.wait(d, t)
        s = (t // _JITTER_S + 1) * _JITTER_S
        while s < best:
            best = min(best, s + self.wait(d, s))
            s += _JITTER_S
        return best

    def pending(self, d: int, t: float) -> int:
        dev = self.devices[d]
        n = round(self.level(d, t) / max(dev.others_job_s, 1e-9))
        return min(n, dev.pending_cap) if dev.pending_cap is not None else n


@dataclass
class _SimJob:
    sub: Submission
    submitted: float
    state: str = "waiting"  # waiting -> ready -> running -> done/failed/cancelled
    started: float = 0.0
    exec_s: float = 0.0


@dataclass
class SimRun:
    """What one virtual run produced (aggregates only)."""

    stats: Stats
    devices: tuple[str, ...]
    knowledge: tuple[DeviceKnowledge, ...] = ()
    wall_s: float = 0.0
    events: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def tables_for(devices: Sequence[SimDevice], workload: Workload) -> ClassTables:
    arr = fleet_arrays(devices, workload)
    n = len(workload.circuits)
    return ClassTables(
        fits=arr["fits"],
        fidelity=arr["fidelity"],
        raw_s=arr["raw_s"],
        price=arr["price"],
        floor=np.zeros(n),
        group=np.zeros(n, dtype=np.int64),
        shots=arr["shots"],
        weight=workload.probabilities(),
    )


def run_virtual(
    devices: Sequence[SimDevice],
    workload: Workload,
    *,
    strategy: str = "multiqpu",
    config: CoreConfig | None = None,
    seed: int = 0,
    epoch_s: float = 10 * 3600.0,
    knowledge: Sequence[DeviceKnowledge | None] | None = None,
    queues: QueueProcess | None = None,
    start_s: float = 0.0,
) -> SimRun:
    """Run ``workload`` on ``devices`` in virtual time; ``strategy`` is ``"multiqpu"`` (the
    placement core with ``config``), ``"least_busy"`` or ``"round_robin"``."""
    import time as _time

    tic = _time.perf_counter()
    tables = tables_for(devices, workload)
    source = StreamSource(workload.n, workload.probabilities(), seed=seed + 1)
    queues = queues or QueueProcess(devices, seed=seed + 2, epoch_s=epoch_s)
    nd = len(devices)
    core: Core | FixedCore
    if strategy == "multiqpu":
        reported = [queues.pending(d, start_s) * REPORTED_JOB_S for d in range(nd)]
        learner = Learner(
            nd,
            reported_wait_s=reported,
            prior_overhead_s=[5.0] * nd,
            knowledge=knowledge,
        )
        core = Core(
            tables,
            source,
            concurrency=[dev.max_concurrent_jobs for dev in devices],
            max_batch=[dev.max_circuits_per_job for dev in devices],
            learner=learner,
            config=config or CoreConfig(redundancy=REDUNDANCY),
            now=start_s,
            sessions=[dev.session_ttl_s for dev in devices],
        )
    elif strategy in ("least_busy", "round_robin"):
        fits_all = tables.fits[workload.probabilities() > 0].all(axis=0)
        cand = np.flatnonzero(fits_all)
        qp = queues

        def least_busy(now: float) -> list[int]:
            """The devices that fit, fewest pending jobs first (as reported at ``now``)."""
            pend = [qp.pending(int(d), now) for d in cand]
            return [int(d) for d in cand[np.argsort(pend, kind="stable")]]

        if strategy == "least_busy":
            device_of = np.full(workload.n, least_busy(start_s)[0])
        else:
            device_of = cand[np.arange(workload.n) % len(cand)]
        core = FixedCore(tables, source, device_of, devices, least_busy)
        core.stats.start = start_s
        core.stats.end = start_s
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    engine = _Engine(devices, queues, core, tables, seed=seed + 3)
    engine.run(start_s)
    run = SimRun(
        stats=core.stats,
        devices=tuple(d.name for d in devices),
        wall_s=_time.perf_counter() - tic,
        events=engine.events,
    )
    if isinstance(core, Core):
        run.knowledge = tuple(core.learner.knowledge(d) for d in range(nd))
        run.extra["learned_wait_s"] = float(np.mean(core.learner.wait()))
    return run


class _Engine:
    """The heapq event loop."""

    def __init__(
        self,
        devices: Sequence[SimDevice],
        queues: QueueProcess,
        core: Core | FixedCore,
        tables: ClassTables,
        *,
        seed: int,
    ) -> None:
        self.devices = list(devices)
        self.queues = queues
        self.core = core
        self.tables = tables
        self.rng = np.random.default_rng(seed)
        self.heap: list[tuple[float, int, str, int]] = []
        self.seq = 0
        self.jobs: dict[int, _SimJob] = {}
        self.ready: list[deque[int]] = [deque() for _ in devices]
        self.running: list[int | None] = [None] * len(devices)
        # sessions (SimDevice.session_ttl_s): live while a job of ours runs or is ready
        # there, and until this time after the last one ended
        self.session_until = [-math.inf] * len(devices)
        self.events = 0
        self.wake_at = math.inf
        self.speed = np.array([d.speed_bias for d in devices])

    def push(self, t: float, kind: str, ref: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, ref))

    def run(self, start: float) -> None:
        for d, dev in enumerate(self.devices):
            if dev.lost_at is not None:
                self.push(max(dev.lost_at, start), "lost", d)
        self.react(start, self.core.pump(start))
        while self.heap and not self.core.finished:
            t, _, kind, ref = heapq.heappop(self.heap)
            self.events += 1
            if kind == "ready":
                self.on_ready(t, ref)
                continue
            if kind == "end":
                self.on_end(t, ref)
            elif kind == "fail":
                self.on_fail(t, ref, permanent=False)
            elif kind == "fail_perm":
                self.on_fail(t, ref, permanent=True)
            elif kind == "lost":
                self.on_lost(t, ref)
            elif kind == "wake":
                if t != self.wake_at:
                    continue
                self.wake_at = math.inf
                for job_id in self.core.timeouts(t):
                    self.cancel(t, job_id)
                    self.react(t, (), self.core.on_failed(job_id, t, permanent=False))
            self.react(t, self.core.pump(t))
        if not self.core.finished:
            raise RuntimeError("virtual run stalled: no events left but work remains")

    def react(self, now: float, subs: Sequence[Submission], cancel: Sequence[int] = ()) -> None:
        for job_id in cancel:
            self.cancel(now, job_id)
        for sub in subs:
            self.submit(now, sub)
        wake = self.core.next_wakeup(now)
        if wake is not None and wake < self.wake_at:
            self.wake_at = wake
            self.push(wake, "wake", 0)

    def submit(self, now: float, sub: Submission) -> None:
        dev = self.devices[sub.device]
        job = _SimJob(sub, now)
        self.jobs[sub.job_id] = job
        if dev.lost_at is not None and now >= dev.lost_at:
            self.push(now, "fail_perm", sub.job_id)
            self.push(now, "lost", sub.device)
            return
        if self.in_session(sub.device, now):
            self.push(dev.outage_end(now + SESSION_LATENCY_S), "ready", sub.job_id)
            return
        wait = self.queues.wait(sub.device, now)
        self.push(dev.outage_end(now + wait), "ready", sub.job_id)

    def in_session(self, d: int, now: float) -> bool:
        if self.devices[d].session_ttl_s <= 0:
            return False
        return self.running[d] is not None or bool(self.ready[d]) or now <= self.session_until[d]

    def open_session(self, t: float, d: int) -> None:
        """Our first job started on a session device: our jobs still in its queue are in the
        same session and become ready now."""
        for job_id, job in self.jobs.items():
            if job.sub.device == d and job.state == "waiting":
                job.state = "ready"
                self.ready[d].append(job_id)

    def on_ready(self, t: float, job_id: int) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.state != "waiting":
            return
        job.state = "ready"
        d = job.sub.device
        self.ready[d].append(job_id)
        if self.running[d] is None:
            self.start_next(t, d)

    def start_next(self, t: float, d: int) -> None:
        dev = self.devices[d]
        while self.ready[d]:
            job_id = self.ready[d].popleft()
            job = self.jobs.get(job_id)
            if job is None or job.state != "ready":
                continue
            if dev.session_ttl_s > 0 and t > self.session_until[d]:  # the lane was idle
                self.open_session(t, d)
            job.state = "running"
            job.started = t
            self.running[d] = job_id
            raw = float(self.tables.raw_s[job.sub.cls, d].sum())
            job.exec_s = (dev.overhead_s + raw * self.speed[d]) * math.exp(
                0.05 * self.rng.standard_normal()
            )
            on_started = getattr(self.core, "on_started", None)
            if on_started is not None:
                for other in on_started(job_id, t):
                    self.cancel(t, other)
            if dev.failure_rate > 0 and self.rng.random() < dev.failure_rate:
                self.push(t + min(job.exec_s, dev.overhead_s), "fail", job_id)
            else:
                self.push(t + job.exec_s, "end", job_id)
            return

    def _free_lane(self, t: float, d: int, job_id: int) -> None:
        if self.running[d] == job_id:
            self.running[d] = None
            self.session_until[d] = t + self.devices[d].session_ttl_s
            self.start_next(t, d)

    def on_end(self, t: float, job_id: int) -> None:
        job = self.jobs.pop(job_id, None)
        if job is None or job.state != "running":
            return
        job.state = "done"
        self._free_lane(t, job.sub.device, job_id)
        delivery = self.core.on_done(
            job_id, t, queue_s=job.started - job.submitted, execution_s=t - job.started
        )
        if delivery is not None:
            for other in delivery.cancel:
                self.cancel(t, other)

    def on_fail(self, t: float, job_id: int, *, permanent: bool) -> None:
        job = self.jobs.pop(job_id, None)
        if job is None or job.state in ("done", "cancelled", "failed"):
            return
        job.state = "failed"
        self._free_lane(t, job.sub.device, job_id)
        for other in self.core.on_failed(job_id, t, permanent=permanent):
            self.cancel(t, other)

    def on_lost(self, t: float, d: int) -> None:
        for job_id in [j for j, job in self.jobs.items() if job.sub.device == d]:
            self.on_fail(t, job_id, permanent=True)

    def cancel(self, t: float, job_id: int) -> None:
        job = self.jobs.pop(job_id, None)
        if job is None:
            return
        was_running = job.state == "running"
        job.state = "cancelled"
        if was_running:
            self._free_lane(t, job.sub.device, job_id)
