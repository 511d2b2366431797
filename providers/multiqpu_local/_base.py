"""What the local simulators share: the ``local`` provider's limits, and a per-circuit hook
on top of the core's simulator base (free, no queue, a thread per batch, per-batch seeding,
cooperative cancellation between circuits)."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from multiqpu.provider_api import (
    Batch,
    CircuitResult,
    DeviceLimits,
    DeviceTarget,
    SimulatorDevice,
)

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

__all__ = ["LOCAL_LIMITS", "LocalSimulator"]

#: Simulators have no vendor limits; these only keep a runaway request in check.
LOCAL_LIMITS = DeviceLimits(
    max_shots=10_000_000, max_circuits_per_job=10_000, max_concurrent_jobs=4
)


class LocalSimulator(SimulatorDevice):
    """Base of ``local:ideal`` and ``local:noisy``: subclasses implement :meth:`_run_circuit`."""

    def __init__(
        self,
        name: str,
        target: DeviceTarget,
        *,
        seed: int | None = None,
        limits: DeviceLimits | None = None,
    ) -> None:
        super().__init__(name, "local", seed=seed, limits=limits or LOCAL_LIMITS)
        self._target = target

    @property
    def num_qubits(self) -> int:
        return self._target.num_qubits

    @property
    def target(self) -> DeviceTarget:
        return self._target

    @abc.abstractmethod
    def _run_circuit(self, circuit: QuantumCircuit, shots: int | None, seed: int) -> CircuitResult:
        """Simulate one validated circuit (blocking; runs in a worker thread)."""

    def _engine_metadata(self) -> dict[str, Any]:
        return {"engine": "aer"}

    def _simulate(
        self, circuits: Batch, shots: int | None, rng: np.random.Generator
    ) -> tuple[list[CircuitResult], dict[str, Any]]:
        # Aer seeds for the whole batch are drawn first, so circuit i's seed does not depend
        # on what the circuits before it consumed.
        seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=len(circuits))]
        results = [
            self._run_circuit(circuit, shots, seed)
            for circuit, seed in zip(circuits, seeds, strict=True)
        ]
        return results, self._engine_metadata()
