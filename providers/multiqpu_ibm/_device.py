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
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu import (
    Calibration,
    CostEstimate,
    Device,
    DeviceLimits,
    DeviceStatus,
    DeviceTarget,
    DeviceUnavailableError,
    Job,
    JobError,
    QueueEstimate,
    ThreadJob,
)
from multiqpu_ibm import _calibration, _cost, _snapshots
from multiqpu_ibm._options import IBMOptions

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu_ibm._fake import FastEngine
    from multiqpu_ibm._runtime import RuntimeBackend

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
    """An IBM Quantum backend, real or fake, behind multiqpu's device interface."""

    def __init__(self, name: str, options: IBMOptions) -> None:
        self.is_fake = name.startswith("fake_")
        self.options = options
        limits = options.limits
        if limits is None and self.is_fake:
            max_shots = _snapshots.load_conf(name).get("max_shots") or 100_000
            limits = DeviceLimits(max_shots=int(max_shots))
        super().__init__(name, "ibm", limits=limits)
        self.engine = options.engine if self.is_fake else "runtime"
        # Session mode: the scheduler opens the session with one small job and then feeds it
        self.session_ttl_s = SESSION_TTL_S if options.mode == "session" else 0.0
        self._calibration: Calibration | None = None
        self._device_target: DeviceTarget | None = None
        self._fast: FastEngine | None = None
        self._runtime: RuntimeBackend | None = None
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.RLock()
        # A seeded device is reproducible as a whole, but each job draws its own seed (in
        # submission order) so repeated jobs are independent samples, not copies.
        self._seeds = random.Random(options.seed) if options.seed is not None else None

    def _next_seed(self) -> int | None:
        return self._seeds.randrange(2**31 - 1) if self._seeds is not None else None

    # ------------------------------------------------------------------ snapshot (fakes)
    def _conf(self) -> dict[str, Any]:
        return _snapshots.load_conf(self.name)

    # ------------------------------------------------------------------ engines
    @property
    def fast_engine(self) -> FastEngine:
        with self._lock:
            if self._fast is None:
                from multiqpu_ibm._fake import FastEngine

                dt_ns = self._conf().get("dt")
                self._fast = FastEngine(
                    self.spec, self.target, self.calibration(), dt_ns * 1e-9 if dt_ns else None
                )
            return self._fast

    @property
    def runtime(self) -> RuntimeBackend:
        with self._lock:
            return self._runtime_locked()

    def _runtime_locked(self) -> RuntimeBackend:
        if self._runtime is None:
            from multiqpu_ibm._runtime import Credentials, RuntimeBackend

            if self.is_fake:
                creds = Credentials(channel="local")
            else:
                o = self.options
                creds = Credentials(
                    channel=o.channel, account=o.account, token=o.token, instance=o.instance
                )
            self._runtime = RuntimeBackend(self.name, creds)
        return self._runtime

    # ------------------------------------------------------------------ identity
    def __repr__(self) -> str:
        if self.is_fake or (self._runtime is not None and self._runtime.connected):
            return super().__repr__()
        return f"<{type(self).__name__} {self.spec} (not connected yet)>"

    @property
    def num_qubits(self) -> int:
        if self.is_fake:
            return int(self._conf()["n_qubits"])
        return int(self.runtime.backend().num_qubits)

    @property
    def target(self) -> DeviceTarget:
        if self._device_target is None:
            if self.is_fake:
                self._device_target = _calibration.device_target_from_conf(self._conf())
            else:
                backend = self.runtime.backend()
                self._device_target = _calibration.device_target_from_qiskit(backend.target)
        return self._device_target

    def calibration(self) -> Calibration:
        """Snapshot figures for fake backends; ``backend.target`` + ``backend.properties()``
        for real ones (fetched once, then cached on this object)."""
        if self._calibration is None:
            if self.is_fake:
                self._calibration = _calibration.calibration_from_snapshot(
                    self._conf(), _snapshots.load_props(self.name)
                )
            else:
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
        """The circuit as this device runs it (cached per device). Fast engine: against a
        Target rebuilt from the snapshot; otherwise the vendor's preset pass manager."""
        from multiqpu._transpile import circuit_key

        key = circuit_key(circuit)
        cached = self._transpile_cache.get(key)
        if cached is None:
            if self.engine == "fast":
                cached = self.fast_engine.transpile(circuit)
            else:
                cached = self.runtime.transpile(circuit)
            self._transpile_cache[key] = cached
        return cached

    # ------------------------------------------------------------------ execution
    async def submit(self, circuits: Sequence[QuantumCircuit], shots: int | None = 1024) -> Job:
        if not self.is_fake:  # fetch the backend off the event loop before validate() needs it
            await asyncio.to_thread(self.runtime.backend)
        return await super().submit(circuits, shots)

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        assert shots is not None  # validate() refuses shots=None: these devices sample
        job: Job
        if self.engine == "fast":
            seed = self._next_seed()

            def work() -> Any:  # in a worker thread: snapshot parsing, transpiling, simulating
                isa = [self.transpile(c) for c in circuits]
                return self.fast_engine.run(isa, shots, seed)

            job = ThreadJob(self.spec, work)
        else:
            job = await self._submit_runtime(circuits, shots)
        self._remember(job)
        return job

    async def _submit_runtime(self, circuits: Sequence[QuantumCircuit], shots: int) -> Job:
        from multiqpu_ibm._runtime import RuntimeJob

        submitted = time.time()
        seed = self._next_seed()

        def prepare_and_submit() -> tuple[list[Any], list[dict[str, Any]]]:
            from multiqpu.simulation import active_qubits

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
        poll = (0.05, 1.0) if self.is_fake else (1.0, 10.0)
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
        """Re-attach to a job: by id through the service for real backends (ids joined by
        commas for multi-part jobs); from this object's memory for fake backends."""
        known = self._jobs.get(job_id)
        if known is not None:
            return known
        if self.is_fake:
            raise JobError(
                f"fake backend {self.spec} keeps jobs in memory only; this device object did "
                "not submit this job",
                job_id=job_id,
            )
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
        """Fake backends are always online. Real ones: ``backend.status()``; UNKNOWN when IBM
        cannot be reached (a rejected token still raises CredentialsError)."""
        if self.is_fake:
            return DeviceStatus.ONLINE
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
        (:data:`multiqpu_ibm._cost.TYPICAL_JOB_S`, 10 s), which ignores fair-share priorities.
        Fake backends have no queue (pending 0, ``source="model"``)."""
        if self.is_fake:
            return QueueEstimate(pending_jobs=0, expected_wait_s=0.0, source="model")
        return queue_from_report(await asyncio.to_thread(self._vendor_status))

    def estimate_cost(self, circuits: Sequence[QuantumCircuit], shots: int) -> CostEstimate:
        """Fake backends: free. Real ones: QPU time x IBM's pay-as-you-go price (see
        :mod:`multiqpu_ibm._cost`); transpiles the circuits (cached) to time them."""
        if self.is_fake:
            return _cost.simulation_cost(len(circuits), shots)
        isa = [self.transpile(c) for c in circuits]
        return _cost.estimate(
            isa, shots, self.calibration(), max_circuits_per_job=self.limits.max_circuits_per_job
        )
