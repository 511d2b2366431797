"""``local:ideal``: a noiseless Aer simulator of any size, all-to-all, exact on request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from multiqpu.provider_api import Calibration, CircuitResult, DeviceLimits, DeviceTarget
from multiqpu_local._base import LocalSimulator

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["IDEAL_BASIS", "IdealSimulator"]

#: A broad native set: the ideal simulator runs anything, this only guides ``transpile``.
IDEAL_BASIS = ("cx", "cz", "h", "id", "rx", "ry", "rz", "s", "sdg", "swap", "sx", "x", "y", "z")


class IdealSimulator(LocalSimulator):
    """Noiseless statevector-class simulation (Aer picks the method, e.g. stabilizer for
    Clifford circuits). ``shots=None`` returns exact probabilities over classical bits."""

    exact = True

    def __init__(
        self, num_qubits: int = 24, *, seed: int | None = None, limits: DeviceLimits | None = None
    ) -> None:
        super().__init__(
            "ideal", DeviceTarget(num_qubits, IDEAL_BASIS, None), seed=seed, limits=limits
        )
        self._calibration = Calibration.ideal(num_qubits)

    def calibration(self) -> Calibration:
        return self._calibration

    def transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """All-to-all and noiseless: a circuit already in the native gates runs as it is
        (skips a ~40 ms optimising transpile per circuit, which a scheduler's cost model
        would pay for every circuit and device); anything else is translated as usual."""
        if set(circuit.count_ops()) <= _NATIVE and circuit.num_qubits <= self.num_qubits:
            return circuit
        return super().transpile(circuit)

    def _run_circuit(self, circuit: QuantumCircuit, shots: int | None, seed: int) -> CircuitResult:
        from multiqpu.provider_api import active_qubits, compact_circuit

        qubits = active_qubits(circuit)
        metadata = {"physical_qubits": qubits, "estimated_fidelity": 1.0}
        if shots is None:
            from multiqpu_local._exact import exact_distribution

            probs = exact_distribution(circuit)
            return CircuitResult(counts={}, shots=None, probabilities=probs, metadata=metadata)
        if not qubits:  # nothing acts on any qubit: every classical bit reads 0
            counts = {"0" * circuit.num_clbits: shots}
        elif (
            _mid_circuit(circuit)
            and circuit.num_qubits <= _DRAW_MAX_QUBITS
            and not _classical_control(circuit)  # Aer runs if/else; the exact draw cannot
        ):
            # Aer simulates shot by shot once a gate follows a measurement (20x slower for
            # cutting's sub-experiments); drawing from the exact distribution is the same law.
            from multiqpu_local._exact import exact_distribution

            counts = _draw(exact_distribution(circuit), shots, seed)
        else:
            from multiqpu_local._aer import ideal_simulator, sample

            compact = compact_circuit(circuit, qubits)
            counts = sample(ideal_simulator(), compact, shots, seed)
        return CircuitResult(counts=counts, shots=shots, metadata={**metadata, "seed": seed})


_NATIVE = frozenset(IDEAL_BASIS) | {"measure", "reset", "barrier", "delay"}

#: Above this width (plus deferred measurements) Aer's own sampling is used.
_DRAW_MAX_QUBITS = 20


def _mid_circuit(circuit: QuantumCircuit) -> bool:
    """Does a gate act on a qubit after it was measured or reset?"""
    done: set[object] = set()
    for inst in circuit.data:
        name = inst.operation.name
        if name in ("measure", "reset"):
            done.add(inst.qubits[0])
        elif name not in ("barrier", "delay") and done.intersection(inst.qubits):
            return True
    return False


def _classical_control(circuit: QuantumCircuit) -> bool:
    """Does an instruction other than a measurement read or write classical bits?"""
    return any(inst.clbits and inst.operation.name != "measure" for inst in circuit.data)


def _draw(probs: dict[str, float], shots: int, seed: int) -> dict[str, int]:
    import numpy as np

    keys = list(probs)
    p = np.fromiter(probs.values(), float, len(keys))
    drawn = np.random.default_rng(seed).multinomial(shots, p / p.sum())
    return {k: int(n) for k, n in zip(keys, drawn, strict=True) if n}
