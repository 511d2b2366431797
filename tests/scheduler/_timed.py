"""A real device (an Aer simulator) behind a deterministic queue and speed, for scheduler
tests: it waits ``wait_s`` after each submission, runs our jobs one at a time like a QPU,
takes ``per_circuit_s`` per circuit on top of the simulation, reports whatever queue it is
told to, and records every submission and cancellation."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import multiqpu
from multiqpu.device import (
    CostEstimate,
    Device,
    DeviceLimits,
    DeviceStatus,
    DeviceTarget,
    Job,
    JobStatus,
    JobTimings,
    QueueEstimate,
    RunResult,
)
from multiqpu.errors import JobError


class TimedDevice(Device):
    def __init__(
        self,
        name: str,
        *,
        inner: Device | None = None,
        wait_s: float = 0.0,
        per_circuit_s: float = 0.0,
        reported_wait_s: float | None = 0.0,
        pending_jobs: int | None = None,
        concurrency: int = 4,
        max_batch: int = 300,
        price_per_circuit: float = 0.0,
        provider: str = "test",
        session_ttl_s: float = 0.0,
    ) -> None:
        super().__init__(
            name,
            provider,
            limits=DeviceLimits(max_concurrent_jobs=concurrency, max_circuits_per_job=max_batch),
        )
        self.inner = inner or multiqpu.device("local:ideal", num_qubits=6, seed=7)
        self.exact = self.inner.exact
        self.wait_s = wait_s
        self.per_circuit_s = per_circuit_s
        self.reported_wait_s = reported_wait_s
        self.pending_jobs = pending_jobs
        self.price_per_circuit = price_per_circuit
        self.submits: list[tuple[float, int]] = []  # (time.monotonic(), circuits)
        self.cancelled: list[str] = []
        self.jobs: list[TimedJob] = []
        self.lane = asyncio.Lock()
        # a session (session_ttl_s > 0): once a job of ours ran, jobs sent while one runs or
        # within the TTL after the last ended skip the queue wait
        self.session_ttl_s = session_ttl_s
        self.running = 0
        self.last_end = -float("inf")

    def in_session(self) -> bool:
        live = self.running > 0 or time.monotonic() - self.last_end <= self.session_ttl_s
        return self.session_ttl_s > 0 and live

    @property
    def num_qubits(self) -> int:
        return self.inner.num_qubits

    @property
    def target(self) -> DeviceTarget:
        return self.inner.target

    def calibration(self) -> Any:
        return self.inner.calibration()

    def transpile(self, circuit: Any) -> Any:
        return self.inner.transpile(circuit)

    def estimate_cost(self, circuits: Sequence[Any], shots: int) -> CostEstimate:
        total = self.price_per_circuit * len(circuits)
        return CostEstimate(
            total_usd=total, per_task_usd=self.price_per_circuit, tasks=len(circuits)
        )

    async def status(self) -> DeviceStatus:
        return DeviceStatus.ONLINE

    async def queue_estimate(self) -> QueueEstimate:
        return QueueEstimate(self.pending_jobs, self.reported_wait_s, "live")

    async def _submit(self, circuits: Sequence[Any], shots: int | None) -> Job:
        self.submits.append((time.monotonic(), len(circuits)))
        job = TimedJob(self, list(circuits), shots)
        self.jobs.append(job)
        return job


class TimedJob(Job):
    def __init__(self, device: TimedDevice, circuits: list[Any], shots: int | None) -> None:
        super().__init__(f"timed-{uuid.uuid4().hex[:8]}", device.spec)
        self.ended_at: float | None = None  # time.monotonic()
        self._device = device
        self._submitted = time.time()
        self._started: float | None = None
        self._task = asyncio.ensure_future(self._run(circuits, shots))

    async def _run(self, circuits: list[Any], shots: int | None) -> RunResult:
        dev = self._device
        if not dev.in_session():
            await asyncio.sleep(dev.wait_s)
        async with dev.lane:
            self._started = time.time()
            dev.running += 1
            try:
                inner = await dev.inner.run(circuits, shots)
                await asyncio.sleep(dev.per_circuit_s * len(circuits))
            finally:
                dev.running -= 1
                dev.last_end = self.ended_at = time.monotonic()
        return RunResult(
            dev.spec,
            self.job_id,
            inner.results,
            JobTimings(self._submitted, self._started, time.time()),
        )

    async def result(self) -> RunResult:
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._task.cancelled():
                raise JobError("cancelled", job_id=self.job_id) from None
            raise

    async def status(self) -> JobStatus:
        if self._task.cancelled():
            return JobStatus.CANCELLED
        if self._task.done():
            return JobStatus.DONE
        return JobStatus.RUNNING if self._started else JobStatus.QUEUED

    async def cancel(self) -> None:
        self._device.cancelled.append(self.job_id)
        self._task.cancel()
