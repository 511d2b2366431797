"""The fast engine for fake backends: multiqpu's compact Aer simulation.

qiskit-ibm-runtime's own local mode builds the noise model of the whole chip (12 s for
FakeTorino's 133 qubits) before simulating anything. Here the transpiled circuit's touched
physical qubits get a noise model of their own, built from the same snapshot (Aer's device
model: depolarising + thermal relaxation per gate with the calibrated durations, asymmetric
readout errors), and the simulator is cached per qubit set
(:class:`multiqpu.simulation.SimulatorCache`).

Imports Qiskit and Aer lazily (inside functions).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.provider_api import Calibration, CircuitResult, DeviceTarget

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.transpiler import Target

    from multiqpu.provider_api import SimulatorCache

__all__ = ["FastEngine"]


class FastEngine:
    """Transpile against a Target rebuilt from the snapshot, simulate on the touched qubits."""

    OPTIMIZATION_LEVEL = 2
    SEED_TRANSPILER = 1234

    def __init__(
        self, key: str, device_target: DeviceTarget, calibration: Calibration, dt: float | None
    ) -> None:
        self.key = key
        self.device_target = device_target
        self.calibration = calibration
        self.dt = dt
        self._target: Target | None = None
        self._sims: SimulatorCache | None = None
        self._pass_manager: Any = None
        self._transpile_lock = threading.Lock()
        self._lock = threading.Lock()

    @property
    def qiskit_target(self) -> Target:
        with self._lock:
            if self._target is None:
                from multiqpu.provider_api import qiskit_target

                # as the vendor builds a fake backend's Target: calibrated entries only
                self._target = qiskit_target(
                    self.device_target, self.calibration, dt=self.dt, calibrated_only=True
                )
            return self._target

    @property
    def simulators(self) -> SimulatorCache:
        with self._lock:
            if self._sims is None:
                from multiqpu.provider_api import SimulatorCache

                self._sims = SimulatorCache()
            return self._sims

    def transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """Qiskit's preset pass manager (level 2, fixed seed), built once per device."""
        with self._lock:
            pm = self._pass_manager
        if pm is None:
            from qiskit.transpiler import generate_preset_pass_manager

            pm = generate_preset_pass_manager(
                optimization_level=self.OPTIMIZATION_LEVEL,
                target=self.qiskit_target,
                seed_transpiler=self.SEED_TRANSPILER,
            )
            with self._lock:
                self._pass_manager = pm
        with self._transpile_lock:  # passes keep per-run state: one run at a time
            result: QuantumCircuit = pm.run(circuit)
        return result

    def run(
        self, isa_circuits: Sequence[QuantumCircuit], shots: int, seed: int | None
    ) -> tuple[list[CircuitResult], Mapping[str, Any]]:
        """Simulate ISA circuits (blocking). Circuit ``i`` uses simulator seed ``seed + i``."""
        from multiqpu.provider_api import active_qubits, compact_circuit, counts_from_aer

        base = seed if seed is not None else random.SystemRandom().randrange(2**31)
        results = []
        for i, isa in enumerate(isa_circuits):
            qubits = active_qubits(isa)
            sim = self.simulators.get(self.key, self.qiskit_target, qubits)
            compact = compact_circuit(isa, qubits)
            raw = sim.run(compact, shots=shots, seed_simulator=base + i).result()
            counts = counts_from_aer(raw.get_counts())
            results.append(
                CircuitResult(
                    counts=counts,
                    shots=shots,
                    metadata={
                        "physical_qubits": qubits,
                        "transpiled_depth": isa.depth(),
                        "estimated_fidelity": self.calibration.estimated_fidelity(isa),
                        "seed": base + i,
                    },
                )
            )
        return results, {"engine": "fast", "seed": base, "provider_job_id": None}
