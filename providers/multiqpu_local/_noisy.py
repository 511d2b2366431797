"""``local:noisy``: Aer with the noise of a calibration profile.

A circuit is first mapped to the profile's device exactly as that device would map it
(``Device.transpile``: native gates, its coupling map, noise-aware layout); then only the
physical qubits it touches are simulated, with Aer's device noise model (depolarising and
thermal-relaxation errors per gate, readout errors) built for those qubits from the Qiskit
``Target`` of the profile (:mod:`multiqpu.simulation`).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from multiqpu.provider_api import CircuitResult, DeviceLimits, InvalidInputError, SimulatorCache
from multiqpu_local._base import LocalSimulator
from multiqpu_local._profile import Profile

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.transpiler import Target

    from multiqpu.provider_api import Calibration

__all__ = ["NoisySimulator"]

#: Simulators (noise models) shared by every noisy device, keyed by profile and qubit set.
SIMULATORS = SimulatorCache()


class NoisySimulator(LocalSimulator):
    """A sampling simulator that behaves like the device a :class:`Profile` describes."""

    def __init__(
        self, profile: Profile, *, seed: int | None = None, limits: DeviceLimits | None = None
    ) -> None:
        super().__init__("noisy", profile.target, seed=seed, limits=limits)
        self.profile = profile
        digest = hashlib.sha256(repr(profile.target).encode()).hexdigest()[:12]
        self._key = f"local:noisy:{profile.calibration.fingerprint()}:{digest}"
        self._qiskit_target: Target | None = None

    @property
    def emulates(self) -> str:
        """Where the noise comes from (a device spec, a file, ``uniform (...)``)."""
        return self.profile.source

    def calibration(self) -> Calibration:
        return self.profile.calibration

    def qiskit_target(self) -> Target:
        """The Qiskit Target used both to transpile and to build the noise model."""
        if self._qiskit_target is None:
            from multiqpu.provider_api import qiskit_target

            self._qiskit_target = qiskit_target(self.target, self.profile.calibration)
        return self._qiskit_target

    def _run_circuit(self, circuit: QuantumCircuit, shots: int | None, seed: int) -> CircuitResult:
        from qiskit.exceptions import QiskitError

        from multiqpu.provider_api import active_qubits, compact_circuit
        from multiqpu_local._aer import sample

        assert shots is not None  # validate() refuses shots=None: this device is not exact
        try:
            isa = self.transpile(circuit)
        except QiskitError as exc:
            raise InvalidInputError(
                f"circuit '{circuit.name}' cannot be mapped onto {self.spec} "
                f"({self.emulates}): {exc}"
            ) from exc
        qubits = active_qubits(isa)
        metadata: dict[str, Any] = {
            "physical_qubits": qubits,
            "transpiled_depth": isa.depth(),
            "estimated_fidelity": self.profile.calibration.estimated_fidelity(isa),
            "seed": seed,
        }
        if not qubits:
            counts = {"0" * circuit.num_clbits: shots}
        else:
            sim = SIMULATORS.get(self._key, self.qiskit_target(), qubits)
            counts = sample(sim, compact_circuit(isa, qubits), shots, seed)
        return CircuitResult(counts=counts, shots=shots, metadata=metadata)

    def _engine_metadata(self) -> dict[str, Any]:
        return {"engine": "aer", "emulates": self.profile.source}

    def __repr__(self) -> str:
        return f"<NoisySimulator {self.spec} ({self.num_qubits} qubits, noise: {self.emulates})>"
