"""Fast noisy simulation of device-mapped circuits with Aer.

Simulating a 3-qubit circuit on a 133-qubit chip should not pay for the chip: we find the
physical qubits a transpiled (ISA) circuit touches, cut the device's Qiskit ``Target`` down
to them, build Aer's standard device noise model (``NoiseModel.from_backend``: depolarising +
thermal relaxation per gate, readout errors) for those qubits only, and cache the simulator
per (device, qubit set). The physics is the same as Aer's model of the whole chip restricted
to those qubits; the cost is that of the few qubits.

Used by the IBM fake backends, the local noisy simulators and any third-party adapter.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.transpiler import Target
    from qiskit_aer import AerSimulator

__all__ = ["SimulatorCache", "active_qubits", "compact_circuit", "counts_from_aer", "reduce_target"]

_NON_OPS = frozenset({"barrier", "delay"})


def active_qubits(circuit: QuantumCircuit) -> tuple[int, ...]:
    """Sorted indices of the qubits an operation (other than barrier/delay) acts on."""
    used: set[int] = set()
    for inst in circuit.data:
        if inst.operation.name in _NON_OPS:
            continue
        used.update(circuit.find_bit(q).index for q in inst.qubits)
    return tuple(sorted(used))


def compact_circuit(circuit: QuantumCircuit, qubits: Sequence[int]) -> QuantumCircuit:
    """The circuit on ``len(qubits)`` qubits, physical qubit ``qubits[i]`` becoming ``i``.
    Classical bits keep their order, so counts keys are unchanged."""
    from qiskit import QuantumCircuit

    index = {q: i for i, q in enumerate(qubits)}
    out = QuantumCircuit(len(qubits), name=circuit.name, global_phase=circuit.global_phase)
    out.add_bits(circuit.clbits)  # all of them, in order (loose bits may come first)
    for creg in circuit.cregs:
        out.add_register(creg)
    for inst in circuit.data:
        if inst.operation.name in _NON_OPS:
            continue
        qargs = [out.qubits[index[circuit.find_bit(q).index]] for q in inst.qubits]
        out.append(inst.operation, qargs, inst.clbits, copy=False)
    return out


def reduce_target(target: Target, qubits: Sequence[int]) -> Target:
    """A Target over ``qubits`` only, renumbered 0..k-1, with their errors and durations."""
    from qiskit.transpiler import Target as QTarget

    index = {q: i for i, q in enumerate(qubits)}
    props = target.qubit_properties
    reduced = QTarget(
        num_qubits=len(qubits),
        dt=target.dt,
        qubit_properties=[props[q] for q in qubits] if props else None,
    )
    for name in target.operation_names:
        op = target.operation_from_name(name)
        qmap = target[name]
        if qmap is None or None in qmap:  # global (ideal) instruction, e.g. control flow
            if isinstance(op, type):
                reduced.add_instruction(op, name=name)
            else:
                reduced.add_instruction(op, {None: None}, name=name)
            continue
        sub = {
            tuple(index[q] for q in qargs): p
            for qargs, p in qmap.items()
            if qargs is not None and all(q in index for q in qargs)
        }
        if sub:
            reduced.add_instruction(op, sub, name=name)
    return reduced


class _TargetBackend:
    """The minimal BackendV2 face ``NoiseModel.from_backend`` reads."""

    version = 2

    def __init__(self, target: Target) -> None:
        self.target = target
        self.operation_names = list(target.operation_names)
        self.dt = target.dt


def noise_model_for(target: Target, qubits: Sequence[int]) -> Any:
    """Aer's device noise model for ``qubits`` of ``target`` (renumbered 0..k-1)."""
    import warnings

    from qiskit_aer.noise import NoiseModel

    reduced = reduce_target(target, qubits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NoiseModel.from_backend(_TargetBackend(reduced))


def counts_from_aer(raw: dict[str, int]) -> dict[str, int]:
    """Aer joins registers with spaces; multiqpu keys are plain bitstrings."""
    out: dict[str, int] = {}
    for key, value in raw.items():
        k = key.replace(" ", "")
        out[k] = out.get(k, 0) + int(value)
    return out


class SimulatorCache:
    """Aer simulators keyed by (device key, physical qubit set); thread-safe."""

    def __init__(self, maxsize: int = 128) -> None:
        self._sims: dict[tuple[str, tuple[int, ...]], AerSimulator] = {}
        self._lock = threading.Lock()
        self._maxsize = maxsize

    def get(self, key: str, target: Target | None, qubits: Sequence[int]) -> AerSimulator:
        """A simulator for ``qubits`` of the device; ideal when ``target`` is None."""
        from qiskit_aer import AerSimulator

        cache_key = (key, tuple(qubits))
        with self._lock:
            sim = self._sims.get(cache_key)
        if sim is not None:
            return sim
        if target is None:
            sim = AerSimulator()
        else:
            sim = AerSimulator(noise_model=noise_model_for(target, qubits))
        with self._lock:
            if len(self._sims) >= self._maxsize:
                self._sims.pop(next(iter(self._sims)))
            self._sims[cache_key] = sim
        return sim

    def __len__(self) -> int:
        return len(self._sims)
