"""The offline fake backends (``fake_torino``, ... 68 of them) as simulator devices.

``num_qubits``, ``target``, ``calibration()``, ``estimate_cost()``, ``status()`` and
``queue_estimate()`` read the snapshot JSON directly: none of these imports
qiskit-ibm-runtime. Circuits run on the ``fast`` engine (compact Aer simulation, see
:mod:`multiqpu_ibm._fake`) through the core's :class:`~multiqpu.provider_api.SimulatorDevice`
(a thread per batch, per-batch seeding), or with ``engine="runtime"`` on the vendor's own
local mode, seeded from the same per-batch sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.provider_api import (
    Batch,
    Calibration,
    CostEstimate,
    DeviceLimits,
    DeviceStatus,
    DeviceTarget,
    Job,
    JobError,
    QueueEstimate,
    SimulatorDevice,
)
from multiqpu_ibm import _calibration, _cost, _snapshots
from multiqpu_ibm._device import IBMDevice
from multiqpu_ibm._options import IBMOptions

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

    from multiqpu_ibm._fake import FastEngine
    from multiqpu_ibm._runtime import Credentials

__all__ = ["FakeIBMDevice"]

#: Aer seeds are below this (circuit i of a batch uses the batch's base seed + i).
_SEED_BOUND = 2**31 - 1


class FakeIBMDevice(IBMDevice, SimulatorDevice):
    """A fake backend: the snapshot's calibration and connectivity, simulated locally.

    Everything a simulator does differently from a real backend is defined here, so this
    class's methods win over :class:`IBMDevice`'s; the run machinery is
    :class:`SimulatorDevice`'s."""

    queue_source = "model"

    def __init__(self, name: str, options: IBMOptions) -> None:
        limits = options.limits
        if limits is None:
            max_shots = _snapshots.load_conf(name).get("max_shots") or 100_000
            limits = DeviceLimits(max_shots=int(max_shots))
        super().__init__(name, options, limits=limits)
        self.seed = options.seed  # SimulatorDevice's seed (IBMDevice.__init__ passes none)
        self.engine = options.engine
        self._fast: FastEngine | None = None

    # ------------------------------------------------------------------ snapshot
    def _conf(self) -> dict[str, Any]:
        return _snapshots.load_conf(self.backend_name)

    def _credentials(self) -> Credentials:
        from multiqpu_ibm._runtime import Credentials

        return Credentials(channel="local")

    def __repr__(self) -> str:
        return SimulatorDevice.__repr__(self)

    @property
    def num_qubits(self) -> int:
        return int(self._conf()["n_qubits"])

    @property
    def target(self) -> DeviceTarget:
        if self._device_target is None:
            self._device_target = _calibration.device_target_from_conf(self._conf())
        return self._device_target

    def calibration(self) -> Calibration:
        """The snapshot's figures (parsed once, then cached on this object)."""
        if self._calibration is None:
            self._calibration = _calibration.calibration_from_snapshot(
                self._conf(), _snapshots.load_props(self.backend_name)
            )
        return self._calibration

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

    def _transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """Fast engine: against a Target rebuilt from the snapshot; runtime engine: the
        vendor's preset pass manager."""
        if self.engine == "fast":
            return self.fast_engine.transpile(circuit)
        return self.runtime.transpile(circuit)

    def _next_seed(self) -> int | None:
        """The runtime engine's seed for the next job, from the per-batch sequence."""
        _, rng = self.batch_rng()
        return int(rng.integers(0, _SEED_BOUND))

    # ------------------------------------------------------------------ running
    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        assert shots is not None  # validate() refuses shots=None: these devices sample
        if self.engine == "fast":
            job = await SimulatorDevice._submit(self, circuits, shots)
        else:
            job = await self._submit_runtime(circuits, shots)
        self._remember(job)
        return job

    def _simulate(
        self, circuits: Batch, shots: int | None, rng: np.random.Generator
    ) -> tuple[Sequence[Any], Any]:
        # in a worker thread: snapshot parsing, transpiling, simulating
        assert shots is not None
        isa = [self.transpile(c) for c in circuits]
        base = int(rng.integers(0, _SEED_BOUND - len(isa)))
        return self.fast_engine.run(isa, shots, base)

    async def retrieve(self, job_id: str) -> Job:
        """From this object's memory only (fake backends keep no job store)."""
        known = self._jobs.get(job_id)
        if known is None:
            raise JobError(
                f"fake backend {self.spec} keeps jobs in memory only; this device object did "
                "not submit this job",
                job_id=job_id,
            )
        return known

    # ------------------------------------------------------------------ availability, cost
    async def status(self) -> DeviceStatus:
        """Always online."""
        return DeviceStatus.ONLINE

    async def queue_estimate(self) -> QueueEstimate:
        """No queue (pending 0, ``source="model"``)."""
        return await SimulatorDevice.queue_estimate(self)

    def estimate_cost(self, circuits: Sequence[QuantumCircuit], shots: int) -> CostEstimate:
        """Free."""
        return _cost.simulation_cost(len(circuits), shots)
