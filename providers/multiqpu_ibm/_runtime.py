"""The vendor path: qiskit-ibm-runtime's service, backends and SamplerV2.

One code path serves the real cloud and the fake backends' local mode:
``QiskitRuntimeService(channel="local")`` returns fake backends, a cloud channel returns real
ones, and SamplerV2 runs in job, Batch or Session mode on either. Every call into the SDK
blocks, so the async layer (:class:`RuntimeJob`, the device) runs them in worker threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu.provider_api import (
    CircuitResult,
    Job,
    JobError,
    JobStatus,
    JobTimings,
    RunResult,
    Secret,
)
from multiqpu_ibm._errors import translate

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["Credentials", "RuntimeBackend", "RuntimeJob", "counts_from_pub"]

_STATUS = {
    "INITIALIZING": JobStatus.QUEUED,
    "QUEUED": JobStatus.QUEUED,
    "VALIDATING": JobStatus.QUEUED,
    "RUNNING": JobStatus.RUNNING,
    "DONE": JobStatus.DONE,
    "ERROR": JobStatus.FAILED,
    "CANCELLED": JobStatus.CANCELLED,
}


@dataclass(frozen=True)
class Credentials:
    """How to build the service. ``channel="local"`` is the offline fake-backend service."""

    channel: str | None = None
    account: str | None = None
    token: Secret | None = None
    instance: str | None = None

    def service_kwargs(self) -> dict[str, Any]:
        """Arguments for ``QiskitRuntimeService``; the token is revealed only here.

        A named saved ``account`` wins over ``token``/``channel`` (the saved account holds
        both); ``instance`` overrides the saved instance. Without an account, a ``token`` is
        used on ``channel`` (default ``ibm_quantum_platform``). With neither, the runtime's own
        default saved account (or its ``QISKIT_IBM_*`` variables) applies."""
        kwargs: dict[str, Any] = {}
        if self.account:
            kwargs["name"] = self.account
        else:
            if self.channel:
                kwargs["channel"] = self.channel
            if self.token is not None:
                kwargs["token"] = self.token.reveal()
        if self.instance:
            kwargs["instance"] = self.instance
        return kwargs

    def account_url(self) -> str | None:
        """The URL of the saved account in use, if one names its own (for the network probe)."""
        if self.channel == "local" or (self.token is not None and not self.account):
            return None  # a token alone: the runtime's default URL
        try:
            from qiskit_ibm_runtime.accounts import AccountManager

            if self.account:
                account = AccountManager.get(name=self.account)
            else:
                account = AccountManager.get(channel=self.channel)
        except Exception:
            return None
        return getattr(account, "url", None)


_services: dict[Credentials, Any] = {}
_services_lock = threading.Lock()


def service_for(creds: Credentials) -> Any:
    """A cached ``QiskitRuntimeService`` (blocking; errors translated)."""
    with _services_lock:
        service = _services.get(creds)
    if service is not None:
        return service
    try:
        from qiskit_ibm_runtime import QiskitRuntimeService

        service = QiskitRuntimeService(**creds.service_kwargs())
    except Exception as exc:
        raise translate(exc, action="connecting to IBM Quantum", url=creds.account_url()) from None
    with _services_lock:
        _services.setdefault(creds, service)
        return _services[creds]


_backends: dict[tuple[Credentials, str], Any] = {}


def backend_for(creds: Credentials, name: str) -> Any:
    """A cached ``service.backend(name)`` (blocking; errors translated)."""
    key = (creds, name)
    with _services_lock:
        backend = _backends.get(key)
    if backend is not None:
        return backend
    service = service_for(creds)
    try:
        with warnings.catch_warnings():
            # local mode instantiates every fake backend; some warn about their data
            warnings.simplefilter("ignore", UserWarning)
            backend = service.backend(name)
    except Exception as exc:
        raise translate(exc, action=f"looking up backend '{name}'") from None
    with _services_lock:
        return _backends.setdefault(key, backend)


def counts_from_pub(pub_result: Any) -> dict[str, int]:
    """Counts of one SamplerV2 PubResult: all classical registers joined in Qiskit order
    (the circuit's last register leftmost), one plain bitstring per outcome."""
    bits = pub_result.join_data()
    return {str(k): int(v) for k, v in bits.get_counts().items()}


def _with_registers(circuit: QuantumCircuit) -> QuantumCircuit:
    """SamplerV2 only returns bits that belong to a register: put loose bits in one."""
    loose = [c for c in circuit.clbits if not circuit.find_bit(c).registers]
    if not loose:
        return circuit
    from qiskit import ClassicalRegister, QuantumCircuit

    out = QuantumCircuit(circuit.qubits, name=circuit.name, global_phase=circuit.global_phase)
    flat = ClassicalRegister(circuit.num_clbits, "c")
    out.add_register(flat)
    index = {c: i for i, c in enumerate(circuit.clbits)}
    for inst in circuit.data:
        out.append(inst.operation, inst.qubits, [flat[index[c]] for c in inst.clbits])
    out.metadata = circuit.metadata
    return out


class RuntimeBackend:
    """A backend from a service, with its vendor pass manager and (optional) open session."""

    def __init__(self, name: str, creds: Credentials) -> None:
        self.name = name
        self.creds = creds
        self._backend: Any = None
        self._pass_manager: Any = None
        self._session: Any = None
        self._lock = threading.RLock()

    @property
    def connected(self) -> bool:
        """Whether the backend object was fetched already (so reading it does not block)."""
        return self._backend is not None

    @property
    def is_local(self) -> bool:
        return self.creds.channel == "local"

    def backend(self) -> Any:
        """The vendor backend object (blocking on first use; shared by devices that use the
        same credentials, so a fake backend builds its noise model once per process)."""
        with self._lock:
            if self._backend is None:
                self._backend = backend_for(self.creds, self.name)
            return self._backend

    def transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """The vendor preset pass manager (level 2, fixed seed) on the backend's Target."""
        with self._lock:
            if self._pass_manager is None:
                from qiskit.transpiler import generate_preset_pass_manager

                self._pass_manager = generate_preset_pass_manager(
                    backend=self.backend(), optimization_level=2, seed_transpiler=1234
                )
            # passes keep per-run state, so one run at a time (the lock is reentrant)
            result: QuantumCircuit = self._pass_manager.run(circuit)
        return result

    def _sampler_mode(self, mode: str) -> tuple[Any, Any]:
        """(mode object for SamplerV2, batch to close after submitting or None)."""
        from qiskit_ibm_runtime import Batch, Session

        backend = self.backend()
        if mode == "batch":
            batch = Batch(backend=backend)
            return batch, batch
        if mode == "session":
            with self._lock:
                if self._session is None or not getattr(self._session, "_active", True):
                    self._session = Session(backend=backend)
                return self._session, None
        return backend, None

    def submit(
        self,
        circuits: Sequence[QuantumCircuit],
        shots: int,
        *,
        mode: str,
        chunk: int,
        seed: int | None = None,
    ) -> list[Any]:
        """Start SamplerV2 jobs (``chunk`` circuits each); returns the vendor jobs. Blocking."""
        from qiskit_ibm_runtime import SamplerV2

        try:
            target, closer = self._sampler_mode(mode)
            jobs = []
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    sampler = SamplerV2(mode=target)
                    if seed is not None and self.is_local:
                        sampler.options.simulator.seed_simulator = seed
                    for start in range(0, len(circuits), chunk):
                        pubs = [_with_registers(c) for c in circuits[start : start + chunk]]
                        jobs.append(sampler.run(pubs, shots=shots))
            finally:
                if closer is not None:
                    closer.close()  # no new jobs; submitted ones run to completion
            return jobs
        except Exception as exc:
            raise translate(exc, action=f"submitting to {self.name}") from None

    def close_session(self) -> None:
        with self._lock:
            if self._session is not None:
                try:
                    self._session.close()
                finally:
                    self._session = None

    def job(self, job_id: str) -> Any:
        """Re-attach to a cloud job by id (blocking)."""
        service = service_for(self.creds)
        try:
            return service.job(job_id)
        except Exception as exc:
            raise translate(exc, action=f"retrieving job {job_id}", job_id=job_id) from None


def vendor_status(job: Any) -> JobStatus:
    raw = job.status()
    key = str(getattr(raw, "name", raw)).upper()
    return _STATUS.get(key, JobStatus.RUNNING)


class RuntimeJob(Job):
    """One multiqpu job over one or more SamplerV2 jobs; ``job_id`` joins their ids with
    commas. Waits by polling ``status()`` in a thread, so cancelling the awaiting task is
    prompt and cancels the vendor jobs."""

    def __init__(
        self,
        device: str,
        vendor_jobs: Sequence[Any],
        *,
        circuit_metadata: Sequence[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        poll_interval: tuple[float, float] = (0.05, 5.0),
        submitted_at: float | None = None,
    ) -> None:
        ids = [str(j.job_id()) for j in vendor_jobs]
        super().__init__(",".join(ids), device)
        self.vendor_jobs = list(vendor_jobs)
        self.vendor_job_ids = ids
        self._circuit_metadata = list(circuit_metadata or [])
        self._metadata = dict(metadata or {})
        self._poll = poll_interval
        self._submitted = submitted_at or time.time()
        self._started: float | None = None
        self._cancel_requested = False
        #: what each vendor ``cancel()`` returned (local jobs return False once running)
        self.cancel_results: list[Any] = []

    async def _statuses(self) -> list[JobStatus]:
        def read() -> list[JobStatus]:
            try:
                return [vendor_status(j) for j in self.vendor_jobs]
            except Exception as exc:
                raise translate(exc, action="reading job status", job_id=self.job_id) from None

        return await asyncio.to_thread(read)

    async def status(self) -> JobStatus:
        if self._cancel_requested:
            return JobStatus.CANCELLED
        states = await self._statuses()
        for bad in (JobStatus.FAILED, JobStatus.CANCELLED):
            if bad in states:
                return bad
        if all(s is JobStatus.DONE for s in states):
            return JobStatus.DONE
        if any(s in (JobStatus.RUNNING, JobStatus.DONE) for s in states):
            return JobStatus.RUNNING
        return JobStatus.QUEUED

    async def result(self) -> RunResult:
        delay, ceiling = self._poll
        try:
            while True:
                if self._cancel_requested:
                    raise JobError("cancelled", job_id=self.job_id)
                state = await self.status()
                if state is JobStatus.RUNNING and self._started is None:
                    self._started = time.time()
                if state.is_final:
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, ceiling)
        except asyncio.CancelledError:
            await asyncio.shield(self.cancel())
            raise
        if state is JobStatus.CANCELLED:
            raise JobError("cancelled", job_id=self.job_id)
        if state is JobStatus.FAILED:
            message = await self._error_message()
            raise JobError(f"IBM Quantum reported: {message}", job_id=self.job_id)
        results = await asyncio.to_thread(self._collect)
        finished = time.time()
        return RunResult(
            device=self.device,
            job_id=self.job_id,
            results=tuple(results),
            timings=JobTimings(self._submitted, self._started or self._submitted, finished),
            metadata={**self._metadata, "provider_job_id": self.job_id},
        )

    async def _error_message(self) -> str:
        def read() -> str:
            messages = []
            for j in self.vendor_jobs:
                try:
                    if vendor_status(j) is JobStatus.FAILED:
                        messages.append(str(j.error_message() or "job failed"))
                except Exception as exc:  # the message is best effort
                    messages.append(str(exc))
            return "; ".join(messages) or "job failed"

        from multiqpu.provider_api import redact

        return redact(await asyncio.to_thread(read))

    def _collect(self) -> list[CircuitResult]:
        out: list[CircuitResult] = []
        for job in self.vendor_jobs:
            try:
                primitive_result = job.result()
            except Exception as exc:
                raise translate(exc, action="fetching results", job_id=self.job_id) from None
            for pub in primitive_result:
                meta = (
                    self._circuit_metadata[len(out)]
                    if len(out) < len(self._circuit_metadata)
                    else {}
                )
                shots = int(pub.metadata.get("shots", 0)) or None
                counts = counts_from_pub(pub)
                out.append(
                    CircuitResult(counts=counts, shots=shots or sum(counts.values()), metadata=meta)
                )
        return out

    async def cancel(self) -> None:
        if self._cancel_requested:
            return
        self._cancel_requested = True

        def do_cancel() -> None:
            for j in self.vendor_jobs:
                try:
                    self.cancel_results.append(j.cancel())
                except Exception as exc:  # already finished, or the API refused
                    self.cancel_results.append(exc)

        await asyncio.to_thread(do_cancel)
