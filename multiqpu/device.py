"""The one async device interface every provider adapter implements.

A :class:`Device` is a QPU or simulator. Adapters implement five things:
``_submit`` (start a batch, return a :class:`Job`), ``status``, ``queue_estimate``,
``calibration`` and ``estimate_cost``; everything else (validation, ``run``, ``transpile``)
is shared here. Blocking vendor calls never run on the event loop: use :class:`ThreadJob`
or ``asyncio.to_thread``. Simulators subclass :class:`multiqpu.simulator.SimulatorDevice`
instead (one method, seeding done there); wrappers subclass
:class:`multiqpu.delegating.DelegatingDevice`. Adapters import all of these through
:mod:`multiqpu.provider_api`.

Counts keys are bitstrings over the circuit's classical bits in Qiskit's order
(classical bit 0 is the rightmost character), registers joined without spaces.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from multiqpu.errors import CircuitTooLargeError, InvalidInputError, JobError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.calibration import Calibration

__all__ = [
    "CircuitResult",
    "CostEstimate",
    "Device",
    "DeviceLimits",
    "DeviceStatus",
    "DeviceTarget",
    "FutureJob",
    "Job",
    "JobStatus",
    "JobTimings",
    "QueueEstimate",
    "RunResult",
    "ThreadJob",
]


class DeviceStatus(enum.StrEnum):
    """Whether a device takes work now."""

    ONLINE = "online"
    OFFLINE = "offline"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class DeviceTarget:
    """What a device can execute natively."""

    num_qubits: int
    basis_gates: tuple[str, ...]
    coupling_map: tuple[tuple[int, int], ...] | None = None  # None: all-to-all

    @property
    def all_to_all(self) -> bool:
        return self.coupling_map is None


@dataclass(frozen=True)
class DeviceLimits:
    """Per-device limits (from the config file or the adapter's own knowledge)."""

    max_shots: int = 100_000
    max_circuits_per_job: int = 300
    max_concurrent_jobs: int = 5
    max_cost_usd: float | None = None


@dataclass(frozen=True)
class QueueEstimate:
    """How long new work would wait.

    ``source`` says whether the figure was read from the vendor now (``"live"``) or comes from
    a model (``"model"``: simulated queues, or learned from past jobs). ``raw`` keeps the
    vendor's report as given (Braket reports strings such as ``'>4000'``); ``capped`` means
    ``pending_jobs`` is only a lower bound.
    """

    pending_jobs: int | None
    expected_wait_s: float | None
    source: Literal["live", "model", "none"]
    raw: str | None = None
    capped: bool = False


@dataclass(frozen=True)
class CostEstimate:
    """Price of running circuits, in US dollars."""

    total_usd: float
    per_task_usd: float = 0.0
    per_shot_usd: float = 0.0
    tasks: int = 0
    shots: int = 0
    source: str = "free"


@dataclass(frozen=True)
class JobTimings:
    """Wall-clock timestamps (``time.time()``) and derived durations of one job."""

    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def queue_s(self) -> float | None:
        if self.started_at is None:
            return None
        return self.started_at - self.submitted_at

    @property
    def execution_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass(frozen=True)
class CircuitResult:
    """Outcome of one circuit: sampled ``counts``, or exact ``probabilities`` when shots=None."""

    counts: Mapping[str, int]
    shots: int | None
    probabilities: Mapping[str, float] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def distribution(self) -> dict[str, float]:
        """Normalised outcome probabilities (exact or empirical)."""
        if self.probabilities is not None:
            return dict(self.probabilities)
        total = sum(self.counts.values())
        return {k: v / total for k, v in self.counts.items()} if total else {}


@dataclass(frozen=True)
class RunResult:
    """Results of one job: one :class:`CircuitResult` per submitted circuit, in order."""

    device: str
    job_id: str
    results: tuple[CircuitResult, ...]
    timings: JobTimings
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[CircuitResult]:
        return iter(self.results)

    def __getitem__(self, index: int) -> CircuitResult:
        return self.results[index]

    @property
    def counts(self) -> list[Mapping[str, int]]:
        return [r.counts for r in self.results]


class Job(abc.ABC):
    """A batch submitted to a device. ``job_id`` is the vendor's id where there is one."""

    def __init__(self, job_id: str, device: str) -> None:
        self.job_id = job_id
        self.device = device

    @abc.abstractmethod
    async def result(self) -> RunResult:
        """Wait for and return the results (raises :class:`JobError` on failure)."""

    @abc.abstractmethod
    async def status(self) -> JobStatus: ...

    @abc.abstractmethod
    async def cancel(self) -> None:
        """Ask the provider to cancel; returns once the request was made."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.job_id} on {self.device}>"


class FutureJob(Job):
    """A job whose outcome is an asyncio future of ``(results, metadata)``: the shared part of
    :class:`ThreadJob` and the engine's jobs (submission time, cancellation, status).
    Subclasses may override :meth:`_timings`."""

    def __init__(
        self,
        job_id: str,
        device: str,
        future: asyncio.Future[tuple[Sequence[CircuitResult], Mapping[str, Any]]],
        *,
        submitted_at: float,
    ) -> None:
        super().__init__(job_id, device)
        self._submitted = submitted_at
        self._started: float | None = None
        self._cancelled = False
        self._task = future

    def _timings(self, metadata: Mapping[str, Any]) -> tuple[JobTimings, Mapping[str, Any]]:
        """The job's timings, and the metadata the result keeps."""
        started = self._started or self._submitted
        return JobTimings(self._submitted, started, time.time()), metadata

    async def result(self) -> RunResult:
        try:
            results, metadata = await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._cancelled:
                raise JobError("cancelled", job_id=self.job_id) from None
            raise
        timings, metadata = self._timings(metadata)
        return RunResult(
            device=self.device,
            job_id=self.job_id,
            results=tuple(results),
            timings=timings,
            metadata=metadata,
        )

    async def status(self) -> JobStatus:
        if self._cancelled:
            return JobStatus.CANCELLED
        if not self._task.done():
            return JobStatus.RUNNING if self._started else JobStatus.QUEUED
        return JobStatus.FAILED if self._task.exception() else JobStatus.DONE

    async def cancel(self) -> None:
        # A thread or a remote task may not stop at once; its result is discarded.
        self._cancelled = True
        self._task.cancel()


class ThreadJob(FutureJob):
    """A job whose work is a blocking function run in a worker thread.

    The function receives nothing and returns ``(results, metadata)``; timings are recorded
    here. Used by the simulators (:class:`~multiqpu.simulator.SimulatorJob`) and by vendor
    SDK calls that block.
    """

    def __init__(
        self,
        device: str,
        work: Callable[[], tuple[Sequence[CircuitResult], Mapping[str, Any]]],
        *,
        job_id: str | None = None,
    ) -> None:
        # Qiskit's native allocator crashes later threads if Qiskit is first loaded in a worker
        # thread that then exits: make sure it is loaded here, on the submitting thread.
        import qiskit  # noqa: F401

        submitted = time.time()

        def wrapped() -> tuple[Sequence[CircuitResult], Mapping[str, Any]]:
            self._started = time.time()
            return work()

        super().__init__(
            job_id or f"local-{uuid.uuid4().hex[:12]}",
            device,
            asyncio.ensure_future(asyncio.to_thread(wrapped)),
            submitted_at=submitted,
        )


class Device(abc.ABC):
    """A QPU or simulator behind one async interface.

    Subclasses set ``name`` and ``provider`` and implement the abstract methods. ``spec``
    (``"provider:name"``) names the device everywhere (CLI, config, journal).
    """

    #: True for a simulator of any kind (ideal or noisy, fake backends and emulators
    #: included): it is free, has no real queue, and its run time has little to do with
    #: shots x gate durations. The one way to ask "is this a simulator?" (base classes:
    #: :class:`multiqpu.simulator.SimulatorDevice` sets it; a delegating device forwards it).
    simulator: bool = False
    #: True if ``run(..., shots=None)`` returns exact probabilities.
    exact: bool = False
    #: False if the device cannot keep running a circuit after a measurement (Braket QPUs and
    #: simulators); cutting then sends gate-cut sub-experiments elsewhere.
    mid_circuit_measurement: bool = True
    #: > 0 if the device runs our jobs in a vendor session (IBM ``mode = "session"``): the
    #: first job queues, later ones sent while the session lives start without queueing
    #: again; the value is how long (seconds) a session lives after our last job there ended.
    #: The scheduler then sends one small job first and feeds the session as it runs.
    session_ttl_s: float = 0.0

    def __init__(self, name: str, provider: str, *, limits: DeviceLimits | None = None) -> None:
        self.name = name
        self.provider = provider
        self.limits = limits or DeviceLimits()
        self._transpile_cache: dict[str, QuantumCircuit] = {}

    # ---------------------------------------------------------------- identity
    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def imitates_qpu(self) -> bool:
        """Whether plans should time this device as a QPU: a real QPU, or a simulator of
        one built from its calibration snapshot (a fake backend, an emulator), which stands
        in for that QPU. A plain simulator (ideal, uniform or modelled noise) is timed at
        simulator speed. The scheduler's cost model and priors, the cut planner and the QNN
        trainer all ask this one question."""
        if not self.simulator:
            return True
        try:
            return self.calibration().source.startswith("snapshot")
        except Exception:  # no calibration to read: a plain simulator
            return False

    @property
    @abc.abstractmethod
    def num_qubits(self) -> int: ...

    @property
    @abc.abstractmethod
    def target(self) -> DeviceTarget: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec} ({self.num_qubits} qubits)>"

    # ---------------------------------------------------------------- what adapters implement
    @abc.abstractmethod
    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        """Start a validated batch and return its job without waiting for results."""

    @abc.abstractmethod
    async def status(self) -> DeviceStatus: ...

    @abc.abstractmethod
    async def queue_estimate(self) -> QueueEstimate: ...

    @abc.abstractmethod
    def calibration(self) -> Calibration:
        """The vendor-neutral noise profile (cached; may block once for cloud devices)."""

    @abc.abstractmethod
    def estimate_cost(self, circuits: Sequence[QuantumCircuit], shots: int) -> CostEstimate: ...

    async def retrieve(self, job_id: str) -> Job:
        """Re-attach to a job submitted earlier (possibly by another process)."""
        raise JobError(f"device {self.spec} cannot re-attach to earlier jobs", job_id=job_id)

    # ---------------------------------------------------------------- shared behaviour
    def validate(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> None:
        """Raise a clear :class:`~multiqpu.MultiQPUError` for anything this device can't run."""
        from qiskit import QuantumCircuit

        if isinstance(circuits, QuantumCircuit):
            raise InvalidInputError("pass a list of circuits, not a single QuantumCircuit")
        if len(circuits) == 0:
            raise InvalidInputError("no circuits to run")
        if shots is None:
            if not self.exact:
                raise InvalidInputError(
                    f"device {self.spec} samples; exact results (shots=None) need an ideal "
                    "simulator such as 'local:ideal'"
                )
        elif isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
            raise InvalidInputError(f"shots must be a positive integer or None, got {shots!r}")
        elif shots > self.limits.max_shots:
            raise InvalidInputError(
                f"shots={shots} exceeds the limit of {self.limits.max_shots} for {self.spec}"
            )
        for i, circ in enumerate(circuits):
            if not isinstance(circ, QuantumCircuit):
                raise InvalidInputError(
                    f"circuit {i} is a {type(circ).__name__}, expected qiskit.QuantumCircuit"
                )
            if circ.num_qubits > self.num_qubits:
                raise CircuitTooLargeError(self.spec, circ.num_qubits, self.num_qubits)
            if circ.num_clbits == 0:
                raise InvalidInputError(
                    f"circuit {i} ({circ.name}) has no classical bits to read; add measurements "
                    "(e.g. circuit.measure_all())"
                )
            if circ.num_parameters:
                raise InvalidInputError(
                    f"circuit {i} ({circ.name}) has unbound parameters "
                    f"{sorted(p.name for p in circ.parameters)}; bind them first"
                )

    async def submit(self, circuits: Sequence[QuantumCircuit], shots: int | None = 1024) -> Job:
        """Validate and submit a batch; returns the :class:`Job` at once."""
        circuits = list(circuits)
        self.validate(circuits, shots)
        return await self._submit(circuits, shots)

    async def run(self, circuits: Sequence[QuantumCircuit], shots: int | None = 1024) -> RunResult:
        """Submit a batch and wait for its results. Cancelling the caller cancels the job."""
        job = await self.submit(circuits, shots)
        try:
            return await job.result()
        except asyncio.CancelledError:
            await asyncio.shield(job.cancel())
            raise

    def transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """The circuit as this device would run it (native gates, physical qubits). Cached."""
        from multiqpu._transpile import circuit_key, transpile_for

        key = circuit_key(circuit)
        cached = self._transpile_cache.get(key)
        if cached is None:
            cached = transpile_for(circuit, self.target, self.calibration())
            self._transpile_cache[key] = cached
        return cached
