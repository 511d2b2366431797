"""What the local simulators share: identity, free cost, no queue, a thread per batch,
per-circuit seeds drawn at submission, and cooperative cancellation between circuits."""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.device import (
    CircuitResult,
    CostEstimate,
    Device,
    DeviceLimits,
    DeviceStatus,
    DeviceTarget,
    Job,
    QueueEstimate,
    ThreadJob,
)
from multiqpu.errors import JobError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["LOCAL_LIMITS", "LocalJob", "LocalSimulator"]

#: Simulators have no vendor limits; these only keep a runaway request in check.
LOCAL_LIMITS = DeviceLimits(
    max_shots=10_000_000, max_circuits_per_job=10_000, max_concurrent_jobs=4
)

Work = Callable[[threading.Event], tuple[Sequence[CircuitResult], Mapping[str, Any]]]


class LocalJob(ThreadJob):
    """A :class:`ThreadJob` whose work stops at the next circuit once cancelled."""

    def __init__(self, device: str, work: Work) -> None:
        self._stop = threading.Event()
        stop = self._stop
        super().__init__(device, lambda: work(stop))

    async def cancel(self) -> None:
        self._stop.set()
        await super().cancel()


class LocalSimulator(Device):
    """Base of ``local:ideal`` and ``local:noisy``: subclasses implement :meth:`_run_circuit`."""

    def __init__(
        self,
        name: str,
        target: DeviceTarget,
        *,
        seed: int | None = None,
        limits: DeviceLimits | None = None,
    ) -> None:
        import numpy as np

        super().__init__(name, "local", limits=limits or LOCAL_LIMITS)
        self._target = target
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    @property
    def num_qubits(self) -> int:
        return self._target.num_qubits

    @property
    def target(self) -> DeviceTarget:
        return self._target

    async def status(self) -> DeviceStatus:
        return DeviceStatus.ONLINE

    async def queue_estimate(self) -> QueueEstimate:
        return QueueEstimate(pending_jobs=0, expected_wait_s=0.0, source="none")

    def estimate_cost(self, circuits: Sequence[QuantumCircuit], shots: int) -> CostEstimate:
        return CostEstimate(
            total_usd=0.0, tasks=len(circuits), shots=len(circuits) * (shots or 0), source="free"
        )

    @abc.abstractmethod
    def _run_circuit(self, circuit: QuantumCircuit, shots: int | None, seed: int) -> CircuitResult:
        """Simulate one validated circuit (blocking; runs in a worker thread)."""

    def _engine_metadata(self) -> dict[str, Any]:
        return {"engine": "aer"}

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        # Seeds are drawn here, in submission order, so a seeded device is reproducible
        # whatever order concurrent batches finish in.
        seeds = [int(s) for s in self._rng.integers(0, 2**31 - 1, size=len(circuits))]
        batch = list(circuits)

        def work(stop: threading.Event) -> tuple[list[CircuitResult], dict[str, Any]]:
            results = []
            for circuit, seed in zip(batch, seeds, strict=True):
                if stop.is_set():
                    raise JobError("cancelled")
                results.append(self._run_circuit(circuit, shots, seed))
            return results, self._engine_metadata()

        job = LocalJob(self.spec, work)
        return job
