"""Fault-injecting devices: test that your code survives what real QPUs do.

:class:`FaultyDevice` wraps any :class:`~multiqpu.Device` and misbehaves on purpose, reproducibly
(every random choice comes from ``seed``)::

    import multiqpu
    from multiqpu.testing.faults import FaultyDevice

    ideal = multiqpu.device("local:ideal")
    fleet = multiqpu.Fleet([
        FaultyDevice(ideal, name="flaky", transient_failures=2),     # first 2 submits fail
        FaultyDevice(ideal, name="dies", fail_after=3),              # lost after 3 jobs
        FaultyDevice(ideal, name="slow", delay_s=(0.0, 0.5), seed=1),  # results out of order
        FaultyDevice(ideal, name="stuck", hang=True),                # jobs never come back
    ])

Faults, in the order a submission meets them:

* ``fail_after=N``: the device is lost at its ``N + 1``-th submission, which raises
  :class:`~multiqpu.DeviceUnavailableError`, as does every later one; ``status()`` says
  ``OFFLINE`` from then on. With ``fail_in_flight=True`` jobs still running at that moment fail
  too (their ``result()`` raises :class:`~multiqpu.DeviceUnavailableError`).
* ``transient_failures``: an ``int`` N makes the first N submissions raise
  :class:`~multiqpu.TransientProviderError`; a ``float`` p in [0, 1] makes each one raise with
  probability p.
* ``delay_s``: each accepted job's result is held back until ``delay_s`` seconds after its
  submission (a fixed float, or drawn uniformly from a ``(low, high)`` pair), so results arrive
  out of submission order. The hold-back shows in the job's timings as queue wait.
* ``hang=True``: accepted jobs never return (until cancelled), to exercise timeouts and hedging.
  The inner device is not asked to run them.
* ``corrupt=``: the job comes back on time but its results are wrong, silently (nothing in the
  result says so). One model or a sequence of them, applied in order to every circuit's outcome:

  - ``BitFlips(p, qubits=None)``: each measured bit of ``qubits`` (default: all measured bits)
    flips with probability ``p``, independently per shot;
  - ``OtherCircuitCounts()``: the counts of another circuit of the same job (the next one with as
    many classical bits), else of the most recent earlier job; unchanged when there is none;
  - ``UniformCounts()``: counts drawn uniformly over the classical bits' outcomes;
  - ``Drift(start_after_jobs=N, p_per_job=0.01, max_p=0.5, qubits=None)``: honest for the first
    ``N`` jobs, then bit flips with ``p = min(max_p, p_per_job * (k - N + 1))`` on job ``k``.

  ``qubits`` are indices of the circuit's qubits as submitted. On exact results (``shots=None``)
  bit flips act on the probabilities. Corruption draws from a generator seeded by ``seed`` and the
  job's submission index, so a run replays exactly (for ``OtherCircuitCounts`` across jobs, given
  the same order of completion). ``corrupted`` lists the ids of the jobs it touched::

      from multiqpu.testing.faults import BitFlips, Drift, FaultyDevice

      liar = FaultyDevice(ideal, name="liar", corrupt=BitFlips(0.05), seed=3)
      drifting = FaultyDevice(ideal, name="drift", corrupt=Drift(start_after_jobs=5))

Faults of the provider's service (appended; each draw comes from ``seed`` too):

* ``throttle``: like ``transient_failures`` (a count or a probability), but the error is a
  throttling response: a :class:`~multiqpu.TransientProviderError` whose ``retry_after_s`` is
  ``retry_after_s``; the scheduler waits at least that long before it tries again.
* ``lost_acks=p``: with probability p the provider accepts a job and runs it, but the answer
  to the submit call is lost (the call raises :class:`~multiqpu.TransientProviderError`), so
  a retry runs the same work again: a duplicated result. ``duplicates`` counts them.
* ``late_results=p``: with probability p an accepted job's result comes ``late_s`` seconds
  after submission, and the provider ignores cancellation of that job, so its result still
  arrives after a timeout or a hedge moved the work elsewhere.
* ``job_failures=p``: with probability p an accepted job fails on the device (its
  ``result()`` raises :class:`~multiqpu.JobError`, as a job in a vendor's ERROR state does);
  ``failed_jobs`` counts them.

``attempt_times`` holds the ``time.monotonic()`` of every submit call (accepted or not), so a
test can check rate limits; ``faults`` counts what was injected, by kind.

Everything else (target, calibration, cost, transpilation, queue estimate, ``simulator``,
``exact``, limits) is the inner device's (:class:`~multiqpu.delegating.DelegatingDevice`).
The wrapper has its own name (``name``, default ``"<inner name>-faulty"``) so a fleet can
hold several wrappers of one device. ``submissions`` records every accepted job (circuit keys and
shots), so a test can count what was run where.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from multiqpu.delegating import DelegatingDevice
from multiqpu.device import (
    CircuitResult,
    Device,
    DeviceStatus,
    Job,
    JobStatus,
    JobTimings,
    RunResult,
)
from multiqpu.errors import (
    DeviceUnavailableError,
    InvalidInputError,
    JobError,
    TransientProviderError,
)
from multiqpu.testing._corruption import (
    BitFlips,
    Corruption,
    Drift,
    OtherCircuitCounts,
    UniformCounts,
    corrupt,
    normalise_corruption,
)

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = [
    "BitFlips",
    "Corruption",
    "Drift",
    "FaultyDevice",
    "FaultyJob",
    "OtherCircuitCounts",
    "Submission",
    "UniformCounts",
]

_HISTORY = 64  # circuit results of earlier jobs kept for OtherCircuitCounts


@dataclass(frozen=True)
class Submission:
    """One job a :class:`FaultyDevice` accepted."""

    job_id: str
    circuit_keys: tuple[str, ...]
    shots: int | None
    delay_s: float
    at: float


class FaultyDevice(DelegatingDevice):
    """``inner`` with injected faults (see the module docstring)."""

    def __init__(
        self,
        inner: Device,
        *,
        transient_failures: int | float = 0,
        fail_after: int | None = None,
        fail_in_flight: bool = False,
        delay_s: float | tuple[float, float] = 0,
        hang: bool = False,
        corrupt: Corruption | Sequence[Corruption] | None = None,
        seed: int = 0,
        name: str | None = None,
        throttle: int | float = 0,
        retry_after_s: float = 0.05,
        lost_acks: float = 0.0,
        late_results: float = 0.0,
        late_s: float = 2.0,
        job_failures: float = 0.0,
    ) -> None:
        super().__init__(inner, name=name or f"{inner.name}-faulty")
        if isinstance(transient_failures, bool) or not isinstance(transient_failures, int | float):
            raise InvalidInputError(
                f"transient_failures is a count (int) or a probability (float), "
                f"got {transient_failures!r}"
            )
        if isinstance(transient_failures, float) and not 0.0 <= transient_failures <= 1.0:
            raise InvalidInputError(
                f"a transient failure probability must be in [0, 1], got {transient_failures}"
            )
        if isinstance(transient_failures, int) and transient_failures < 0:
            raise InvalidInputError(f"transient_failures must be >= 0, got {transient_failures}")
        if fail_after is not None and fail_after < 0:
            raise InvalidInputError(f"fail_after must be >= 0 or None, got {fail_after}")
        low, high = delay_s if isinstance(delay_s, tuple) else (delay_s, delay_s)
        if not 0 <= low <= high:
            raise InvalidInputError(f"delay_s must be >= 0 (low <= high), got {delay_s!r}")
        self.transient_failures = transient_failures
        self.fail_after = fail_after
        self.fail_in_flight = fail_in_flight
        self.delay_range = (float(low), float(high))
        self.hang = hang
        self.corruption = normalise_corruption(corrupt)
        self._seed = seed
        self._rng = random.Random(seed)
        #: ids of jobs whose results were corrupted (``corrupt=``), in order of delivery
        self.corrupted: list[str] = []
        self._history: list[CircuitResult] = []  # most recent first
        #: submit calls seen (accepted or not)
        self.attempts = 0
        #: TransientProviderErrors raised
        self.transient_raised = 0
        #: accepted jobs, in order
        self.submissions: list[Submission] = []
        self._lost = False
        self._in_flight: set[FaultyJob] = set()
        _check_service_faults(throttle, retry_after_s, lost_acks, late_results, late_s)
        self.throttle = throttle
        self.retry_after_s = float(retry_after_s)
        self.lost_acks = float(lost_acks)
        self.late_results = float(late_results)
        self.late_s = float(late_s)
        if not 0.0 <= job_failures <= 1.0:
            raise InvalidInputError(
                f"job_failures is a probability in [0, 1], got {job_failures!r}"
            )
        self.job_failures = float(job_failures)
        self._job_rng = random.Random(f"jobs-{seed}")
        self.failed_jobs = 0
        self._service_rng = random.Random(f"service-{seed}")  # keeps the older draws as they were
        #: time.monotonic() of every submit call, accepted or not
        self.attempt_times: list[float] = []
        #: throttling responses, lost acknowledgements (duplicated work), late results
        self.throttled = 0
        self.duplicates = 0
        self.late = 0

    @property
    def in_flight(self) -> int:
        """Accepted jobs whose result has not been delivered, failed or cancelled yet."""
        return len(self._in_flight)

    @property
    def lost(self) -> bool:
        """True once the device has been lost (``fail_after``)."""
        return self._lost

    # ---------------------------------------------------------------- changed
    async def status(self) -> DeviceStatus:
        if self._lost:
            return DeviceStatus.OFFLINE
        return await self.inner.status()

    async def retrieve(self, job_id: str) -> Job:
        """Re-attach through the inner device (no faults are injected on re-attached jobs)."""
        if self._lost:
            raise DeviceUnavailableError(f"device {self.spec} was lost (injected fault)")
        job = await self.inner.retrieve(job_id)
        return FaultyJob(self, job, deliver_at=0.0)

    # ---------------------------------------------------------------- faults
    def _lose(self) -> None:
        self._lost = True
        if self.fail_in_flight:
            for job in list(self._in_flight):
                job._fail(DeviceUnavailableError(f"device {self.spec} was lost (injected fault)"))

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        from multiqpu._transpile import circuit_key

        self.attempts += 1
        self.attempt_times.append(time.monotonic())
        if self.fail_after is not None and len(self.submissions) >= self.fail_after:
            if not self._lost:
                self._lose()
            raise DeviceUnavailableError(
                f"device {self.spec} went offline after {self.fail_after} jobs (injected fault)"
            )
        tf = self.transient_failures
        if (isinstance(tf, int) and self.attempts <= tf) or (
            isinstance(tf, float) and self._rng.random() < tf
        ):
            self.transient_raised += 1
            raise TransientProviderError(
                "service temporarily unavailable (injected fault)", provider=self.provider
            )
        th = self.throttle
        if (isinstance(th, int) and self.attempts - self.transient_raised <= th) or (
            isinstance(th, float) and self._service_rng.random() < th
        ):
            self.throttled += 1
            raise TransientProviderError(
                "rate limit exceeded (injected fault)",
                provider=self.provider,
                retry_after_s=self.retry_after_s,
            )
        low, high = self.delay_range
        delay = self._rng.uniform(low, high) if high > low else low
        late = self.late_results > 0 and self._service_rng.random() < self.late_results
        if late:
            self.late += 1
            delay = max(delay, self.late_s)
        inner_job = None if self.hang else await self.inner.submit(circuits, shots)
        loop = asyncio.get_running_loop()
        job = FaultyJob(
            self,
            inner_job,
            deliver_at=loop.time() + delay,
            circuits=circuits,
            index=len(self.submissions),
            ignore_cancel=late,
        )
        self.submissions.append(
            Submission(
                job.job_id, tuple(circuit_key(c) for c in circuits), shots, delay, time.time()
            )
        )
        if self.job_failures > 0 and self._job_rng.random() < self.job_failures:
            self.failed_jobs += 1
            job._fail(JobError("the job failed on the device (injected fault)", job_id=job.job_id))
        if self.lost_acks > 0 and self._service_rng.random() < self.lost_acks:
            self.duplicates += 1  # the job runs on; its submitter never hears of it
            raise TransientProviderError(
                "connection reset before the job id came back (injected fault)",
                provider=self.provider,
            )
        return job

    @property
    def faults(self) -> dict[str, int]:
        """Faults injected so far, by kind."""
        return {
            "transient": self.transient_raised,
            "throttled": self.throttled,
            "duplicated": self.duplicates,
            "late": self.late,
            "lost": int(self._lost),
            "hung": len(self.submissions) if self.hang else 0,
            "failed": self.failed_jobs,
        }


def _check_service_faults(
    throttle: int | float,
    retry_after_s: float,
    lost_acks: float,
    late_results: float,
    late_s: float,
) -> None:
    if (
        isinstance(throttle, bool)
        or not isinstance(throttle, int | float)
        or throttle < 0
        or (isinstance(throttle, float) and throttle > 1.0)
    ):
        raise InvalidInputError(
            f"throttle is a count (int >= 0) or a probability in [0, 1], got {throttle!r}"
        )
    for name, p in (("lost_acks", lost_acks), ("late_results", late_results)):
        if not 0.0 <= p <= 1.0:
            raise InvalidInputError(f"{name} is a probability in [0, 1], got {p!r}")
    if retry_after_s < 0 or late_s < 0:
        raise InvalidInputError(
            f"retry_after_s and late_s must be >= 0, got {retry_after_s!r}, {late_s!r}"
        )


class FaultyJob(Job):
    """A job of a :class:`FaultyDevice`: the inner job, delayed, hung or failed on purpose."""

    def __init__(
        self,
        device: FaultyDevice,
        inner: Job | None,
        *,
        deliver_at: float,
        circuits: Sequence[QuantumCircuit] = (),
        index: int = -1,
        ignore_cancel: bool = False,
    ) -> None:
        job_id = inner.job_id if inner is not None else f"hung-{id(self):x}"
        super().__init__(job_id, device.spec)
        self._device = device
        self._inner = inner
        self._deliver_at = deliver_at
        self._circuits = list(circuits)
        self._index = index
        self._cancelled = False
        self._ignore_cancel = ignore_cancel  # a late result: the provider ignores cancel()
        self._error: BaseException | None = None
        self._task: asyncio.Task[RunResult] = asyncio.ensure_future(self._run())
        device._in_flight.add(self)
        self._task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[RunResult]) -> None:
        self._device._in_flight.discard(self)
        if not task.cancelled():
            task.exception()  # a failure nobody awaits (a cancelled hedge) is not an error

    async def _run(self) -> RunResult:
        if self._inner is None:  # hang: wait until cancelled
            await asyncio.get_running_loop().create_future()
        assert self._inner is not None
        try:
            result = await self._inner.result()
        except JobError:
            if self._cancelled:  # cancel() reached the inner job first: still a cancellation
                raise asyncio.CancelledError from None
            raise
        result = self._corrupt(result)
        remaining = self._deliver_at - asyncio.get_running_loop().time()
        if remaining <= 0:
            return replace(result, device=self.device)
        await asyncio.sleep(remaining)
        # the hold-back reads as queue wait: the job "started" just before it finished
        finished = time.time()
        execution = result.timings.execution_s or 0.0
        started = max(result.timings.submitted_at, finished - execution)
        timings = JobTimings(result.timings.submitted_at, started, finished)
        return replace(result, device=self.device, timings=timings)

    def _corrupt(self, result: RunResult) -> RunResult:
        device = self._device
        if not device.corruption or self._index < 0:
            return result
        rng = np.random.default_rng([device._seed, 0xC0, self._index])
        honest = list(result.results)
        out = corrupt(
            device.corruption,
            self._circuits,
            result,
            job_index=self._index,
            rng=rng,
            history=device._history,
        )
        device._history[:0] = honest
        del device._history[_HISTORY:]
        if out.results != result.results:
            device.corrupted.append(self.job_id)
        return out

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._task.cancel()

    async def result(self) -> RunResult:
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._error is not None:
                raise self._error from None
            if self._cancelled:
                raise JobError("cancelled", job_id=self.job_id) from None
            raise

    async def status(self) -> JobStatus:
        if self._cancelled:
            return JobStatus.CANCELLED
        if self._error is not None:
            return JobStatus.FAILED
        if self._task.cancelled():
            return JobStatus.CANCELLED
        if self._task.done():
            return JobStatus.FAILED if self._task.exception() else JobStatus.DONE
        if self._inner is None:
            return JobStatus.QUEUED
        inner = await self._inner.status()
        return JobStatus.RUNNING if inner is JobStatus.DONE else inner

    async def cancel(self) -> None:
        if self._task.done() or self._ignore_cancel:
            return
        self._cancelled = True
        self._task.cancel()
        if self._inner is not None:
            await self._inner.cancel()
        await asyncio.wait([self._task])  # returns once the job is really over
