"""Pauli twirling of the two-qubit gates of circuits already mapped to a device.

For a Clifford gate ``G`` and a two-qubit Pauli ``P``, ``P' = G P G^-1`` is a Pauli (up to a
sign), so ``P' G P = ±G``: inserting ``P`` before and ``P'`` after the gate leaves the circuit's
unitary unchanged while averaging over random ``P`` turns the gate's noise channel into a
Pauli channel (coherent errors become stochastic ones). The conjugation tables are computed
from Qiskit's Clifford simulator for whatever native gate the device has (``cz``, ``ecr``,
``cx``, ...); non-Clifford two-qubit gates are left untwirled. The inserted Paulis are merged
into the neighbouring single-qubit gates and rewritten in the device's native gates
(:func:`multiqpu.mitigation._isa.native_1q`), so the circuit stays native and keeps its
layout. Signs are kept in the global phase, so every variant is exactly the same unitary.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from multiqpu.mitigation._isa import NON_GATES, native_1q

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

__all__ = ["pauli_table", "twirl"]

_LABELS = tuple(a + b for a in "IXYZ" for b in "IXYZ")  # Qiskit order: label[1] is qubit 0


Table = tuple[tuple[str, bool], ...]
_TABLES: dict[tuple[str, tuple[float, ...]], Table | None] = {}


def _table(gate: Any) -> Table | None:
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Clifford, Pauli

    qc = QuantumCircuit(2)
    qc.append(gate, [0, 1])
    try:
        cliff = Clifford(qc)
    except Exception:  # not a Clifford gate: no Pauli twirl exists for it
        return None
    out = []
    for label in _LABELS:
        evolved = Pauli(label).evolve(cliff, frame="s")  # G P G^dagger
        negative = evolved.phase == 2
        evolved.phase = 0
        out.append((evolved.to_label(), negative))
    return tuple(out)


def pauli_table(gate: Any) -> Table | None:
    """For each of the 16 Paulis ``P`` (``_LABELS`` order): ``(label of G P G^-1, sign is
    negative)``; None when ``gate`` is not Clifford. Cached per (name, parameters)."""
    key = (gate.name, tuple(float(p) for p in gate.params))
    if key not in _TABLES:
        _TABLES[key] = _table(gate)
    return _TABLES[key]


def _paulis(out: QuantumCircuit, label: str, qubits: Any) -> None:
    for char, q in zip(reversed(label), qubits, strict=True):  # label[-1] acts on qubits[0]
        if char == "X":
            out.x(q)
        elif char == "Y":
            out.y(q)
        elif char == "Z":
            out.z(q)


def twirl(
    isa: QuantumCircuit, rng: np.random.Generator, *, basis: Collection[str]
) -> tuple[QuantumCircuit, int]:
    """One random twirl of every Clifford two-qubit gate of ``isa``, in native gates.
    Returns the circuit and how many gates were twirled."""
    out = isa.copy_empty_like()
    twirled = 0
    for inst in isa.data:
        op = inst.operation
        table = None
        if len(inst.qubits) == 2 and op.name not in NON_GATES:
            table = pauli_table(op)
        if table is None:
            out.append(op, inst.qubits, inst.clbits, copy=False)
            continue
        k = int(rng.integers(16))
        after, negative = table[k]
        _paulis(out, _LABELS[k], inst.qubits)
        out.append(op, inst.qubits, copy=False)
        _paulis(out, after, inst.qubits)
        if negative:
            out.global_phase += math.pi
        twirled += 1
    return native_1q(out, basis), twirled
