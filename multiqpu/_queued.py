"""A device behind a simulated queue (see :mod:`multiqpu.queue_model`).

:class:`QueuedDevice` wraps any :class:`~multiqpu.Device`. It keeps a virtual clock that runs
``1 / time_scale`` times faster than the wall clock (starting at the wall-clock time it was
built, so the daily load cycle follows the real time of day), samples each job's wait from
its :class:`~multiqpu.queue_model.QueueModel`, sleeps the scaled wait without blocking the
event loop, then runs the job on the inner device.

Downtime: submitting while the model puts the device in an outage or maintenance window
raises :class:`~multiqpu.DeviceUnavailableError` at once (so a scheduler can go elsewhere);
a job already queued when a window opens keeps its place and starts after the window ends.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from multiqpu.delegating import DelegatingDevice
from multiqpu.device import (
    Device,
    DeviceStatus,
    Job,
    JobStatus,
    JobTimings,
    QueueEstimate,
    RunResult,
)
from multiqpu.errors import DeviceUnavailableError, JobError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.queue_model import QueueModel

__all__ = ["QueuedDevice", "QueuedJob"]


class QueuedDevice(DelegatingDevice):
    """``inner`` with a simulated queue in front of it.

    Identity, target, calibration, cost, transpilation, capabilities and ``retrieve`` are
    the inner device's (:class:`~multiqpu.delegating.DelegatingDevice`); ``status`` and
    ``queue_estimate`` come from the model (source ``"model"``); ``submit`` returns a
    :class:`QueuedJob` that waits its sampled queue time first.
    ``clock`` (wall seconds) and ``epoch`` (virtual time at construction) are for tests.
    """

    def __init__(
        self,
        inner: Device,
        model: QueueModel,
        *,
        clock: Callable[[], float] = time.time,
        epoch: float | None = None,
    ) -> None:
        super().__init__(inner)
        self._model = model
        self._clock = clock
        self._t0 = clock()
        self._epoch = self._t0 if epoch is None else epoch
        self._rng = model.rng()
        self._active: set[QueuedJob] = set()

    # ---------------------------------------------------------------- the wrapper's own
    @property
    def model(self) -> QueueModel:
        return self._model

    @property
    def own_jobs(self) -> int:
        """Jobs of this process submitted here and not finished (queued or running)."""
        return len(self._active)

    def virtual_now(self) -> float:
        """The model's clock: ``epoch`` plus elapsed wall time divided by the time scale
        (at wall-clock speed when the time scale is 0)."""
        return self._epoch + (self._clock() - self._t0) / (self._model.time_scale or 1.0)

    def __repr__(self) -> str:
        return f"<QueuedDevice {self.spec} ({self.num_qubits} qubits; {self._model.describe()})>"

    # ---------------------------------------------------------------- modelled
    async def status(self) -> DeviceStatus:
        modelled = self._model.status_at(self.virtual_now())
        if modelled is not DeviceStatus.ONLINE:
            return modelled
        return await self._inner.status()

    async def queue_estimate(self) -> QueueEstimate:
        return self._model.queue_estimate(self.virtual_now(), own=len(self._active))

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        now = self.virtual_now()
        window = self._model.window_at(now)
        if window is not None:
            until = datetime.fromtimestamp(window[1], UTC).strftime("%Y-%m-%d %H:%M UTC")
            raise DeviceUnavailableError(
                f"device {self.spec} is {window[2].value} until {until} (simulated queue "
                "model); try another device"
            )
        start = self._model.start_time(now, self._rng, ahead=len(self._active))
        job = QueuedJob(self, list(circuits), shots, virtual_wait=start - now)
        self._active.add(job)
        return job

    def _finished(self, job: QueuedJob) -> None:
        self._active.discard(job)


class QueuedJob(Job):
    """A job waiting in a simulated queue, then running on the inner device."""

    def __init__(
        self,
        device: QueuedDevice,
        circuits: list[QuantumCircuit],
        shots: int | None,
        *,
        virtual_wait: float,
    ) -> None:
        super().__init__(f"queued-{uuid.uuid4().hex[:12]}", device.spec)
        self.virtual_wait_s = virtual_wait
        self.wait_s = device.model.scaled(virtual_wait)
        self._device = device
        self._submitted = time.time()
        self._inner_job: Job | None = None
        self._cancelled = False
        self._task: asyncio.Task[RunResult] = asyncio.ensure_future(self._run(circuits, shots))
        # A failure nobody asks about is still a failure, not an asyncio warning at exit.
        self._task.add_done_callback(_retrieve)

    async def _run(self, circuits: list[QuantumCircuit], shots: int | None) -> RunResult:
        try:
            await asyncio.sleep(self.wait_s)
            queue_end = time.time()
            self._inner_job = await self._device.inner.submit(circuits, shots)
            inner = await self._inner_job.result()
        finally:
            self._device._finished(self)
        started = inner.timings.started_at or queue_end
        return RunResult(
            device=self.device,
            job_id=self.job_id,
            results=inner.results,
            timings=JobTimings(self._submitted, started, inner.timings.finished_at),
            metadata={
                **inner.metadata,
                "queue_wait_s": queue_end - self._submitted,
                "queue_virtual_wait_s": self.virtual_wait_s,
                "queue_model": self._device.model.style,
                "inner_job_id": inner.job_id,
            },
        )

    async def result(self) -> RunResult:
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._cancelled:
                raise JobError("cancelled", job_id=self.job_id) from None
            raise

    async def status(self) -> JobStatus:
        if self._cancelled:
            return JobStatus.CANCELLED
        if self._task.cancelled():
            return JobStatus.CANCELLED
        if self._task.done():
            return JobStatus.FAILED if self._task.exception() else JobStatus.DONE
        if self._inner_job is None:
            return JobStatus.QUEUED
        return await self._inner_job.status()

    async def cancel(self) -> None:
        if self._task.done():
            return
        self._cancelled = True
        if self._inner_job is not None:
            await self._inner_job.cancel()
        self._task.cancel()


def _retrieve(task: asyncio.Task[RunResult]) -> None:
    if not task.cancelled():
        task.exception()
