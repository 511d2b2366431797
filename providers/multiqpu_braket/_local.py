"""Braket's local simulators as multiqpu devices: ``sv`` (ideal) and ``dm`` (noisy).

Both run the translated OpenQASM 3 program on ``braket.devices.LocalSimulator`` with the
probability result type (shots=0), which gives Braket's exact output distribution; shots
are then drawn from it with numpy. This is the distribution Braket's own sampler draws from,
but seedable (Braket's local sampler takes no seed) and the same cost for any shot count.

``dm`` first maps each circuit onto its calibration profile (noise-aware layout, routing,
native gates: :meth:`Device.transpile`), then simulates the touched qubits only, with the
noise of :mod:`multiqpu_braket._noise` on each gate and readout.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.provider_api import (
    Batch,
    Calibration,
    CircuitResult,
    CircuitTooLargeError,
    CostEstimate,
    DeviceLimits,
    DeviceTarget,
    ProviderError,
    SimulatorDevice,
    active_qubits,
)
from multiqpu_braket import _pricing
from multiqpu_braket._translate import (
    GATES,
    Program,
    decompose_for,
    probabilities_from_braket,
    sample_counts,
    to_openqasm,
)

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

__all__ = ["DensityMatrixDevice", "LocalBraketDevice", "StateVectorDevice"]

#: Braket's default simulator runs numba ``parallel=True`` kernels on numba's workqueue
#: threading layer, which aborts the process when two threads enter it at once (measured:
#: "Numba workqueue threading layer is terminating: Concurrent access has been detected").
#: Every local Braket simulation in this process takes this lock; translation, transpilation
#: and sampling still run concurrently.
SIMULATOR_LOCK = threading.Lock()

SV_MAX_QUBITS = 26  # LocalSimulator("braket_sv").properties.paradigm.qubitCount
DM_MAX_QUBITS = 13  # LocalSimulator("braket_dm").properties.paradigm.qubitCount


class LocalBraketDevice(SimulatorDevice):
    """Shared machinery: exact distribution, then sampling from the batch's generator (the
    thread per batch and the per-batch seeding are :class:`SimulatorDevice`'s)."""

    mid_circuit_measurement = False  # the translation refuses measure-then-continue

    queue_source = "model"
    backend: str = "braket_sv"
    max_active: int = SV_MAX_QUBITS

    def __init__(
        self, name: str, *, limits: DeviceLimits | None = None, seed: int | None = None
    ) -> None:
        super().__init__(name, "braket", seed=seed, limits=limits)
        self._sim: Any = None
        self._lock = threading.Lock()

    def _simulator(self) -> Any:
        with self._lock:
            if self._sim is None:
                from braket.devices import LocalSimulator

                self._sim = LocalSimulator(self.backend)
            return self._sim

    def _exact(self, program: Program) -> dict[str, float]:
        """Run a shots=0 probability program; Braket's exact distribution over clbits."""
        import warnings

        from braket.ir.openqasm import Program as OpenQASMProgram

        if len(program.active) > self.max_active:
            raise CircuitTooLargeError(self.spec, len(program.active), self.max_active)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "noise-free circuit on the dm simulator"
                with SIMULATOR_LOCK:
                    task = self._simulator().run(OpenQASMProgram(source=program.source), shots=0)
                    values = task.result().values[0]
        except Exception as exc:  # the simulator's own words, kept
            raise ProviderError(
                f"local simulator {self.backend} failed",
                provider="braket",
                vendor_message=f"{type(exc).__name__}: {exc}",
            ) from exc
        return probabilities_from_braket(program, values)

    def _finish(
        self,
        dist: dict[str, float],
        shots: int | None,
        rng: np.random.Generator,
        metadata: dict[str, Any],
    ) -> CircuitResult:
        if shots is None:
            return CircuitResult(counts={}, shots=None, probabilities=dist, metadata=metadata)
        return CircuitResult(counts=sample_counts(dist, shots, rng), shots=shots, metadata=metadata)

    def _run_one(
        self, circuit: QuantumCircuit, shots: int | None, rng: np.random.Generator
    ) -> CircuitResult:
        raise NotImplementedError

    def _simulate(
        self, circuits: Batch, shots: int | None, rng: np.random.Generator
    ) -> tuple[list[CircuitResult], Mapping[str, Any]]:
        results = [self._run_one(c, shots, rng) for c in circuits]
        return results, {"engine": f"braket LocalSimulator({self.backend})"}

    def estimate_cost(self, circuits: Sequence[QuantumCircuit], shots: int) -> CostEstimate:
        return _pricing.free(circuits, shots, "local Braket simulator")


class StateVectorDevice(LocalBraketDevice):
    """``braket:sv``: the ideal state-vector simulator; exact probabilities with shots=None."""

    exact = True
    backend = "braket_sv"
    max_active = SV_MAX_QUBITS

    def __init__(self, *, limits: DeviceLimits | None = None, seed: int | None = None) -> None:
        super().__init__("sv", limits=limits, seed=seed)

    @property
    def num_qubits(self) -> int:
        return SV_MAX_QUBITS

    @property
    def target(self) -> DeviceTarget:
        return DeviceTarget(SV_MAX_QUBITS, tuple(GATES), None)

    def calibration(self) -> Calibration:
        return Calibration.ideal(SV_MAX_QUBITS)

    def _run_one(
        self, circuit: QuantumCircuit, shots: int | None, rng: np.random.Generator
    ) -> CircuitResult:
        prepared = decompose_for(circuit, tuple(GATES))
        program = to_openqasm(prepared, exact=True)
        meta = {"physical_qubits": program.active, "seed": self.seed}
        return self._finish(self._exact(program), shots, rng, meta)


def default_dm_calibration() -> Calibration:
    """The ``dm`` device's noise when none is given: 12 all-to-all qubits, 2 % readout,
    0.1 % one-qubit and 1 % two-qubit gate error (typical of today's better QPUs)."""
    return Calibration.uniform(
        12,
        readout_error=0.02,
        gate_error_1q=1e-3,
        gate_error_2q=1e-2,
        source="model: braket dm default",
    )


def _dm_target(cal: Calibration) -> DeviceTarget:
    names = [op for op in cal.gate_errors if op in GATES]
    one_q = {"rz", "sx", "x", "r", "rx", "ry", "u", "u3", "h"}
    if not any(op in one_q for op in names):
        names += ["rz", "sx", "x"]
    elif "sx" in names and "rz" not in names:
        names.append("rz")
    if not any(
        GATES[op][0] in {"cnot", "cz", "iswap", "ecr", "cphaseshift", "xx", "zz"} for op in names
    ):
        names.append("cz")
    n = cal.num_qubits
    edges = sorted(set(cal.gate_error_2q))
    coupling = None if len(edges) >= n * (n - 1) or not edges else tuple(edges)
    return DeviceTarget(n, tuple(dict.fromkeys(names)), coupling)


class DensityMatrixDevice(LocalBraketDevice):
    """``braket:dm``: the density-matrix simulator with noise from a calibration profile."""

    backend = "braket_dm"
    max_active = DM_MAX_QUBITS

    def __init__(
        self,
        calibration: Calibration | None = None,
        *,
        limits: DeviceLimits | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__("dm", limits=limits, seed=seed)
        self._calibration = calibration or default_dm_calibration()
        self._target = _dm_target(self._calibration)

    @property
    def num_qubits(self) -> int:
        return self._calibration.num_qubits

    @property
    def target(self) -> DeviceTarget:
        return self._target

    def calibration(self) -> Calibration:
        return self._calibration

    def validate(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> None:
        super().validate(circuits, shots)
        for circ in circuits:
            used = len(active_qubits(circ))
            if used > DM_MAX_QUBITS:
                raise CircuitTooLargeError(self.spec, used, DM_MAX_QUBITS)

    def _run_one(
        self, circuit: QuantumCircuit, shots: int | None, rng: np.random.Generator
    ) -> CircuitResult:
        from multiqpu_braket._noise import CalibrationNoise

        isa = self.transpile(circuit)
        program = to_openqasm(isa, exact=True, noise=CalibrationNoise(self._calibration))
        meta = {
            "physical_qubits": program.active,
            "transpiled_depth": isa.depth(),
            "estimated_fidelity": self._calibration.estimated_fidelity(isa),
            "seed": self.seed,
        }
        return self._finish(self._exact(program), shots, rng, meta)
