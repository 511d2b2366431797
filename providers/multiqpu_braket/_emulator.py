"""``braket:emulator``: a QPU-like noisy device from a saved device-properties document.

The vendor mechanism does the work: ``braket.emulation.local_emulator.LocalEmulator.from_json``
builds Braket's emulator from the document (native-gate, connectivity and qubit-count
validation; depolarizing noise from the RB fidelities, two-qubit depolarizing from the
two-qubit gate fidelities, bit flips from readout fidelities). multiqpu maps each circuit
onto the device first (noise-aware layout, routing, native ``prx``/``cz``), hands it to the
emulator's ``transform`` (validation + noise), and evaluates the noisy circuit exactly on
``LocalSimulator("braket_dm")``; shots are drawn from that distribution (seedable).

The shipped document (``data/iqm_garnet_modelled.json``) is MODELLED on IQM Garnet, not a
snapshot of a real calibration; see :mod:`multiqpu_braket._modelled_properties`.
Everything except running reads the JSON directly, without importing braket.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from multiqpu.provider_api import (
    Calibration,
    CircuitResult,
    CircuitTooLargeError,
    DeviceLimits,
    DeviceTarget,
    ProviderError,
    active_qubits,
)
from multiqpu_braket._calibration import DeviceProfile, parse_properties
from multiqpu_braket._local import DM_MAX_QUBITS, SIMULATOR_LOCK, LocalBraketDevice
from multiqpu_braket._translate import probabilities_from_braket, to_braket_circuit

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

__all__ = ["EMULATOR_PROPERTIES", "EmulatorDevice", "load_profile"]

EMULATOR_PROPERTIES = "iqm_garnet_modelled.json"


@cache
def _document(filename: str) -> str:
    return (resources.files("multiqpu_braket") / "data" / filename).read_text()


@cache
def load_profile(filename: str = EMULATOR_PROPERTIES) -> DeviceProfile:
    """The shipped properties document, normalised (plain JSON; no braket import)."""
    return parse_properties(
        _document(filename), source=f"snapshot (modelled, not measured) {filename}"
    )


class EmulatorDevice(LocalBraketDevice):
    """Braket's ``LocalEmulator`` for the shipped Garnet-like properties."""

    backend = "braket_dm"
    max_active = DM_MAX_QUBITS

    def __init__(
        self,
        *,
        limits: DeviceLimits | None = None,
        seed: int | None = None,
        properties: str = EMULATOR_PROPERTIES,
    ) -> None:
        self._file = properties
        self._profile = load_profile(properties)
        if limits is None and self._profile.max_shots:
            limits = DeviceLimits(max_shots=self._profile.max_shots)
        super().__init__("emulator", limits=limits, seed=seed)
        labels = self._profile.labels
        self._label_edges = {(labels[a], labels[b]) for a, b in self._profile.edges or ()}
        self._emu: Any = None
        self._emu_lock = threading.Lock()

    @property
    def num_qubits(self) -> int:
        return self._profile.num_qubits

    @property
    def target(self) -> DeviceTarget:
        return DeviceTarget(self.num_qubits, self._profile.basis_gates, self._profile.edges)

    def calibration(self) -> Calibration:
        return self._profile.calibration

    def validate(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> None:
        super().validate(circuits, shots)
        for circ in circuits:
            used = len(active_qubits(circ))
            if used > DM_MAX_QUBITS:
                raise CircuitTooLargeError(self.spec, used, DM_MAX_QUBITS)

    def _emulator(self) -> Any:
        with self._emu_lock:
            if self._emu is None:
                from braket.emulation.local_emulator import LocalEmulator

                self._emu = LocalEmulator.from_json(_document(self._file))
            return self._emu

    def _run_one(
        self, circuit: QuantumCircuit, shots: int | None, rng: np.random.Generator
    ) -> CircuitResult:
        from braket.circuits import Circuit
        from braket.circuits.compiler_directives import EndVerbatimBox, StartVerbatimBox
        from braket.circuits.gate import Gate
        from braket.circuits.measure import Measure
        from braket.circuits.result_types import Probability

        isa = self.transpile(circuit)
        braket_circuit, program = to_braket_circuit(
            isa, self._profile.labels, verbatim=True, symmetric_edges=self._label_edges
        )
        if len(program.active) > self.max_active:
            raise CircuitTooLargeError(self.spec, len(program.active), self.max_active)
        emulator = self._emulator()
        try:
            if any(isinstance(i.operator, Gate) for i in braket_circuit.instructions):
                noisy = emulator.transform(braket_circuit)
            else:  # nothing to validate (an empty verbatim box is refused): readout noise only
                noisy = emulator.noise_model.apply(Circuit().measure(list(program.labels)))
        except ValueError as exc:  # the emulator's validation passes
            raise ProviderError(
                "Braket's emulator rejected the mapped circuit",
                provider="braket",
                vendor_message=str(exc),
            ) from exc
        drop = (Measure, StartVerbatimBox, EndVerbatimBox)
        exact = Circuit([i for i in noisy.instructions if not isinstance(i.operator, drop)])
        exact.add_result_type(Probability(target=list(program.labels)))
        values = self._run_circuit(exact)
        meta = {
            "physical_qubits": program.active,
            "transpiled_depth": isa.depth(),
            "estimated_fidelity": self.calibration().estimated_fidelity(isa),
            "seed": self.seed,
        }
        return self._finish(probabilities_from_braket(program, values), shots, rng, meta)

    def _run_circuit(self, circuit: Any) -> Any:
        try:
            with SIMULATOR_LOCK:
                return self._simulator().run(circuit, shots=0).result().values[0]
        except Exception as exc:
            raise ProviderError(
                "local simulator braket_dm failed",
                provider="braket",
                vendor_message=f"{type(exc).__name__}: {exc}",
            ) from exc
