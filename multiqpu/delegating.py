"""A device that wraps another one and forwards everything it does not change.

:class:`DelegatingDevice` is the base of :class:`~multiqpu.queue_model.QueuedDevice` (a
simulated queue in front of a device) and :class:`~multiqpu.testing.faults.FaultyDevice`
(injected faults). A subclass overrides only what it changes; the rest is the inner
device's: ``num_qubits``, ``target``, ``calibration()``, ``estimate_cost()``, ``transpile()``,
``retrieve()``, ``status()``, ``queue_estimate()``, ``_submit`` (the inner device's
``submit``), the capabilities ``simulator``, ``exact`` and ``mid_circuit_measurement``, and
the limits. ``session_ttl_s`` is not forwarded: a wrapper decides its own queueing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from multiqpu.device import CostEstimate, Device, DeviceStatus, DeviceTarget, Job, QueueEstimate

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.calibration import Calibration

__all__ = ["DelegatingDevice"]


class DelegatingDevice(Device):
    """``inner`` under another face; ``name`` defaults to the inner device's name."""

    def __init__(self, inner: Device, *, name: str | None = None) -> None:
        super().__init__(name or inner.name, inner.provider, limits=inner.limits)
        self.simulator = inner.simulator
        self.exact = inner.exact
        self.mid_circuit_measurement = inner.mid_circuit_measurement
        self._inner = inner

    @property
    def inner(self) -> Device:
        """The wrapped device."""
        return self._inner

    @property
    def num_qubits(self) -> int:
        return self._inner.num_qubits

    @property
    def target(self) -> DeviceTarget:
        return self._inner.target

    def calibration(self) -> Calibration:
        return self._inner.calibration()

    def estimate_cost(self, circuits: Sequence[QuantumCircuit], shots: int) -> CostEstimate:
        return self._inner.estimate_cost(circuits, shots)

    def transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        return self._inner.transpile(circuit)

    async def retrieve(self, job_id: str) -> Job:
        return await self._inner.retrieve(job_id)

    async def status(self) -> DeviceStatus:
        return await self._inner.status()

    async def queue_estimate(self) -> QueueEstimate:
        return await self._inner.queue_estimate()

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        return await self._inner.submit(circuits, shots)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec} around {self._inner.spec}>"
