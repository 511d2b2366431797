"""Amazon Braket cloud devices (QPUs and managed simulators) by ARN.

Credentials stay in the AWS credential chain: we build ``boto3.Session(profile_name=...,
region_name=...)`` and never read or log keys. Every SDK call blocks, so each runs in a
worker thread (``asyncio.to_thread``); ``AwsQuantumTask.result()`` is never called on the
event loop. One multiqpu job is one Braket task per circuit; the job id is the task ARNs
joined by commas, which :meth:`AwsBraketDevice.retrieve` accepts back.

Circuits are mapped by multiqpu (noise-aware layout on the calibration read from
``GetDevice``, routing, native gates) and sent with physical qubits (``$n``) when the device
accepts them; otherwise (all-to-all devices, managed simulators) as virtual qubits in the
device's supported gates. Results are read from S3 with the session's S3 client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from multiqpu.provider_api import (
    Calibration,
    CircuitResult,
    ConfigError,
    CostEstimate,
    Device,
    DeviceLimits,
    DeviceStatus,
    DeviceTarget,
    Job,
    JobError,
    JobStatus,
    JobTimings,
    MultiQPUError,
    ProviderError,
    QueueEstimate,
    RunResult,
    Secret,
)
from multiqpu_braket import _pricing
from multiqpu_braket._calibration import DeviceProfile, parse_properties
from multiqpu_braket._errors import translate_error
from multiqpu_braket._queue import queue_estimate
from multiqpu_braket._translate import (
    Program,
    counts_from_braket,
    decompose_for,
    program_from_source,
    to_openqasm,
)

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["AwsBraketDevice", "AwsJob"]

T = TypeVar("T")
_TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
_STATES = {
    "CREATED": JobStatus.QUEUED,
    "QUEUED": JobStatus.QUEUED,
    "RUNNING": JobStatus.RUNNING,
    "COMPLETED": JobStatus.DONE,
    "FAILED": JobStatus.FAILED,
    "CANCELLING": JobStatus.CANCELLED,
    "CANCELLED": JobStatus.CANCELLED,
}


def _plain(value: str | Secret | None) -> str | None:
    return value.reveal() if isinstance(value, Secret) else value


class AwsBraketDevice(Device):
    """A Braket device in the cloud, named by its ARN."""

    mid_circuit_measurement = False  # the translation refuses measure-then-continue

    def __init__(
        self,
        arn: str,
        *,
        aws_profile: str | Secret | None = None,
        region: str | None = None,
        s3_bucket: str | None = None,
        s3_prefix: str | None = None,
        limits: DeviceLimits | None = None,
        aws_session: Any = None,
        poll_interval_s: float = 1.0,
    ) -> None:
        if not arn.startswith("arn:aws:braket:") or arn.count(":") < 5:
            raise ConfigError(
                f"'{arn}' is not a Braket device ARN (arn:aws:braket:REGION::device/...)",
                key="name",
            )
        super().__init__(arn, "braket", limits=limits)
        self.arn = arn
        self._aws_profile = aws_profile
        self._region = region
        self._bucket = s3_bucket
        self._prefix = s3_prefix or "multiqpu"
        self._session = aws_session
        self.poll_interval_s = poll_interval_s
        self._device: Any = None
        self._profile: DeviceProfile | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ vendor objects
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except MultiQPUError:
            raise
        except Exception as exc:
            raise translate_error(exc, what) from exc

    def _make_session(self) -> Any:
        import boto3
        from braket.aws import AwsSession

        region = self._region or self.arn.split(":")[3] or None
        boto = boto3.Session(profile_name=_plain(self._aws_profile), region_name=region)
        return AwsSession(boto_session=boto)

    def aws_device(self) -> Any:
        """The ``braket.aws.AwsDevice`` (built once; calls GetDevice)."""
        with self._lock:
            if self._device is None:
                from braket.aws import AwsDevice

                def build() -> Any:
                    session = self._session or self._make_session()
                    try:
                        return AwsDevice(self.arn, aws_session=session)
                    except ValueError as exc:  # "'arn' not found"
                        raise ConfigError(f"Braket says: {exc}", key="name") from exc

                self._device = self._call(f"opening {self.arn}", build)
                self._session = self._device.aws_session
            return self._device

    def profile(self) -> DeviceProfile:
        """Shape and calibration from the device's properties (cached; see :meth:`refresh`)."""
        with self._lock:
            if self._profile is None:
                props = self.aws_device().properties
                if props is None:  # braket warned: its schemas could not parse them
                    raise ProviderError(
                        f"the properties of {self.arn} could not be read; upgrade "
                        "amazon-braket-schemas (pip install -U amazon-braket-schemas)",
                        provider="braket",
                    )
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                self._profile = parse_properties(
                    json.loads(props.json()), source=f"live (AWS GetDevice {stamp})"
                )
            return self._profile

    def refresh(self) -> None:
        """Forget cached properties and calibration (the next call re-reads them)."""
        with self._lock:
            if self._device is not None:
                self._call("refreshing metadata", self._device.refresh_metadata)
            self._profile = None
            self._transpile_cache.clear()

    # ------------------------------------------------------------------ Device API
    @property
    def num_qubits(self) -> int:
        return self.profile().num_qubits

    @property
    def target(self) -> DeviceTarget:
        p = self.profile()
        return DeviceTarget(p.num_qubits, p.basis_gates, p.edges)

    def calibration(self) -> Calibration:
        return self.profile().calibration

    def estimate_cost(self, circuits: Sequence[QuantumCircuit], shots: int) -> CostEstimate:
        return _pricing.estimate(self.arn, circuits, shots)

    async def status(self) -> DeviceStatus:
        def read() -> DeviceStatus:
            dev = self.aws_device()
            self._call("reading device status", dev.refresh_metadata)
            if dev.status != "ONLINE":
                return DeviceStatus.OFFLINE
            # ONLINE but outside its execution window: tasks wait for the window
            return DeviceStatus.ONLINE if dev.is_available else DeviceStatus.OFFLINE

        return await asyncio.to_thread(read)

    async def queue_estimate(self) -> QueueEstimate:
        def read() -> QueueEstimate:
            info = self._call("reading queue depth", self.aws_device().queue_depth)
            tasks = {getattr(k, "value", str(k)): v for k, v in info.quantum_tasks.items()}
            return queue_estimate(tasks, info.jobs)

        return await asyncio.to_thread(read)

    def program(self, circuit: QuantumCircuit) -> Program:
        """The OpenQASM program multiqpu sends for ``circuit``."""
        p = self.profile()
        if p.physical_qubits and p.edges is not None:
            return to_openqasm(self.transpile(circuit), physical=p.labels)
        return to_openqasm(decompose_for(circuit, p.basis_gates))

    async def submit(self, circuits: Sequence[QuantumCircuit], shots: int | None = 1024) -> Job:
        await asyncio.to_thread(self.profile)  # GetDevice off the loop before validate() needs it
        return await super().submit(circuits, shots)

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        assert shots is not None  # validate() refuses shots=None: not exact
        programs = await asyncio.to_thread(lambda: [self.program(c) for c in circuits])
        tasks = await asyncio.to_thread(self._create_tasks, programs, shots)
        return AwsJob(self, tasks, programs)

    def _create_tasks(self, programs: Sequence[Program], shots: int) -> list[Any]:
        from braket.ir.openqasm import Program as OpenQASMProgram

        dev = self.aws_device()
        folder = (self._bucket, self._prefix) if self._bucket else None
        tasks: list[Any] = []
        try:
            for prog in programs:
                tasks.append(
                    self._call(
                        f"creating a task on {self.arn}",
                        lambda prog=prog: dev.run(  # type: ignore[misc]
                            OpenQASMProgram(source=prog.source),
                            s3_destination_folder=folder,
                            shots=shots,
                            quiet=True,
                        ),
                    )
                )
        except MultiQPUError:
            for task in tasks:  # don't leave half a batch running
                with contextlib.suppress(Exception):  # best effort; the first error matters
                    task.cancel()
            raise
        return tasks

    async def retrieve(self, job_id: str) -> Job:
        """Re-attach to tasks by ARN (comma-separated, as :attr:`Job.job_id` gives them)."""
        from braket.aws import AwsQuantumTask

        arns = [a.strip() for a in job_id.split(",") if a.strip()]
        if not arns or not all(a.startswith("arn:aws:braket:") for a in arns):
            raise JobError("not a list of Braket task ARNs", job_id=job_id)
        session = await asyncio.to_thread(lambda: self.aws_device().aws_session)
        tasks = [
            AwsQuantumTask(
                a, aws_session=session, poll_interval_seconds=self.poll_interval_s, quiet=True
            )
            for a in arns
        ]
        return AwsJob(self, tasks, None)


class AwsJob(Job):
    """Braket tasks (one per circuit) polled from worker threads."""

    def __init__(
        self, device: AwsBraketDevice, tasks: Sequence[Any], programs: Sequence[Program] | None
    ) -> None:
        super().__init__(",".join(t.id for t in tasks), device.spec)
        self._device = device
        self._tasks = list(tasks)
        self._programs = list(programs) if programs is not None else None
        self._submitted = time.time()
        self._started: float | None = None
        self._final: dict[int, str] = {}  # task index -> terminal state (no more polling)

    @property
    def task_arns(self) -> tuple[str, ...]:
        return tuple(t.id for t in self._tasks)

    def _states(self) -> list[str]:
        states = []
        for i, t in enumerate(self._tasks):
            state = self._final.get(i)
            if state is None:
                state = self._device._call("reading task status", t.state)
                if state in _TERMINAL:
                    self._final[i] = state
            states.append(state)
        return states

    async def status(self) -> JobStatus:
        states = [_STATES.get(s, JobStatus.QUEUED) for s in await asyncio.to_thread(self._states)]
        for s in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.RUNNING, JobStatus.QUEUED):
            if s in states:
                return s
        return JobStatus.DONE

    async def cancel(self) -> None:
        def cancel_all() -> None:
            for i, t in enumerate(self._tasks):
                if i not in self._final:
                    self._device._call("cancelling a task", t.cancel)

        await asyncio.to_thread(cancel_all)

    async def result(self) -> RunResult:
        while True:
            states = await asyncio.to_thread(self._states)
            if self._started is None and any(s in ("RUNNING", "COMPLETED") for s in states):
                self._started = time.time()
            for t, s in zip(self._tasks, states, strict=True):
                if s in ("FAILED", "CANCELLED", "CANCELLING"):
                    reason = t.metadata(use_cached_value=True).get("failureReason", "")
                    what = "was cancelled" if s != "FAILED" else f"failed: {reason}"
                    raise JobError(f"Braket task {t.id} {what}", job_id=self.job_id)
            if all(s == "COMPLETED" for s in states):
                break
            await asyncio.sleep(self._device.poll_interval_s)
        results = await asyncio.to_thread(self._download_all)
        return RunResult(
            device=self.device,
            job_id=self.job_id,
            results=tuple(results),
            timings=JobTimings(self._submitted, self._started or self._submitted, time.time()),
            metadata={
                "engine": "amazon-braket",
                "provider_job_id": self.job_id,
                "task_arns": self.task_arns,
            },
        )

    def _download_all(self) -> list[CircuitResult]:
        return [self._download(i, t) for i, t in enumerate(self._tasks)]

    def _download(self, i: int, task: Any) -> CircuitResult:
        from braket.tasks import GateModelQuantumTaskResult

        def fetch() -> Any:
            meta = task.metadata(use_cached_value=True)
            s3 = self._device.aws_device().aws_session.s3_client
            key = f"{meta['outputS3Directory']}/results.json"
            body = s3.get_object(Bucket=meta["outputS3Bucket"], Key=key)["Body"].read()
            return GateModelQuantumTaskResult.from_string(body.decode("utf-8"))

        result = self._device._call(f"downloading results of {task.id}", fetch)
        if self._programs is not None:
            program = self._programs[i]
        else:
            program = program_from_source(result.additional_metadata.action.source)
        counts = counts_from_braket(program, result.measurement_counts, result.measured_qubits)
        meta: dict[str, Any] = {"task_arn": task.id}
        if program.physical:  # Braket labels -> multiqpu physical indices
            labels = self._device.profile().labels
            meta["physical_qubits"] = tuple(labels.index(q) for q in program.labels)
        return CircuitResult(counts=counts, shots=sum(counts.values()), metadata=meta)
