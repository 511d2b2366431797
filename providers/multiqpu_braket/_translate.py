"""Qiskit ``QuantumCircuit`` -> Braket OpenQASM 3 (and ``braket.circuits.Circuit``), and
Braket results -> multiqpu counts.

OpenQASM 3 text is the primary target: it is what Braket QPUs and the local simulators
execute (``LocalSimulator`` converts a ``Circuit`` to this very text before running it), and
building the string directly is much faster than building ``Circuit`` objects. The
``Circuit`` form exists for the vendor ``LocalEmulator``, whose validation and noise passes
work on ``Circuit`` objects only.

Gates outside :data:`GATES` are first decomposed by Qiskit's transpiler into a basis the
target accepts (:func:`decompose_for`). Measurements may read any subset of qubits into any
classical bits; results come back keyed in Qiskit order (classical bit 0 rightmost), unread
bits are ``0``. Mid-circuit measurement, reset and classical control flow are refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from multiqpu.provider_api import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

__all__ = [
    "GATES",
    "NoiseHook",
    "Program",
    "counts_from_braket",
    "decompose_for",
    "probabilities_from_braket",
    "program_from_source",
    "qiskit_basis",
    "sample_counts",
    "to_braket_circuit",
    "to_openqasm",
]

_Params = Callable[[Sequence[float]], tuple[float, ...]]


def _same(p: Sequence[float]) -> tuple[float, ...]:
    return tuple(p)


def _u2(p: Sequence[float]) -> tuple[float, ...]:
    return (math.pi / 2, p[0], p[1])


#: Qiskit gate name -> (Braket gate name, parameter map). Every entry is checked for
#: unitary equivalence (up to global phase) against Braket's simulator in the tests.
GATES: dict[str, tuple[str, _Params]] = {
    "id": ("i", _same),
    "x": ("x", _same),
    "y": ("y", _same),
    "z": ("z", _same),
    "h": ("h", _same),
    "s": ("s", _same),
    "sdg": ("si", _same),
    "t": ("t", _same),
    "tdg": ("ti", _same),
    "sx": ("v", _same),
    "sxdg": ("vi", _same),
    "rx": ("rx", _same),
    "ry": ("ry", _same),
    "rz": ("rz", _same),
    "p": ("phaseshift", _same),
    "u1": ("phaseshift", _same),
    "r": ("prx", _same),
    "u": ("U", _same),
    "u3": ("U", _same),
    "u2": ("U", _u2),
    "cx": ("cnot", _same),
    "cy": ("cy", _same),
    "cz": ("cz", _same),
    "cp": ("cphaseshift", _same),
    "cu1": ("cphaseshift", _same),
    "swap": ("swap", _same),
    "iswap": ("iswap", _same),
    "ecr": ("ecr", _same),
    "rxx": ("xx", _same),
    "ryy": ("yy", _same),
    "rzz": ("zz", _same),
    "ccx": ("ccnot", _same),
    "cswap": ("cswap", _same),
}

#: Braket gate name -> Qiskit gate name (the inverse used for device targets).
BRAKET_TO_QISKIT: dict[str, str] = {}
for _q, (_b, _f) in GATES.items():
    if _f is _same:
        BRAKET_TO_QISKIT.setdefault(_b, _q)

_SKIP = frozenset({"barrier", "delay", "global_phase"})
_REFUSED = {
    "reset": "reset is not supported by Braket programs here",
    "if_else": "classical control flow is not supported",
    "while_loop": "classical control flow is not supported",
    "for_loop": "classical control flow is not supported",
    "switch_case": "classical control flow is not supported",
}


def qiskit_basis(braket_ops: Iterable[str]) -> tuple[str, ...]:
    """Qiskit names of the gates we can translate to one of ``braket_ops``."""
    allowed = {op.lower() for op in braket_ops}
    return tuple(q for q, (b, _) in GATES.items() if b.lower() in allowed)


def decompose_for(circuit: QuantumCircuit, basis: Collection[str]) -> QuantumCircuit:
    """The circuit itself if every gate is in ``basis``, else Qiskit's decomposition into it
    (no layout or routing: qubit indices are kept)."""
    names = {inst.operation.name for inst in circuit.data}
    if names <= set(basis) | _SKIP | {"measure"}:
        return circuit
    from qiskit import transpile

    return transpile(circuit, basis_gates=[*basis, "measure"], optimization_level=0)


class NoiseHook(Protocol):
    """Noise pragmas to insert (used by the ``dm`` device)."""

    def gate(self, name: str, qubits: tuple[int, ...], refs: tuple[str, ...]) -> Iterable[str]:
        """Lines after gate ``name`` on circuit qubits ``qubits`` written as ``refs``."""
        ...

    def readout(self, qubit: int, ref: str) -> Iterable[str]:
        """Lines just before ``qubit`` is measured."""
        ...


@dataclass(frozen=True)
class Program:
    """One translated circuit and how to read its results back.

    ``measured`` are circuit qubit indices in the order the program measures them, ``labels``
    the qubit number each carries in the program (the Braket result's ``measured_qubits``),
    ``clbit_slot[c]`` the position in ``measured`` that classical bit ``c`` reads (None when
    no measurement writes it).
    """

    source: str
    measured: tuple[int, ...]
    labels: tuple[int, ...]
    clbit_slot: tuple[int | None, ...]
    active: tuple[int, ...]
    physical: bool = False


@dataclass(frozen=True)
class _Op:
    name: str
    params: tuple[float, ...]
    qubits: tuple[int, ...]


def _analyse(circuit: QuantumCircuit) -> tuple[list[_Op], dict[int, int]]:
    """Gates (in order) and the final clbit -> qubit map; refuses what Braket can't run."""
    ops: list[_Op] = []
    clbit_qubit: dict[int, int] = {}
    measured: set[int] = set()
    for inst in circuit.data:
        op = inst.operation
        name = op.name
        if name in _SKIP:
            continue
        if name in _REFUSED:
            raise InvalidInputError(f"circuit {circuit.name}: {_REFUSED[name]} on Braket")
        if getattr(op, "blocks", None):
            raise InvalidInputError(
                f"circuit {circuit.name}: control-flow operation '{name}' is not supported "
                "on Braket"
            )
        qubits = tuple(circuit.find_bit(q).index for q in inst.qubits)
        if name == "measure":
            clbit_qubit[circuit.find_bit(inst.clbits[0]).index] = qubits[0]
            measured.add(qubits[0])
            continue
        if measured.intersection(qubits):
            raise InvalidInputError(
                f"circuit {circuit.name}: gate '{name}' acts on a qubit after it was measured; "
                "mid-circuit measurement is not supported on Braket (measure at the end)"
            )
        if name not in GATES:
            raise InvalidInputError(
                f"circuit {circuit.name}: gate '{name}' has no Braket equivalent "
                "(decompose it first)"
            )
        params = tuple(float(p) for p in op.params)
        ops.append(_Op(name, params, qubits))
    return ops, clbit_qubit


def _layout(
    circuit: QuantumCircuit, ops: list[_Op], clbit_qubit: Mapping[int, int]
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int | None, ...]]:
    # Ascending order on purpose: Braket's local simulators (default simulator 1.41) return
    # the probability result type in the inverse permutation when its targets are not in
    # ascending order; measuring in qubit order sidesteps that.
    measured = sorted(set(clbit_qubit.values()))
    if not measured:
        raise InvalidInputError(f"circuit {circuit.name} measures no qubit")
    slot = {q: i for i, q in enumerate(measured)}
    clbit_slot = tuple(
        slot[clbit_qubit[c]] if c in clbit_qubit else None for c in range(circuit.num_clbits)
    )
    active = sorted({q for op in ops for q in op.qubits} | set(measured))
    return tuple(active), tuple(measured), clbit_slot


def _fmt(x: float) -> str:
    return repr(float(x))


def to_openqasm(
    circuit: QuantumCircuit,
    *,
    physical: Sequence[int] | None = None,
    exact: bool = False,
    noise: NoiseHook | None = None,
) -> Program:
    """Braket OpenQASM 3 for ``circuit``.

    ``physical=None`` declares ``qubit[k] q`` over the touched qubits only (compacted, in
    index order); otherwise circuit qubit ``i`` becomes physical qubit ``$physical[i]``.
    ``exact=True`` asks for the probability result type instead of measurements (simulators,
    shots=0).
    """
    ops, clbit_qubit = _analyse(circuit)
    active, measured, clbit_slot = _layout(circuit, ops, clbit_qubit)
    if physical is None:
        index = {q: i for i, q in enumerate(active)}
        ref = {q: f"q[{index[q]}]" for q in active}
        labels = tuple(index[q] for q in measured)
        lines = ["OPENQASM 3.0;", f"qubit[{len(active)}] q;"]
    else:
        ref = {q: f"${physical[q]}" for q in active}
        labels = tuple(physical[q] for q in measured)
        lines = ["OPENQASM 3.0;"]
    lines.insert(1, _header(labels, clbit_slot, physical is not None))
    if not exact:
        lines.append(f"bit[{len(measured)}] b;")
    for op in ops:
        bname, pmap = GATES[op.name]
        refs = tuple(ref[q] for q in op.qubits)
        args = f"({', '.join(_fmt(p) for p in pmap(op.params))})" if op.params else ""
        lines.append(f"{bname}{args} {', '.join(refs)};")
        if noise is not None:
            lines.extend(noise.gate(op.name, op.qubits, refs))
    if noise is not None:
        for q in measured:
            lines.extend(noise.readout(q, ref[q]))
    if exact:
        lines.append(f"#pragma braket result probability {', '.join(ref[q] for q in measured)}")
    else:
        lines.extend(f"b[{i}] = measure {ref[q]};" for i, q in enumerate(measured))
    source = "\n".join(lines) + "\n"
    return Program(source, measured, labels, clbit_slot, active, physical is not None)


def to_braket_circuit(
    circuit: QuantumCircuit,
    physical: Sequence[int],
    *,
    verbatim: bool = True,
    symmetric_edges: Collection[tuple[int, int]] | None = None,
) -> tuple[Any, Program]:
    """A ``braket.circuits.Circuit`` on physical qubits (inside a verbatim box by default),
    with measurements. ``symmetric_edges``: for symmetric two-qubit gates, orient each pair
    the way the device lists it. Imports braket."""
    from braket.circuits import Circuit, Instruction
    from braket.circuits.translations import BRAKET_GATES

    ops, clbit_qubit = _analyse(circuit)
    active, measured, clbit_slot = _layout(circuit, ops, clbit_qubit)
    body = Circuit()
    for op in ops:
        bname, pmap = GATES[op.name]
        targets = [physical[q] for q in op.qubits]
        if (
            symmetric_edges is not None
            and len(targets) == 2
            and bname in _SYMMETRIC
            and (targets[0], targets[1]) not in symmetric_edges
        ):
            targets.reverse()
        body.add_instruction(Instruction(BRAKET_GATES[bname](*pmap(op.params)), targets))
    out = Circuit().add_verbatim_box(body) if verbatim else body
    labels = tuple(physical[q] for q in measured)
    out.measure(list(labels))
    return out, Program("", measured, labels, clbit_slot, active, True)


_SYMMETRIC = frozenset({"cz", "swap", "iswap", "xx", "yy", "zz", "cphaseshift"})
_HEADER = "// multiqpu"


def _header(labels: Sequence[int], clbit_slot: Sequence[int | None], physical: bool) -> str:
    """A comment that lets a later process map results back (see :func:`program_from_source`):
    Braket returns the program in the result's ``additionalMetadata``."""
    slots = ",".join("-" if s is None else str(s) for s in clbit_slot)
    kind = "physical" if physical else "virtual"
    return f"{_HEADER} qubits={kind} measured={','.join(map(str, labels))} clbits={slots}"


def program_from_source(source: str) -> Program:
    """Rebuild the result mapping of a program written by :func:`to_openqasm` (for jobs
    re-attached by task ARN)."""
    for line in source.splitlines():
        if line.startswith(_HEADER):
            fields = dict(part.split("=", 1) for part in line[len(_HEADER) :].split())
            labels = tuple(int(x) for x in fields["measured"].split(",") if x)
            slots = tuple(
                None if x == "-" else int(x) for x in fields.get("clbits", "").split(",") if x
            )
            physical = fields.get("qubits") == "physical"
            return Program(source, labels, labels, slots, labels, physical)
    raise InvalidInputError("this Braket task was not written by multiqpu (no mapping header)")


# --------------------------------------------------------------------------- results
def _key(program: Program, bits: str) -> str:
    """Qiskit key (clbit 0 rightmost) from bits over ``program.measured`` (slot order)."""
    return "".join("0" if s is None else bits[s] for s in reversed(program.clbit_slot))


def counts_from_braket(
    program: Program, measurement_counts: Mapping[str, int], measured_qubits: Sequence[int]
) -> dict[str, int]:
    """Braket ``measurement_counts`` (keys over ``measured_qubits``, big-endian) -> counts
    keyed over the circuit's classical bits in Qiskit order."""
    column = {int(q): i for i, q in enumerate(measured_qubits)}
    try:
        cols = [column[label] for label in program.labels]
    except KeyError as exc:
        raise InvalidInputError(
            f"Braket result lacks measured qubit {exc.args[0]} (has {list(measured_qubits)})"
        ) from None
    out: dict[str, int] = {}
    for raw, n in measurement_counts.items():
        key = _key(program, "".join(raw[c] for c in cols))
        out[key] = out.get(key, 0) + int(n)
    return out


def probabilities_from_braket(
    program: Program, probabilities: Sequence[float], *, floor: float = 1e-15
) -> dict[str, float]:
    """Braket's probability vector over ``program.measured`` (first qubit most significant)
    -> probabilities keyed in Qiskit order (entries below ``floor`` dropped)."""
    k = len(program.measured)
    out: dict[str, float] = {}
    for i, p in enumerate(probabilities):
        if p <= floor:
            continue
        key = _key(program, format(i, f"0{k}b"))
        out[key] = out.get(key, 0.0) + float(p)
    return out


def sample_counts(
    probabilities: Mapping[str, float], shots: int, rng: np.random.Generator
) -> dict[str, int]:
    """Draw ``shots`` outcomes from an exact distribution (multinomial)."""
    import numpy as np

    keys = list(probabilities)
    p = np.array([probabilities[k] for k in keys], dtype=float)
    p = np.clip(p, 0.0, None)
    p /= p.sum()
    drawn = rng.multinomial(shots, p)
    return {k: int(n) for k, n in zip(keys, drawn, strict=True) if n}
