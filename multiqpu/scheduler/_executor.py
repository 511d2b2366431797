"""The async executor: drives the placement core with real devices on the wall clock.

One asyncio task per job: journal ``submitting`` -> throttled, retried ``device.submit`` ->
journal ``submitted`` -> ``await job.result()``. The main loop waits for the first job to
finish (or the core's next wake-up), hands the outcome to the core, delivers results, cancels
what the core says to cancel (hedge losers, jobs on dropped devices, timed-out jobs) and
submits what the core places next. Every circuit index gets exactly one result; cancelling the
awaiting task cancels every job in flight.
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

from multiqpu.device import DeviceStatus, Job, JobStatus, RunResult
from multiqpu.errors import (
    DeviceUnavailableError,
    JobError,
    MultiQPUError,
    TransientProviderError,
)
from multiqpu.scheduler._core import Core, CoreConfig, Submission
from multiqpu.scheduler._costmodel import Item, build_tables
from multiqpu.scheduler._feasibility import check_feasible
from multiqpu.scheduler._learning import Learner
from multiqpu.scheduler._options import Options
from multiqpu.scheduler._progress import Progress, wants_progress
from multiqpu.scheduler._report import DeviceReport, RunReport, SampleResult, TaskResult
from multiqpu.scheduler._tables import ArraySource

if TYPE_CHECKING:
    from multiqpu.device import CircuitResult, Device
    from multiqpu.journal import Journal
    from multiqpu.pool import DevicePool

__all__ = ["Attached", "execute"]

REPORTED_JOB_S = 60.0  # prior: seconds of wait per pending job when only a count is known
_STATUS_TIMEOUT_S = 20.0
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
    row: int | None = None
    job: Job | None = None
    started: bool = False  # the provider said it is running (watched on session devices)
    reported: bool = False  # ... and the core was told


@dataclass
class _Outcome:
    job_id: int
    result: RunResult | None = None
    error: BaseException | None = None


async def _cancel_job(job: Job) -> None:
    """Ask the provider to cancel, then collect the job's outcome so that nothing is left
    unretrieved (a cancelled job usually raises :class:`JobError` at once)."""
    with contextlib.suppress(Exception):
        await job.cancel()
    with contextlib.suppress(Exception, asyncio.TimeoutError):
        await asyncio.wait_for(job.result(), timeout=5.0)


def _concurrency(opts: Options, device: Device) -> int:
    c = opts.concurrency
    if c is None:
        return device.limits.max_concurrent_jobs
    if isinstance(c, int):
        return c
    return int(c.get(device.spec, c.get(device.name, device.limits.max_concurrent_jobs)))


async def _status(device: Device) -> bool:
    """Whether the device takes work now (unknown counts as yes)."""
    try:
        status = await asyncio.wait_for(device.status(), _STATUS_TIMEOUT_S)
    except DeviceUnavailableError:
        return False
    except Exception:
        return True
    return status not in (DeviceStatus.OFFLINE, DeviceStatus.MAINTENANCE)


async def _reported(device: Device) -> tuple[float, str]:
    """The queue report as a prior wait in seconds, and what kind of report it was."""
    try:
        q = await asyncio.wait_for(device.queue_estimate(), _STATUS_TIMEOUT_S)
    except Exception:
        return 0.0, "none"
    if q.expected_wait_s is not None:
        return max(float(q.expected_wait_s), 0.0), "estimate"
    if q.pending_jobs is not None:
        return max(float(q.pending_jobs), 0.0) * REPORTED_JOB_S, "pending"
    return 0.0, "none"


class _Executor:
    def __init__(
        self,
        pool: DevicePool,
        items: Sequence[Item],
        opts: Options,
        *,
        run_id: str,
        journal: Journal | None,
    ) -> None:
        self.pool = pool
        self.devices = list(pool)
        self.items = list(items)
        self.opts = opts
        self.run_id = run_id
        self.journal = journal
        self.results: list[TaskResult | None] = [None] * len(items)
        self.live: dict[int, _Live] = {}
        self.retries = 0
        self.errors: dict[str, str] = {}
        self.fingerprints: list[str | None] = []
        from asyncio_throttle import Throttler

        self.throttlers = {
            p: Throttler(rate_limit=int(calls), period=float(period))
            for p, (calls, period) in opts.rate_limits.items()
        }

    # ------------------------------------------------------------------ set-up
    async def prepare(self, indices: np.ndarray | None = None) -> None:
        """Query the devices, build the cost tables and fail fast if ``indices`` (default:
        all circuits) cannot all run."""
        alive = await asyncio.gather(*(_status(d) for d in self.devices))
        reports = await asyncio.gather(*(_reported(d) for d in self.devices))
        tables, cls, reasons = await build_tables(self.devices, self.items)
        opts = self.opts
        concurrency = [_concurrency(opts, d) for d in self.devices]
        known = self.pool.knowledge
        learner = Learner(
            len(self.devices),
            reported_wait_s=[r[0] for r in reports],
            prior_overhead_s=[0.05 if d.provider == "local" else 5.0 for d in self.devices],
            knowledge=[known.get(d.spec) for d in self.devices],
            report_kind=[r[1] for r in reports],
            # a simulator's run time has little to do with shots x gate durations
            speed_sigma=[3.0 if d.provider == "local" else 0.3 for d in self.devices],
        )
        self.fingerprints = await asyncio.to_thread(self._fingerprints)
        config = CoreConfig(
            policy=opts.policy,
            fidelity_margin=opts.fidelity_margin,
            max_slowdown=opts.max_slowdown,
            patience_s=opts.patience_s,
            budget_usd=opts.budget_usd,
            deadline_at=opts.deadline_s,
            hedging=opts.hedging,
            job_timeout_s=opts.job_timeout_s,
            explore=opts.explore,
            # queued copies need to know when a job starts running, which the executor does
            # not watch yet: without that, copies would run to the end as hedges
            redundancy=0,
        )
        self.tables = tables
        self.cls = cls
        self.concurrency = concurrency
        self.max_batch = [d.limits.max_circuits_per_job for d in self.devices]
        self.learner = learner
        self.config = config
        self.alive = np.array(alive, dtype=bool)
        check_feasible(self.devices, self.items, tables, cls, reasons, alive, opts, indices)

    def _make_core(self, pending: np.ndarray) -> Core:
        source = ArraySource(pending, self.cls[pending])
        return Core(
            self.tables,
            source,
            concurrency=self.concurrency,
            max_batch=self.max_batch,
            learner=self.learner,
            config=self.config,
            alive=self.alive,
            sessions=[d.session_ttl_s for d in self.devices],
        )

    def _fingerprints(self) -> list[str | None]:
        out: list[str | None] = []
        for d in self.devices:
            try:
                out.append(d.calibration().fingerprint())
            except Exception:
                out.append(None)
        return out

    def serve_from_cache(self) -> int:
        """Fill results the journal's cache already holds; returns how many."""
        if self.journal is None or self.opts.cache is False:
            return 0
        exact_only = self.opts.cache is None  # sampled repeats must be fresh draws
        from multiqpu._transpile import circuit_key
        from multiqpu.scheduler._policy import masks

        t = self.tables
        m = masks(
            self.opts.policy,
            fits=t.fits,
            fidelity=t.fidelity,
            price=t.price,
            alive=self.alive,
            floor=t.floor,
            margin=self.opts.fidelity_margin,
        )
        served = 0
        for i, item in enumerate(self.items):
            if self.results[i] is not None or (exact_only and item.shots is not None):
                continue
            c = int(self.cls[i])
            order = np.flatnonzero(m.preferred[c])
            order = order[np.argsort(-t.fidelity[c, order])]
            key: str | None = None
            for d in order.tolist():
                fp = self.fingerprints[d]
                if fp is None:
                    continue
                key = key or circuit_key(item.circuit)
                hit = self.journal.cached(key, item.shots, self.devices[d].spec, fp)
                if hit is not None:
                    self.results[i] = TaskResult(
                        i, self.devices[d].spec, "cache", hit, float(t.fidelity[c, d]), "cache"
                    )
                    served += 1
                    break
        return served

    # ------------------------------------------------------------------ jobs
    async def _submit(self, device: Device, circuits: list[Any], shots: int | None) -> Job:
        from tenacity import (
            AsyncRetrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_exponential_jitter,
        )

        throttler = self.throttlers.get(device.provider)
        b = self.opts.backoff_s
        job: Job | None = None
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransientProviderError),
            stop=stop_after_attempt(self.opts.retries),
            wait=wait_exponential_jitter(multiplier=b, max=30 * b, jitter=b),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self.retries += 1
                if throttler is not None:
                    await throttler.acquire()
                job = await device.submit(circuits, shots)
        assert job is not None
        return job

    async def _lifecycle(self, rec: _Live) -> _Outcome:
        sub = rec.sub
        device = self.devices[sub.device]
        try:
            if rec.job is None:
                indices = [int(i) for i in sub.idx]
                shots = self.items[indices[0]].shots
                if self.journal is not None:
                    rec.row = self.journal.job_submitting(
                        self.run_id, device=device.spec, task_indices=indices, shots=shots
                    )
                rec.job = await self._submit(
                    device, [self.items[i].circuit for i in indices], shots
                )
                if self.journal is not None and rec.row is not None:
                    self.journal.job_submitted(rec.row, rec.job.job_id)
            if device.session_ttl_s > 0:
                watcher = asyncio.ensure_future(self._watch(rec))
                try:
                    result = await rec.job.result()
                finally:
                    watcher.cancel()
            else:
                result = await rec.job.result()
            if len(result.results) != len(sub.idx):
                raise JobError(
                    f"returned {len(result.results)} results for {len(sub.idx)} circuits",
                    job_id=rec.job.job_id,
                )
            return _Outcome(sub.job_id, result=result)
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
        if rec.task is not None:
            rec.task.cancel()
        if rec.job is not None:
            self._background(_cancel_job(rec.job))
        if self.journal is not None and rec.row is not None:
            self.journal.job_cancelled(rec.row)

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
                        f"finished results are in the journal (run {self.run_id})"
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
                for job_id in core.timeouts(now()):
                    cancel = core.on_failed(job_id, now(), permanent=False)
                    self.errors[self.devices[self.live[job_id].sub.device].spec] = "timed out"
                    self._fail_record(job_id, "timed out", final=False)
                    self._cancel(job_id)
                    for other in cancel:
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
        if self.journal is not None and rec is not None and rec.row is not None:
            self.journal.job_failed(rec.row, error, final=final)
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
        if self.journal is not None and rec.row is not None:
            if delivery is None:
                self.journal.job_cancelled(rec.row)
            else:
                self.journal.job_done(
                    rec.row,
                    list(result.results),
                    calibration_fingerprint=self.fingerprints[d],
                    timings=result.timings,
                )
        if delivery is None:
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

    def _finish(self, core: Core, state: str) -> None:
        known = self.pool.knowledge
        for d, device in enumerate(self.devices):
            known[device.spec] = core.learner.knowledge(d)
        if self.journal is not None:
            with contextlib.suppress(MultiQPUError):
                self.journal.finish_run(self.run_id, state)  # type: ignore[arg-type]

    def _report(self, core: Core, makespan: float) -> RunReport:
        st = core.stats
        learned, reported = core.learner.wait(), core.learner.reported
        rows = []
        served = [r for r in self.results if r is not None]
        for d, device in enumerate(self.devices):
            n = int(st.circuits[d])
            rows.append(
                DeviceReport(
                    device=device.spec,
                    jobs=int(st.jobs[d]),
                    circuits=n,
                    shots=int(st.shots[d]),
                    failures=int(st.failures[d]),
                    mean_wait_s=float(st.wait_s[d] / st.waited_jobs[d])
                    if st.waited_jobs[d]
                    else None,
                    mean_execution_s=float(st.exec_s[d] / st.jobs[d]) if st.jobs[d] else None,
                    mean_estimated_fidelity=float(st.fidelity[d] / n) if n else None,
                    cost_usd=float(st.cost_usd[d]),
                    learned_wait_s=float(learned[d]),
                    reported_wait_s=float(reported[d]),
                    dropped=d in st.dropped,
                )
            )
        fids = [r.estimated_fidelity for r in served if r.estimated_fidelity is not None]
        return RunReport(
            run_id=self.run_id,
            policy=self.opts.policy,
            circuits=len(self.items),
            makespan_s=makespan,
            devices=tuple(rows),
            mean_estimated_fidelity=float(np.mean(fids)) if fids else None,
            total_cost_usd=float(st.cost_usd.sum()),
            retries=self.retries + st.retries,
            hedges=st.hedges,
            hedges_won=st.hedges_won,
            steals=st.steals,
            failovers=st.failovers,
            probes=st.probes,
            from_cache=sum(r.source == "cache" for r in served),
            from_journal=sum(r.source == "journal" for r in served),
            placements=st.placements,
            placements_per_s=st.placements_per_s() if st.place_s > 0 else None,
            dropped_devices=tuple(self.devices[d].spec for d in st.dropped),
            extra={"errors": dict(self.errors)} if self.errors else {},
        )


async def execute(
    pool: DevicePool,
    items: Sequence[Item],
    opts: Options,
    *,
    journal: Journal | None = None,
    resume: tuple[str, dict[int, tuple[str, CircuitResult]], list[Attached]] | None = None,
) -> SampleResult:
    """Run ``items`` on ``pool``'s devices. ``resume``: (run id, results already recorded, jobs
    re-attached at their providers) of an interrupted run."""
    run_id = resume[0] if resume else (opts.run_id or _new_run_id())
    ex = _Executor(pool, items, opts, run_id=run_id, journal=journal)
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
        if journal is not None:
            journal.start_run(
                run_id,
                circuits=[it.circuit for it in items],
                shots=[it.shots for it in items],
                options=opts.recordable(),
            )
    ex.serve_from_cache()
    busy = {i for a in attached for i in a.indices}
    pending = np.array(
        [i for i, r in enumerate(ex.results) if r is None and i not in busy], dtype=np.int64
    )
    core = ex._make_core(pending)
    core.stats.cached = sum(r is not None and r.source == "cache" for r in ex.results)
    return await ex.run(core, attached)


def _new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
