"""Exact outcome probabilities over a circuit's classical bits (``shots=None``).

Measurements that nothing acts on afterwards are read off the final state. Mid-circuit
measurements and resets are handled exactly too, by the deferred-measurement principle:
measuring qubit q mid-circuit is, for the final statistics, the same as copying it onto a
fresh ancilla with a CNOT and measuring the ancilla at the end; a reset hands the logical
qubit a fresh |0> wire and leaves the old one alone (it is marginalised). What remains is a
unitary circuit, simulated once as a statevector. Classical control flow is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from multiqpu.provider_api import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

__all__ = ["MAX_EXACT_QUBITS", "exact_distribution"]

#: More qubits than this in exact mode would need over 16 GiB of statevector.
MAX_EXACT_QUBITS = 30
#: Probabilities below this are dropped from the result (round-off, not physics).
_EPS = 1e-15
_SKIP = frozenset({"barrier", "delay"})
_CHUNK = 1 << 18  # outcomes formatted at a time (bounds the temporary arrays)


def exact_distribution(circuit: QuantumCircuit) -> dict[str, float]:
    """Probability of each classical-bit string (Qiskit order, clbit 0 rightmost)."""
    import numpy as np

    unitary, sources = _defer_measurements(circuit)
    width = circuit.num_clbits
    wires = sorted({s for s in sources if s is not None})
    if not wires:
        return {"0" * width: 1.0}
    unitary, kept = _compact(unitary, wires)
    position = {w: i for i, w in enumerate(wires)}
    from multiqpu_local._aer import probabilities

    probs = probabilities(unitary, [kept.index(w) for w in wires])
    index = np.nonzero(probs > _EPS)[0]
    # The classical-bit value of each outcome: clbit j takes the bit of its source wire.
    value = np.zeros(index.shape, dtype=object if width > 62 else np.int64)
    for clbit, wire in enumerate(sources):
        if wire is not None:
            bit = (index >> position[wire]) & 1
            value += bit.astype(object) << clbit if width > 62 else bit << clbit
    # Every source wire feeds at least one clbit, so distinct outcomes give distinct keys.
    out: dict[str, float] = {}
    for start in range(0, len(index), _CHUNK):
        chunk = slice(start, start + _CHUNK)
        keys = _bitstrings(value[chunk], width)
        out.update(zip(keys, probs[index[chunk]].tolist(), strict=True))
    return out


def _bitstrings(values: np.ndarray, width: int) -> list[str]:
    """Integers as zero-padded binary strings of ``width`` characters, vectorised."""
    import numpy as np

    if width > 62:
        return [format(int(v), f"0{width}b") for v in values]
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    chars = ((values[:, None] >> shifts) & 1).astype(np.uint32) + ord("0")
    return np.ascontiguousarray(chars).view(f"<U{width}").ravel().tolist()


def _defer_measurements(circuit: QuantumCircuit) -> tuple[QuantumCircuit, list[int | None]]:
    """A measurement-free circuit and, per classical bit, the wire whose final value it
    holds (None: never written, reads 0)."""
    from qiskit import QuantumCircuit
    from qiskit.circuit import ControlFlowOp, Gate

    if "initialize" in circuit.count_ops():  # = reset + state preparation: both handled
        circuit = circuit.decompose(gates_to_decompose=["initialize"])
    data = list(circuit.data)
    qindex = {q: circuit.find_bit(q).index for q in circuit.qubits}
    cindex = {c: circuit.find_bit(c).index for c in circuit.clbits}

    # Backwards pass: is a measurement followed by a gate on the same wire (before a reset)?
    gate_later = [False] * circuit.num_qubits
    final: dict[int, bool] = {}
    for i in range(len(data) - 1, -1, -1):
        name = data[i].operation.name
        qs = [qindex[q] for q in data[i].qubits]
        if name == "measure":
            final[i] = not gate_later[qs[0]]
        elif name == "reset":
            gate_later[qs[0]] = False
        elif name not in _SKIP:
            for q in qs:
                gate_later[q] = True

    wire = list(range(circuit.num_qubits))  # logical qubit -> current wire
    next_wire = circuit.num_qubits
    ops: list[tuple[object, list[int]]] = []
    sources: list[int | None] = [None] * circuit.num_clbits
    for i, inst in enumerate(data):
        op = inst.operation
        qs = [qindex[q] for q in inst.qubits]
        if op.name in _SKIP:
            continue
        if op.name == "measure":
            clbit = cindex[inst.clbits[0]]
            if final[i]:
                sources[clbit] = wire[qs[0]]
            else:
                ops.append(("cx", [wire[qs[0]], next_wire]))
                sources[clbit] = next_wire
                next_wire += 1
        elif op.name == "reset":
            wire[qs[0]] = next_wire
            next_wire += 1
        elif isinstance(op, ControlFlowOp) or inst.clbits or not isinstance(op, Gate):
            raise InvalidInputError(
                f"exact mode (shots=None) cannot evaluate '{op.name}' in circuit "
                f"'{circuit.name}' (classical control or a non-unitary instruction); "
                "run it with a number of shots instead"
            )
        else:
            ops.append((op, [wire[q] for q in qs]))

    out = QuantumCircuit(next_wire, global_phase=circuit.global_phase)
    for op, qargs in ops:
        if op == "cx":
            out.cx(*qargs)
        else:
            out.append(op, qargs, copy=False)
    return out, sources


def _compact(circuit: QuantumCircuit, keep: list[int]) -> tuple[QuantumCircuit, list[int]]:
    """Drop wires that neither hold a result nor are touched (their state is |0>); returns
    the smaller circuit and the old index of each of its wires."""
    from multiqpu.provider_api import active_qubits, compact_circuit

    used = sorted(set(active_qubits(circuit)) | set(keep))
    if len(used) > MAX_EXACT_QUBITS:
        _too_many(circuit, len(used))
    return compact_circuit(circuit, used), used


def _too_many(circuit: QuantumCircuit, qubits: int) -> NoReturn:
    raise InvalidInputError(
        f"exact mode (shots=None) on circuit '{circuit.name}' needs a statevector of {qubits} "
        f"qubits (more than {MAX_EXACT_QUBITS}); run it with a number of shots instead"
    )
