"""From a user's circuit to fragments that fit the fleet's devices.

1. :func:`prepare_circuit`: drop final measurements and barriers, refuse unbound parameters,
   unroll gates on more than two qubits (the cut finder only handles 1- and 2-qubit gates).
2. :func:`find_cut_candidates`: qiskit-addon-cutting's ``find_cuts`` (gate and wire cuts,
   LO decompositions) for each candidate fragment width: the fleet's distinct device sizes
   below the circuit's width, largest first, so fragments are sized to devices that exist.
3. :func:`partition`: the cut circuit's connected pieces (cut gates ignored), packed
   first-fit-decreasing into fragments no wider than the chosen width; a gate cut whose two
   qubits land in the same fragment is put back (it would only add overhead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = [
    "CUTTABLE_2Q",
    "CutCandidate",
    "Partition",
    "find_cut_candidates",
    "partition",
    "prepare_circuit",
]

#: Two-qubit gates qiskit-addon-cutting decomposes (a cut's overhead depends on the gate:
#: 9 for CX/CZ, (1 + 2|sin θ|)^2 for RZZ(θ) and friends).
CUTTABLE_2Q = (
    "cx", "cy", "cz", "ch", "ecr", "swap", "iswap", "dcx", "csx", "cs", "csdg",
    "rxx", "ryy", "rzz", "crx", "cry", "crz", "cp",
)  # fmt: skip
_BASIS_1Q = ("id", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "sxdg",
             "rx", "ry", "rz", "p", "u")  # fmt: skip
_DROP = frozenset({"barrier", "delay"})


def prepare_circuit(circuit: QuantumCircuit) -> QuantumCircuit:
    """A measurement-free, barrier-free copy of ``circuit`` made of 1- and 2-qubit gates."""
    from qiskit import QuantumCircuit as QC
    from qiskit.circuit import Gate

    if not isinstance(circuit, QC):
        raise InvalidInputError(f"expected a qiskit QuantumCircuit, got {type(circuit).__name__}")
    if circuit.num_parameters:
        names = sorted(p.name for p in circuit.parameters)
        raise InvalidInputError(
            f"circuit '{circuit.name}' has unbound parameters {names[:5]}"
            f"{'...' if len(names) > 5 else ''}; bind them first (assign_parameters)"
        )
    body = circuit.remove_final_measurements(inplace=False)
    out = QC(body.num_qubits, name=circuit.name, global_phase=body.global_phase)
    needs_unroll = False
    for inst in body.data:
        op = inst.operation
        if op.name in _DROP:
            continue
        if not isinstance(op, Gate) or inst.clbits:
            raise InvalidInputError(
                f"circuit '{circuit.name}' holds '{op.name}' before its final measurements; "
                "cutting needs a unitary circuit followed only by measurements"
            )
        if op.num_qubits > 2 or (op.num_qubits == 2 and op.name not in CUTTABLE_2Q):
            needs_unroll = True
        qargs = [body.find_bit(q).index for q in inst.qubits]
        out.append(op, qargs, copy=False)
    if needs_unroll:
        from qiskit import transpile

        out = transpile(out, basis_gates=[*_BASIS_1Q, *CUTTABLE_2Q], optimization_level=1)
        out.name = circuit.name
    return out


@dataclass(frozen=True)
class CutCandidate:
    """One way to cut: the circuit with cut markers, for fragments of at most ``width``."""

    width: int
    cut_circuit: Any  # QuantumCircuit holding TwoQubitQPDGate / CutWire markers
    overhead: float
    minimum_reached: bool
    gate_cuts: int
    wire_cuts: int


def find_cut_candidates(
    circuit: QuantumCircuit,
    widths: Sequence[int],
    *,
    max_overhead: float,
    seed: int | None,
    max_backjumps: int | None,
    gate_cuts: bool = True,
    wire_cuts: bool = True,
) -> list[CutCandidate]:
    """``find_cuts`` for each width in ``widths`` (descending, distinct, each below the
    circuit's width). The search is bounded: it stops once the overhead passes
    ``max_overhead`` (returning its greedy best, which a plan then refuses)."""
    import math

    from qiskit_addon_cutting import DeviceConstraints, OptimizationParameters, find_cuts

    out: list[CutCandidate] = []
    for width in widths:
        params = OptimizationParameters(
            seed=seed,
            max_gamma=max(1.0, math.sqrt(max_overhead)) * 1.0001,
            max_backjumps=max_backjumps,
            gate_lo=gate_cuts,
            wire_lo=wire_cuts,
        )
        cut, meta = find_cuts(circuit, params, DeviceConstraints(qubits_per_subcircuit=width))
        kinds = [kind for kind, _ in meta["cuts"]]
        out.append(
            CutCandidate(
                width=width,
                cut_circuit=cut,
                overhead=float(meta["sampling_overhead"]),
                minimum_reached=bool(meta["minimum_reached"]),
                gate_cuts=kinds.count("Gate Cut"),
                wire_cuts=kinds.count("Wire Cut"),
            )
        )
    return out


@dataclass(frozen=True)
class Partition:
    """The expanded circuit (one extra qubit per wire cut) and its fragments.

    ``labels[q]`` is the fragment of expanded qubit ``q`` (None: idle qubit, left in |0>);
    ``output_qubit[i]`` is the expanded qubit that carries original qubit ``i`` at the end.
    ``cuts`` describes each remaining cut: (kind, gate name, original qubits).
    """

    expanded: Any  # QuantumCircuit with TwoQubitQPDGate instructions
    labels: tuple[int | None, ...]
    output_qubit: tuple[int, ...]
    fragment_qubits: tuple[tuple[int, ...], ...]
    cuts: tuple[tuple[str, str, tuple[int, ...]], ...]

    @property
    def num_fragments(self) -> int:
        return len(self.fragment_qubits)


def _components(circuit: QuantumCircuit) -> tuple[list[list[int]], set[int]]:
    """Connected qubit sets ignoring cut gates, and the idle qubits."""
    from qiskit_addon_cutting.qpd import TwoQubitQPDGate

    parent = list(range(circuit.num_qubits))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    used: set[int] = set()
    for inst in circuit.data:
        qs = [circuit.find_bit(q).index for q in inst.qubits]
        used.update(qs)
        if isinstance(inst.operation, TwoQubitQPDGate):
            continue
        for q in qs[1:]:
            ra, rb = find(qs[0]), find(q)
            if ra != rb:
                parent[rb] = ra
    groups: dict[int, list[int]] = {}
    for q in sorted(used):
        groups.setdefault(find(q), []).append(q)
    idle = set(range(circuit.num_qubits)) - used
    return sorted(groups.values(), key=min), idle


def _pack(components: list[list[int]], width: int) -> list[list[int]]:
    """First-fit decreasing: fewer, fuller fragments (fewer sub-experiments to run)."""
    bins: list[list[int]] = []
    for comp in sorted(components, key=len, reverse=True):
        for b in bins:
            if len(b) + len(comp) <= width:
                b.extend(comp)
                break
        else:
            bins.append(list(comp))
    return sorted((sorted(b) for b in bins), key=min)


def partition(circuit: QuantumCircuit, cut_circuit: QuantumCircuit | None, width: int) -> Partition:
    """Fragments of ``cut_circuit`` (``None``: no cut) packed into ``width`` qubits each."""
    from qiskit.circuit import CircuitInstruction
    from qiskit_addon_cutting import cut_wires
    from qiskit_addon_cutting.qpd import TwoQubitQPDGate

    source = circuit if cut_circuit is None else cut_circuit
    # The original operation behind each gate cut, in order (find_cuts replaces gates 1:1
    # and inserts cut_wire markers; every other instruction is the original's, in order).
    originals: list[Any] = []
    k = 0
    for inst in source.data:
        if inst.operation.name == "cut_wire":
            continue
        if isinstance(inst.operation, TwoQubitQPDGate):
            originals.append(circuit.data[k].operation)
        k += 1
    expanded = cut_wires(source) if cut_circuit is not None else source.copy()
    output_qubit = tuple(expanded.find_bit(q).index for q in circuit.qubits)
    # Expanded qubit -> original qubit (the wire a move splits off belongs to the same one).
    origin: dict[int, int] = {}
    for i, q in enumerate(circuit.qubits):
        origin[expanded.find_bit(q).index] = i
    for j in range(expanded.num_qubits - 1, -1, -1):  # new wires sit just before their qubit
        if j not in origin:
            origin[j] = origin[j + 1]

    components, idle = _components(expanded)
    fragments = _pack(components, width)
    label_of: dict[int, int] = {q: f for f, qs in enumerate(fragments) for q in qs}

    # Put back gate cuts that ended inside one fragment.
    cuts: list[tuple[str, str, tuple[int, ...]]] = []
    gate_index = 0
    for i, inst in enumerate(expanded.data):
        op = inst.operation
        if not isinstance(op, TwoQubitQPDGate):
            continue
        qs = [expanded.find_bit(q).index for q in inst.qubits]
        is_move = op.label is not None and op.label.startswith("cut_move")
        if is_move:
            cuts.append(("wire", "move", (origin[qs[0]],)))
            continue
        original = originals[gate_index]
        gate_index += 1
        if label_of.get(qs[0]) == label_of.get(qs[1]):
            expanded.data[i] = CircuitInstruction(original, inst.qubits, inst.clbits)
        else:
            cuts.append(("gate", original.name, (origin[qs[0]], origin[qs[1]])))
    labels = tuple(None if q in idle else label_of[q] for q in range(expanded.num_qubits))
    return Partition(
        expanded=expanded,
        labels=labels,
        output_qubit=output_qubit,
        fragment_qubits=tuple(tuple(f) for f in fragments),
        cuts=tuple(cuts),
    )
