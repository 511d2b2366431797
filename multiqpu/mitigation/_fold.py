"""Native gate folding of circuits already mapped to a device.

Each folded gate ``G`` becomes ``G (G^-1 G)^k``: the same unitary, with the gate's noise
applied ``2k + 1`` times. ``gates="all"`` folds every physical gate (virtual ``rz`` and
``id`` are left alone: they carry no error), ``gates="two_qubit"`` only the two-qubit ones
(their errors dominate; IBM's runtime folds those by default). Readout is not folded: it
is corrected separately.

The folded circuit stays native: the inverse of ``cz``, ``ecr``, ``cx``, ``swap`` or ``x``
is the gate itself, a parametrised native gate's inverse is the same gate with the angle
negated, and any other inverse (``sx^-1``) is rewritten in the device's native
single-qubit gates (``rz(pi) sx rz(pi)``: one physical pulse, as the gate has). Barriers
on the gate's qubits separate the copies so that nothing downstream can merge or cancel
them. Scales that are not odd integers fold a seeded random subset of the gates one extra
time (single- and two-qubit gates alike); the *achieved* scale (the error-weighted mean
amplification, with the device's calibrated gate errors) is returned and is what the
extrapolation uses.

Why not mitiq: measured here (docs/mitigation.md), ``import mitiq`` takes 6-10 s and its
Qiskit path converts through Cirq (0.4-0.9 s per circuit for three scales); its folded
circuits hold ``sxdg`` (not native on IBM devices), and the device's optimising transpiler
then cancels the folds (a scale-5 circuit comes back with the scale-1 gate count). This
module folds a 133-qubit-wide ISA circuit in milliseconds and keeps it ISA.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Literal

from multiqpu.errors import InvalidInputError
from multiqpu.mitigation._isa import NON_GATES

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["FoldGates", "fold_gates", "fold_two_qubit_gates", "foldable_positions"]

FoldGates = Literal["all", "two_qubit"]

#: Gates without error on every platform we know (frame changes and idles).
_VIRTUAL = frozenset({"rz", "id", "i", "global_phase", "virtual_rz"})


def foldable_positions(circuit: QuantumCircuit, gates: FoldGates = "two_qubit") -> list[int]:
    """Indices in ``circuit.data`` of the (top-level) gates that folding amplifies."""
    out = []
    for i, inst in enumerate(circuit.data):
        name = inst.operation.name
        if name in NON_GATES or name in _VIRTUAL or not inst.qubits:
            continue
        if gates == "two_qubit" and len(inst.qubits) != 2:
            continue
        out.append(i)
    return out


def _native_inverse(op: Any, basis: Collection[str] | None) -> list[Any]:
    """The inverse of ``op`` as a list of native operations on its qubits (in order)."""
    from qiskit import QuantumCircuit

    from multiqpu.mitigation._isa import native_1q

    inv = op.inverse()
    if basis is None or inv.name in basis:
        return [inv]
    if op.num_qubits != 1:
        raise InvalidInputError(
            f"cannot fold {op.name}: its inverse ({inv.name}) is not a native gate of the "
            f"device ({sorted(basis)})"
        )
    qc = QuantumCircuit(1)
    qc.append(inv, [0])
    return [inst.operation for inst in native_1q(qc, basis).data]


def fold_gates(
    isa: QuantumCircuit,
    scale: float,
    *,
    gates: FoldGates = "all",
    basis: Collection[str] | None = None,
    seed: int = 0,
    errors: Callable[[str, tuple[int, ...]], float] | None = None,
) -> tuple[QuantumCircuit, float]:
    """The circuit with its ``gates`` folded to noise ``scale`` (>= 1), and the scale
    achieved. ``basis``: the device's native gates (inverses are expressed in them).

    Partial folds (scales that are not odd integers) are drawn separately among the
    single- and the two-qubit gates, so both kinds are amplified alike. With ``errors``
    (the device's error per (gate, physical qubits), e.g. ``Calibration.error``), the
    achieved scale is the error-weighted mean amplification ``sum e_i (2 k_i + 1) / sum
    e_i`` (the noise scale to first order); otherwise the gate-count mean."""
    import numpy as np

    if not scale >= 1:
        raise InvalidInputError(f"noise scale must be >= 1, got {scale}")
    positions = foldable_positions(isa, gates)
    d = len(positions)
    if d == 0 or scale == 1:
        return isa, float(scale) if d == 0 else 1.0
    width = np.array([len(isa.data[i].qubits) for i in positions])
    per_gate = np.zeros(d, dtype=np.int64)
    rng = np.random.default_rng([seed, d, round(scale * 1000)])
    for kind in np.unique(width):
        members = np.flatnonzero(width == kind)
        folds = round((scale - 1.0) * len(members) / 2.0)
        base, extra = divmod(folds, len(members))
        per_gate[members] = base
        if extra:
            per_gate[rng.choice(members, size=extra, replace=False)] += 1
    count = dict(zip(positions, per_gate.tolist(), strict=True))
    weight = np.ones(d)
    if errors is not None:
        weight = np.array(
            [
                errors(
                    isa.data[i].operation.name,
                    tuple(isa.find_bit(q).index for q in isa.data[i].qubits),
                )
                for i in positions
            ]
        )
        if not weight.sum() > 0:
            weight = np.ones(d)
    achieved = float((weight * (2 * per_gate + 1)).sum() / weight.sum())

    out = isa.copy_empty_like()
    inverses: dict[tuple[str, tuple[float, ...]], Sequence[Any]] = {}
    for i, inst in enumerate(isa.data):
        out.append(inst.operation, inst.qubits, inst.clbits, copy=False)
        k = count.get(i, 0)
        if not k:
            continue
        op = inst.operation
        key = (op.name, tuple(float(p) for p in op.params))
        inv = inverses.get(key)
        if inv is None:
            inv = inverses[key] = _native_inverse(op, basis)
        for _ in range(k):
            out.barrier(*inst.qubits)
            for piece in inv:
                out.append(piece, inst.qubits, copy=False)
            out.barrier(*inst.qubits)
            out.append(op, inst.qubits, copy=False)
    return out, achieved


def fold_two_qubit_gates(
    isa: QuantumCircuit, scale: float, *, basis: Collection[str] | None = None, seed: int = 0
) -> tuple[QuantumCircuit, float]:
    """:func:`fold_gates` with ``gates="two_qubit"``."""
    return fold_gates(isa, scale, gates="two_qubit", basis=basis, seed=seed)
