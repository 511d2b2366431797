"""The async executor: drives the placement core with real devices on the wall clock.

One asyncio task per job: record ``submitting`` -> throttled, retried submission -> record
``submitted`` -> ``await job.result()``. The main loop waits for the first job to finish (or
the core's next wake-up), hands the outcome to the core, delivers results, cancels what the
core says to cancel (hedge losers, jobs on dropped devices, timed-out jobs) and submits what
the core places next. Every circuit index gets exactly one result; cancelling the awaiting
task cancels every job in flight.

Around it: ``_probing`` (device status, queues, cost tables, fail fast), ``_submission``
(throttle, retry, refusals), ``_recorder`` (what is recorded, where) and ``_report``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from multiqpu.device import Job, JobStatus, RunResult
from multiqpu.errors import DeviceUnavailableError, JobError, MultiQPUError, UntrustedDeviceError
from multiqpu.placement import recorded_allowed
from multiqpu.scheduler import _canaries as canaries
from multiqpu.scheduler._core import Core, Submission
from multiqpu.scheduler._costmodel import Item
from multiqpu.scheduler._options import Options
from multiqpu.scheduler._probing import Probe, probe
from multiqpu.scheduler._progress import Progress, wants_progress
from multiqpu.scheduler._recorder import RunRecorder, recorder_for, where_results_are
from multiqpu.scheduler._report import RunReport, SampleResult, TaskResult, build_report
from multiqpu.scheduler._submission import Refusals, Submitter, cancel_job
from multiqpu.scheduler._tables import ArraySource
from multiqpu.scheduler._timeline import TimelineRecorder

if TYPE_CHECKING:
    from multiqpu.device import CircuitResult
    from multiqpu.pool import DevicePool

__all__ = ["Attached", "execute"]

# polling a job on a session device for its start: first pause, longest pause (seconds)
START_POLL_S = (0.05, 5.0)


@dataclass
class Attached:
    """A job of an earlier attempt, re-attached at its provider (resume)."""

    device: int
    indices: list[int]
    job: Job
    row: int | None


@dataclass
class _Live:
    sub: Submission
    task: asyncio.Task[_Outcome] | None = None
    row: int | None = None  # the recorder's row while the job is open there
    job: Job | None = None
    started: bool = False  # the provider said it is running (watched on session devices)
    reported: bool = False  # ... and the core was told
    ride: canaries.Ride | None = None  # the job's canary (multiqpu.trust)


@dataclass
class _Outcome:
    job_id: int
    result: RunResult | None = None
    error: BaseException | None = None
    canary: CircuitResult | None = None


class _Executor:
    def __init__(
        self,
        pool: DevicePool,
        items: Sequence[Item],
        opts: Options,
        *,
        run_id: str,
        recorder: RunRecorder,
        monitor: canaries.Monitor | None = None,
    ) -> None:
        self.pool = pool
        self.monitor = monitor
        self.devices = list(pool)
        self.items = list(items)
        self.opts = opts
        self.run_id = run_id
        self.recorder = recorder
        self.results: list[TaskResult | None] = [None] * len(items)
        self.live: dict[int, _Live] = {}
        self.errors: dict[str, str] = {}
        self.submitter = Submitter(opts)
        self.refusals = Refusals(len(self.devices), [it.circuit.name for it in items], run_id)

    # ------------------------------------------------------------------ set-up
    async def prepare(self, indices: np.ndarray | None = None) -> None:
        """Query the devices, build the cost tables and fail fast if ``indices`` (default:
        all circuits) cannot all run."""
        self.probe: Probe = await probe(self.pool, self.items, self.opts, indices)
        self.tables = self.probe.tables
        self.cls = self.probe.cls

    def make_core(self, pending: np.ndarray) -> Core:
        p = self.probe
        return Core(
            p.tables,
            ArraySource(pending, p.cls[pending]),
            concurrency=p.concurrency,
            max_batch=p.max_batch,
            learner=p.learner,
            config=p.config,
            alive=p.alive,
            sessions=[d.session_ttl_s for d in self.devices],
        )

    def serve_from_cache(self) -> int:
        """Fill results the recorder's cache already holds; returns how many."""
        if self.opts.cache is False:
            return 0
        exact_only = self.opts.cache is None  # sampled repeats must be fresh draws
        from multiqpu.scheduler._policy import masks

        t = self.tables
        m = masks(
            self.opts.policy,
            fits=t.fits,
            fidelity=t.fidelity,
            price=t.price,
            alive=self.probe.alive,
            floor=t.floor,
            margin=self.opts.fidelity_margin,
        )
        prints = self.probe.fingerprints
        served = 0
        for i, item in enumerate(self.items):
            if self.results[i] is not None or (exact_only and item.shots is not None):
                continue
            c = int(self.cls[i])
            order = np.flatnonzero(m.preferred[c])
            order = order[np.argsort(-t.fidelity[c, order])]
            where = [(d, prints[d]) for d in order.tolist()]
            known = [(d, fp) for d, fp in where if fp is not None]
            hit = self.recorder.cached_result(
                item.circuit, item.shots, [(self.devices[d].spec, fp) for d, fp in known]
            )
            if hit is not None:
                d = known[hit[0]][0]
                self.results[i] = TaskResult(
                    i, self.devices[d].spec, "cache", hit[1], float(t.fidelity[c, d]), "cache"
                )
                served += 1
        return served

    # ------------------------------------------------------------------ jobs
    async def _lifecycle(self, rec: _Live) -> _Outcome:
        sub = rec.sub
        device = self.devices[sub.device]
        try:
            if rec.job is None:
                indices = [int(i) for i in sub.idx]
                shots = self.items[indices[0]].shots
                row = self.recorder.job_submitting(
                    self.run_id, device=device.spec, task_indices=indices, shots=shots
                )
                rec.row = row
                circuits = [self.items[i].circuit for i in indices]
                if self.monitor is not None:
                    rec.ride = self.monitor.pick(sub.device, circuits, shots)
                    circuits += rec.ride.circuits() if rec.ride else []
                rec.job = await self.submitter.submit(device, circuits, shots)
                if rec.ride is not None:
                    rec.ride.launch(device, self.submitter)
                self.recorder.job_submitted(row, rec.job.job_id)
            if device.session_ttl_s > 0:
                watcher = asyncio.ensure_future(self._watch(rec))
                try:
                    result = await rec.job.result()
                finally:
                    watcher.cancel()
            else:
                result = await rec.job.result()
            result, canary = await canaries.split_canary(result, rec.ride, len(sub.idx))
            if len(result.results) != len(sub.idx):
                raise JobError(
                    f"returned {len(result.results)} results for {len(sub.idx)} circuits",
                    job_id=rec.job.job_id,
                )
            return _Outcome(sub.job_id, result=result, canary=canary)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return _Outcome(sub.job_id, error=exc)

    async def _watch(self, rec: _Live) -> None:
        """Poll a job on a session device until it leaves the queue: once it runs, the
        session is live and the core may feed it (its next jobs do not queue)."""
        assert rec.job is not None
        pause = START_POLL_S[0]
        while True:
            try:
                state = await rec.job.status()
            except Exception:  # a failed poll says nothing; the result will tell
                state = JobStatus.QUEUED
            if state is not JobStatus.QUEUED:
                rec.started = True
                self._start_signal.set()  # wake the loop: the session can be fed now
                return
            await asyncio.sleep(pause)
            pause = min(2 * pause, START_POLL_S[1])

    def _report_starts(self, core: Core, now: float) -> None:
        for rec in list(self.live.values()):
            if rec.started and not rec.reported:
                rec.reported = True
                for other in core.on_started(rec.sub.job_id, now):
                    self._cancel(other)

    def _launch(self, sub: Submission, *, job: Job | None = None, row: int | None = None) -> None:
        rec = _Live(sub, job=job, row=row)
        rec.task = asyncio.ensure_future(self._lifecycle(rec))
        self.live[sub.job_id] = rec
        self.progress.submitted(sub.device, len(sub.idx))

    def _cancel(self, job_id: int) -> None:
        rec = self.live.pop(job_id, None)
        if rec is None:
            return
        self._release(rec)
        if rec.task is not None:
            rec.task.cancel()
        if rec.job is not None:
            self._background(cancel_job(rec.job))
        if rec.row is not None:
            self.recorder.job_cancelled(rec.row)

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # ------------------------------------------------------------------ the loop
    async def run(self, core: Core, attached: Sequence[Attached] = ()) -> SampleResult:
        loop = asyncio.get_running_loop()
        self._cancels: set[asyncio.Task[Any]] = set()
        self._start_signal = asyncio.Event()
        t0 = loop.time()
        wall0 = time.time()

        def now() -> float:
            return loop.time() - t0

        preset = sum(r is not None for r in self.results)
        self.progress = Progress(
            [d.spec for d in self.devices],
            len(self.items),
            enabled=wants_progress(self.opts.progress, len(self.items)),
        )
        self.progress.preset(preset)
        try:
            for a in attached:
                idx = np.array(a.indices, dtype=np.int64)
                job_id = core.attach(a.device, idx, self.cls[idx], now())
                self._launch(
                    Submission(job_id, a.device, idx, self.cls[idx], 0), job=a.job, row=a.row
                )
            for sub in core.pump(now()):
                self._launch(sub)
            while not core.finished:
                deadline = self.opts.deadline_s
                if deadline is not None and now() > deadline:
                    raise JobError(
                        f"the run missed its deadline_s={deadline:g}: "
                        f"{sum(r is None for r in self.results)} circuit(s) unfinished; "
                        f"{where_results_are(self.recorder, self.run_id)}"
                    )
                wake = core.next_wakeup(now())
                timeout = 1.0 if wake is None else min(max(wake - now(), 0.002), 1.0)
                if deadline is not None:
                    timeout = max(min(timeout, deadline - now()), 0.0)
                tasks = {r.task for r in self.live.values() if r.task is not None}
                if not tasks:
                    subs = core.pump(now())
                    if not subs:
                        raise JobError("the scheduler stalled with work left (internal error)")
                    for sub in subs:
                        self._launch(sub)
                    continue
                waiter = asyncio.ensure_future(self._start_signal.wait())
                await asyncio.wait(
                    {*tasks, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                self._start_signal.clear()
                self._report_starts(core, now())
                for task in tasks:
                    if task.done() and not task.cancelled():
                        self._handle(core, task.result(), now(), wall0)
                for job_id in (timed := core.timeouts(now())):  # all recorded first: a
                    self._fail_record(job_id, "timed out", final=False)  # failover cancels
                for job_id in timed:
                    if (late := self.live.get(job_id)) is not None:
                        self.errors[self.devices[late.sub.device].spec] = "timed out"
                        self._cancel(job_id)
                        for other in core.on_failed(job_id, now(), permanent=False):
                            self._cancel(other)
                for sub in core.pump(now()):
                    self._launch(sub)
            missing = [i for i, r in enumerate(self.results) if r is None]
            if missing:
                raise JobError(f"internal error: no result for circuits {missing[:10]}")
            for job_id in list(self.live):
                self._cancel(job_id)
            makespan = now()
            if self._cancels:  # let the cancellations reach the providers
                await asyncio.wait(list(self._cancels), timeout=0.5)
        except BaseException as exc:
            for job_id in list(self.live):
                self._cancel(job_id)
            if self._cancels:
                await asyncio.shield(asyncio.wait(list(self._cancels), timeout=30))
            self._finish(core, "cancelled" if isinstance(exc, asyncio.CancelledError) else "failed")
            raise
        finally:
            self.progress.close()
        self._finish(core, "done")
        return SampleResult(tuple(self.results), self._report(core, makespan))  # type: ignore[arg-type]

    def _fail_record(self, job_id: int, error: str, *, final: bool) -> None:
        rec = self.live.get(job_id)
        if rec is not None and rec.row is not None:
            self.recorder.job_failed(rec.row, error, final=final)
            rec.row = None

    def _handle(self, core: Core, out: _Outcome, now: float, wall0: float) -> None:
        rec = self.live.get(out.job_id)
        if rec is None:
            return  # cancelled meanwhile
        d = rec.sub.device
        spec = self.devices[d].spec
        if out.error is not None:
            err = out.error
            self.errors[spec] = f"{type(err).__name__}: {err}"
            self._fail_record(out.job_id, str(err), final=False)
            self.live.pop(out.job_id, None)
            self._release(rec)
            self.refusals.note(err, rec.sub.idx.tolist(), spec)  # bad input: stops at a limit
            permanent = isinstance(err, DeviceUnavailableError)
            for other in core.on_failed(out.job_id, now, permanent=permanent):
                self._cancel(other)
            return
        result = out.result
        assert result is not None
        self.live.pop(out.job_id, None)
        delivery = core.on_done(
            out.job_id,
            now,
            queue_s=result.timings.queue_s,
            execution_s=result.timings.execution_s,
        )
        flags = []
        if self.monitor is not None:
            got = [] if delivery is None else delivery.idx.tolist()
            canary = rec.ride.canary if rec.ride is not None else None
            flags = self.monitor.on_delivery(d, got, canary, out.canary)
        if rec.row is not None:
            if delivery is None:
                self.recorder.job_cancelled(rec.row)
            else:
                self.recorder.job_done(
                    rec.row,
                    list(result.results),
                    calibration_fingerprint=self.probe.fingerprints[d],
                    timings=result.timings,
                )
        if delivery is None:
            for flag in flags:
                self._quarantine(core, flag, now)
            return
        for pos, i, c in zip(
            delivery.positions.tolist(), delivery.idx.tolist(), delivery.cls.tolist(), strict=True
        ):
            if self.results[i] is not None:
                raise JobError(f"internal error: circuit {i} would get a second result")
            self.results[i] = TaskResult(
                i,
                spec,
                result.job_id,
                result.results[pos],
                float(self.tables.fidelity[c, d]),
            )
        self.progress.done(d, len(delivery.idx))
        for other in delivery.cancel:
            self._cancel(other)
        for flag in flags:
            self._quarantine(core, flag, now)

    def _release(self, rec: _Live) -> None:
        if self.monitor is not None and rec.ride is not None:
            self.monitor.release(rec.sub.device, rec.ride)
            rec.ride = None

    def _quarantine(self, core: Core, flag: canaries.Flag, now: float) -> None:
        """A device failed its canary checks (see :mod:`multiqpu.trust`)."""
        spec = self.devices[flag.device].spec
        self.errors[spec] = f"failed its canary checks: {flag.reason}"
        mode = self.opts.trust.mode if self.opts.trust is not None else "flag"
        if mode == "fail":
            raise UntrustedDeviceError(spec, flag.reason)
        if mode != "quarantine":
            return
        for other in core.drop(flag.device, now):
            self._cancel(other)
        idx = np.array(flag.rerun, dtype=np.int64)
        if len(idx):
            self.recorder.results_quarantined(self.run_id, spec, flag.rerun, flag.reason)
            for i in flag.rerun:
                self.results[i] = None
            core.reopen(idx, self.cls[idx], flag.device)

    def _finish(self, core: Core, state: str) -> None:
        known = self.pool.knowledge
        for d, device in enumerate(self.devices):
            known[device.spec] = core.learner.knowledge(d)
        with contextlib.suppress(MultiQPUError):
            self.recorder.finish_run(self.run_id, state)  # type: ignore[arg-type]

    def _report(self, core: Core, makespan: float) -> RunReport:
        return build_report(
            run_id=self.run_id,
            policy=self.opts.policy,
            devices=[d.spec for d in self.devices],
            results=self.results,
            stats=core.stats,
            learner=core.learner,
            makespan_s=makespan,
            retries=self.submitter.retries,
            errors=self.errors,
            unpriced=self.probe.unpriced,
            timeline=self.recorder.spans() if isinstance(self.recorder, TimelineRecorder) else (),
        )


async def execute(
    pool: DevicePool,
    items: Sequence[Item],
    opts: Options,
    *,
    journal: RunRecorder | None = None,
    resume: tuple[str, dict[int, tuple[str, CircuitResult]], list[Attached]] | None = None,
) -> SampleResult:
    """Run ``items`` on ``pool``'s devices, recording the run in ``journal`` (a
    :class:`~multiqpu.journal.Journal` or any :class:`RunRecorder`; None: nothing recorded).
    ``resume``: (run id, results already recorded, jobs re-attached at their providers) of an
    interrupted run."""
    run_id = resume[0] if resume else (opts.run_id or _new_run_id())
    recorder = TimelineRecorder(recorder_for(journal))  # keeps each job's span for the report
    monitor = canaries.monitor_for(opts.trust, pool, items, resume is not None)
    ex = _Executor(pool, items, opts, run_id=run_id, recorder=recorder, monitor=monitor)
    attached: list[Attached] = []
    if resume is not None:
        _, done, attached = resume
        busy = set(done) | {i for a in attached for i in a.indices}
        await ex.prepare(np.array([i for i in range(len(items)) if i not in busy], dtype=np.int64))
        for i, (spec, result) in done.items():
            d = next((k for k, dev in enumerate(ex.devices) if dev.spec == spec), None)
            fid = float(ex.tables.fidelity[ex.cls[i], d]) if d is not None else None
            ex.results[i] = TaskResult(i, spec, "journal", result, fid, "journal")
    else:
        await ex.prepare()
        recorder.start_run(
            run_id,
            circuits=[it.circuit for it in items],
            shots=[it.shots for it in items],
            options={**opts.recordable(), **recorded_allowed(items)},
        )
    ex.serve_from_cache()
    busy = {i for a in attached for i in a.indices}
    pending = np.array(
        [i for i, r in enumerate(ex.results) if r is None and i not in busy], dtype=np.int64
    )
    core = ex.make_core(pending)
    for flag in monitor.newly_flagged() if monitor is not None else ():
        ex._quarantine(core, flag, 0.0)  # flagged by an earlier run on this pool
    core.stats.cached = sum(r is not None and r.source == "cache" for r in ex.results)
    out = await ex.run(core, attached)
    return out if monitor is None else canaries.finish_trust(out, monitor, items)


def _new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
