"""The IBM Quantum device: fake backends offline, real backends through qiskit-ibm-runtime.

* Fake backends (``fake_torino``, ... 68 of them) read their snapshot JSON directly for
  ``num_qubits``, ``target``, ``calibration()``, ``estimate_cost()``, ``status()`` and
  ``queue_estimate()``: none of these imports qiskit-ibm-runtime. They run on the ``fast``
  engine (compact Aer simulation, see :mod:`multiqpu_ibm._fake`) or, with
  ``engine="runtime"``, on the vendor's own local mode.
* Real backends (``ibm_torino``, ...) go through the same vendor code path as the runtime
  engine, with credentials from a saved account or a token.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.provider_api import (
    Calibration,
    CostEstimate,
    Device,
    DeviceLimits,
    DeviceStatus,
    DeviceTarget,
    DeviceUnavailableError,
    Job,
    QueueEstimate,
)
from multiqpu_ibm import _calibration, _cost
from multiqpu_ibm._options import IBMOptions

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu_ibm._runtime import Credentials, RuntimeBackend

__all__ = ["IBMDevice", "queue_from_report", "status_from_report"]

_MAX_REMEMBERED_JOBS = 256


def status_from_report(report: Any) -> DeviceStatus:
    """A vendor ``BackendStatus`` (``operational``, ``status_msg``) as a DeviceStatus."""
    message = str(getattr(report, "status_msg", "") or "").strip().lower()
    if "maint" in message:
        return DeviceStatus.MAINTENANCE
    if not getattr(report, "operational", False):
        return DeviceStatus.OFFLINE
    return DeviceStatus.ONLINE if message in ("", "active") else DeviceStatus.UNKNOWN


def queue_from_report(report: Any) -> QueueEstimate:
    """``pending_jobs`` read live; the wait is modelled as pending_jobs x a typical job's QPU
    time (:data:`multiqpu_ibm._cost.TYPICAL_JOB_S`), which ignores fair-share priorities."""
    pending = int(getattr(report, "pending_jobs", 0) or 0)
    return QueueEstimate(
        pending_jobs=pending,
        expected_wait_s=pending * _cost.TYPICAL_JOB_S,
        source="live",
        raw=str(pending),
    )


# IBM's job validation allows at most this many executions (circuits x shots) per Sampler job
# (docs: "Job limits").
MAX_EXECUTIONS = 10_000_000

# How long an IBM session stays active after its last job ended (IBM's interactive timeout;
# our assumption, the service does not report it per session).
SESSION_TTL_S = 60.0


class IBMDevice(Device):
    """A real IBM Quantum backend behind multiqpu's device interface (the fake backends are
    :class:`~multiqpu_ibm._fake_device.FakeIBMDevice`, a subclass)."""

    def __init__(
        self, name: str, options: IBMOptions, *, limits: DeviceLimits | None = None
    ) -> None:
        self.options = options
        super().__init__(name, "ibm", limits=limits or options.limits)
        #: The vendor's backend name; ``name`` may be renamed (``device(..., label=...)``).
        self.backend_name = name
        self.engine = "runtime"
        # Session mode: the scheduler opens the session with one small job and then feeds it
        self.session_ttl_s = SESSION_TTL_S if options.mode == "session" else 0.0
        self._calibration: Calibration | None = None
        self._device_target: DeviceTarget | None = None
        self._runtime: RuntimeBackend | None = None
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.RLock()

    def _next_seed(self) -> int | None:
        """The simulator seed of the next runtime job (real backends: none)."""
        return None

    # ------------------------------------------------------------------ engines
    @property
    def runtime(self) -> RuntimeBackend:
        with self._lock:
            return self._runtime_locked()

    def _runtime_locked(self) -> RuntimeBackend:
        if self._runtime is None:
            from multiqpu_ibm._runtime import RuntimeBackend

            creds = self._credentials()
            self._runtime = RuntimeBackend(self.backend_name, creds)
        return self._runtime

    def _credentials(self) -> Credentials:
        from multiqpu_ibm._runtime import Credentials

        o = self.options
        return Credentials(channel=o.channel, account=o.account, token=o.token, instance=o.instance)

    # ------------------------------------------------------------------ identity
    def __repr__(self) -> str:
        if self._runtime is not None and self._runtime.connected:
            return super().__repr__()
        return f"<{type(self).__name__} {self.spec} (not connected yet)>"

    @property
    def num_qubits(self) -> int:
        return int(self.runtime.backend().num_qubits)

    @property
    def target(self) -> DeviceTarget:
        if self._device_target is None:
            backend = self.runtime.backend()
            self._device_target = _calibration.device_target_from_qiskit(backend.target)
        return self._device_target

    def calibration(self) -> Calibration:
        """``backend.target`` + ``backend.properties()`` (fetched once, then cached here)."""
        if self._calibration is None:
            self._calibration = self._live_calibration()
        return self._calibration

    def _live_calibration(self) -> Calibration:
        from multiqpu_ibm._errors import translate

        backend = self.runtime.backend()
        try:
            return _calibration.calibration_from_backend(backend, source="live")
        except Exception as exc:
            raise translate(exc, action=f"reading the calibration of {self.name}") from None

    # ------------------------------------------------------------------ transpilation
    def transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """The circuit as this device runs it (cached per device)."""
        from multiqpu.provider_api import circuit_key

        key = circuit_key(circuit)
        cached = self._transpile_cache.get(key)
        if cached is None:
            cached = self._transpile(circuit)
            self._transpile_cache[key] = cached
        return cached

    def _transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """The vendor's preset pass manager."""
        return self.runtime.transpile(circuit)

    # ------------------------------------------------------------------ execution
    async def submit(self, circuits: Sequence[QuantumCircuit], shots: int | None = 1024) -> Job:
        if not self.simulator:  # fetch the backend off the event loop before validate() needs it
            await asyncio.to_thread(self.runtime.backend)
        return await super().submit(circuits, shots)

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        assert shots is not None  # validate() refuses shots=None: these devices sample
        job = await self._submit_runtime(circuits, shots)
        self._remember(job)
        return job

    async def _submit_runtime(self, circuits: Sequence[QuantumCircuit], shots: int) -> Job:
        from multiqpu_ibm._runtime import RuntimeJob

        submitted = time.time()
        seed = self._next_seed()

        def prepare_and_submit() -> tuple[list[Any], list[dict[str, Any]]]:
            from multiqpu.provider_api import active_qubits

            isa = [self.transpile(c) for c in circuits]
            cal = self.calibration()
            meta = [
                {
                    "physical_qubits": active_qubits(c),
                    "transpiled_depth": c.depth(),
                    "estimated_fidelity": cal.estimated_fidelity(c),
                    "seed": seed,
                }
                for c in isa
            ]
            jobs = self.runtime.submit(
                isa,
                shots,
                mode=self.options.mode,
                # IBM validates at most MAX_EXECUTIONS circuits x shots per Sampler job
                chunk=max(1, min(self.limits.max_circuits_per_job, MAX_EXECUTIONS // shots)),
                seed=seed,
            )
            return jobs, meta

        vendor_jobs, meta = await asyncio.to_thread(prepare_and_submit)
        poll = (0.05, 1.0) if self.simulator else (1.0, 10.0)
        return RuntimeJob(
            self.spec,
            vendor_jobs,
            circuit_metadata=meta,
            metadata={"engine": "runtime", "mode": self.options.mode},
            poll_interval=poll,
            submitted_at=submitted,
        )

    def _remember(self, job: Job) -> None:
        self._jobs[job.job_id] = job
        while len(self._jobs) > _MAX_REMEMBERED_JOBS:
            self._jobs.popitem(last=False)

    async def retrieve(self, job_id: str) -> Job:
        """Re-attach to a job: from this object's memory, else by id through the service
        (ids joined by commas for multi-part jobs)."""
        known = self._jobs.get(job_id)
        if known is not None:
            return known
        from multiqpu_ibm._runtime import RuntimeJob

        ids = [i for i in job_id.split(",") if i]
        vendor_jobs = await asyncio.to_thread(lambda: [self.runtime.job(i) for i in ids])
        job = RuntimeJob(
            self.spec, vendor_jobs, metadata={"engine": "runtime"}, poll_interval=(1.0, 10.0)
        )
        self._remember(job)
        return job

    def close(self) -> None:
        """Close an open Session (``mode="session"``); later submits open a new one."""
        if self._runtime is not None:
            self._runtime.close_session()

    # ------------------------------------------------------------------ availability
    async def status(self) -> DeviceStatus:
        """``backend.status()``; UNKNOWN when IBM cannot be reached (a rejected token still
        raises CredentialsError)."""
        try:
            report = await asyncio.to_thread(self._vendor_status)
        except DeviceUnavailableError:
            return DeviceStatus.UNKNOWN
        return status_from_report(report)

    def _vendor_status(self) -> Any:
        from multiqpu_ibm._errors import translate

        backend = self.runtime.backend()
        try:
            return backend.status()
        except Exception as exc:
            raise translate(exc, action=f"reading the status of {self.name}") from None

    async def queue_estimate(self) -> QueueEstimate:
        """Real backends: ``pending_jobs`` from ``backend.status()`` (``source="live"``); the
        expected wait is modelled as pending_jobs x a typical job's QPU time
        (:data:`multiqpu_ibm._cost.TYPICAL_JOB_S`, 10 s), which ignores fair-share priorities."""
        return queue_from_report(await asyncio.to_thread(self._vendor_status))

    def estimate_cost(self, circuits: Sequence[QuantumCircuit], shots: int) -> CostEstimate:
        """QPU time x IBM's pay-as-you-go price (see :mod:`multiqpu_ibm._cost`); transpiles
        the circuits (cached) to time them."""
        isa = [self.transpile(c) for c in circuits]
        return _cost.estimate(
            isa, shots, self.calibration(), max_circuits_per_job=self.limits.max_circuits_per_job
        )
