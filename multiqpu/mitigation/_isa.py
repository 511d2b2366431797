"""Circuits as a device runs them: which physical qubit each classical bit reads, native
single-qubit resynthesis, and running an already-mapped circuit exactly as given.

Folding and twirling must act on the circuit *as mapped to the device* (native gates,
physical qubits): folded at the logical level, the device's optimising transpiler would
cancel ``G G^-1`` pairs and could choose a different layout per noise scale. A device
transpiles every circuit it runs through ``Device.transpile``, which is cached per circuit
(``Device._transpile_cache``, keyed by :func:`multiqpu._transpile.circuit_key`). Adopting an
ISA circuit puts it in that cache as its own transpilation, so the device runs it unchanged
on the same physical qubits; :func:`adopt` then checks that the device really does.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import Device

__all__ = ["adopt", "clbit_qubits", "innermost", "is_native", "native_1q"]

#: Operations that are never "gates" for folding, twirling or basis checks.
NON_GATES = frozenset(
    {"measure", "barrier", "reset", "delay", "if_else", "while_loop", "for_loop", "switch_case",
     "box", "store"}
)  # fmt: skip


def innermost(device: Device) -> Device:
    """The device under any wrappers (queues, fault injection) that delegate ``transpile``."""
    from multiqpu.device import Device as DeviceBase

    seen = 0
    while isinstance(getattr(device, "inner", None), DeviceBase) and seen < 16:
        device = device.inner  # type: ignore[attr-defined]
        seen += 1
    return device


def adopt(device: Device, circuit: QuantumCircuit) -> None:
    """Make ``device`` run ``circuit`` (already mapped to it) as given, without transpiling
    it again. Raises :class:`~multiqpu.InvalidInputError` if the device cannot."""
    from multiqpu._transpile import circuit_key

    inner = innermost(device)
    cache = getattr(inner, "_transpile_cache", None)
    if isinstance(cache, dict):
        cache[circuit_key(circuit)] = circuit
    if device.transpile(circuit) is not circuit:
        raise InvalidInputError(
            f"device {device.spec} re-transpiles every circuit it runs, which would undo "
            "gate folding and twirling; ZNE and PauliTwirl need devices built on "
            "multiqpu.Device's transpile cache"
        )


def clbit_qubits(isa: QuantumCircuit) -> tuple[int | None, ...]:
    """Per classical bit, the physical qubit whose measurement it holds (the last one
    written; None for a bit never measured)."""
    out: list[int | None] = [None] * isa.num_clbits
    for inst in isa.data:
        if inst.operation.name == "measure":
            out[isa.find_bit(inst.clbits[0]).index] = isa.find_bit(inst.qubits[0]).index
    return tuple(out)


def native_1q(circuit: QuantumCircuit, basis: Collection[str]) -> QuantumCircuit:
    """Rewrite runs of single-qubit gates in the device's native single-qubit gates (e.g.
    Paulis into ``rz``/``sx``/``x``, or into ``r`` on IQM-like devices). Two-qubit gates,
    barriers and measurements are untouched, so layout and routing stay as they are."""
    from qiskit.transpiler import PassManager
    from qiskit.transpiler.passes import Optimize1qGatesDecomposition

    out: QuantumCircuit = PassManager([Optimize1qGatesDecomposition(basis=list(basis))]).run(
        circuit
    )
    if not is_native(out, basis):
        bad = sorted({i.operation.name for i in out.data} - set(basis) - NON_GATES)
        raise InvalidInputError(
            f"cannot express single-qubit gates {bad} in the native gates {sorted(basis)}"
        )
    return out


def is_native(circuit: QuantumCircuit, basis: Collection[str]) -> bool:
    names = {inst.operation.name for inst in circuit.data}
    return names <= set(basis) | NON_GATES


def two_qubit_positions(circuit: QuantumCircuit) -> Sequence[int]:
    """Indices in ``circuit.data`` of the (top-level) two-qubit gates."""
    return [
        i
        for i, inst in enumerate(circuit.data)
        if len(inst.qubits) == 2 and inst.operation.name not in NON_GATES
    ]
