"""Sub-experiments of a cut circuit: generated once each, with the algebra to knit them.

The quasi-probability decomposition of ``K`` cuts is a sum over terms ``t = (j_1..j_K)``
(one map per cut) with coefficient ``C_t = prod_i c_{i, j_i}``. For a Pauli ``P`` split as
``P_1 ⊗ ... ⊗ P_F`` over the fragments,

    <P> = sum_t C_t prod_L E_L(t, P_L)

where ``E_L`` is the signed expectation (QPD-measurement parity times ``P_L``'s parity) of
fragment ``L``'s circuit for term ``t``. That circuit depends only on the operations the
term puts on *that fragment's side* of each cut, so terms that agree there share it
(a cut CNOT has 6 terms but 5 distinct operations per side: qiskit-addon-cutting issue #262).
We build each distinct (fragment, side operations, measurement group) circuit once, then
describe the estimator as *monomials*: coefficient x one (circuit, measured Pauli column)
variable per fragment. Reconstruction (:mod:`._reconstruct`) evaluates them vectorised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

    from multiqpu.cutting._observables import Observables
    from multiqpu.cutting._partition import Partition

__all__ = ["CutProblem", "SubExperiment", "allocate_shots", "build_problem"]


@dataclass(frozen=True)
class SubExperiment:
    """One distinct circuit to run.

    Classical bits ``0..num_obs_bits-1`` hold the measured observable qubits, then the QPD
    measurements. ``column_masks[u]`` selects the bits whose parity gives the sign of
    column ``u`` (a Pauli of the measurement group, times the QPD parity). ``trivial``: it
    need not run (it measures nothing, so every column is exactly +1, or no term reads it).
    """

    circuit: Any  # QuantumCircuit
    fragment: int
    num_obs_bits: int
    qpd_mask: int
    column_masks: tuple[int, ...]
    weight: float
    trivial: bool

    @property
    def width(self) -> int:
        return int(self.circuit.num_qubits)


@dataclass
class CutProblem:
    """Everything reconstruction needs, plus the sizes a plan reports.

    ``mono_var[m, L]`` is the global variable (``var_offset[circuit] + column``) monomial
    ``m`` reads from fragment ``L``; ``mono_pauli[m]`` the Pauli it contributes to.
    In distribution mode (``observables`` None) each fragment has one Z-basis group and
    ``mono_var`` holds circuit indices.
    """

    partition: Partition
    experiments: list[SubExperiment]
    var_offset: np.ndarray
    mono_coef: np.ndarray
    mono_pauli: np.ndarray
    mono_var: np.ndarray
    num_terms: int
    num_raw_subexperiments: int
    kappa: float
    observables: Observables | None
    #: distribution mode: per fragment, the original qubits its output bits carry (bit order)
    output_qubits: tuple[tuple[int, ...], ...] = ()

    @property
    def num_fragments(self) -> int:
        return self.partition.num_fragments

    @property
    def overhead(self) -> float:
        return self.kappa**2

    @property
    def num_variables(self) -> int:
        return int(self.var_offset[-1])


def _ops_key(ops: Sequence[Any]) -> tuple[Any, ...]:
    return tuple((op.name, tuple(float(p) for p in op.params)) for op in ops)


@dataclass(frozen=True)
class _Group:
    pauli_indices: tuple[int, ...]  # fragment-local qubits measured
    bases: tuple[str, ...]  # "X", "Y" or "Z" per measured qubit
    bitmasks: tuple[int, ...]  # per column: which measured bits enter the parity


def _groups_for(subpaulis: Any) -> tuple[list[_Group], list[tuple[int, int]]]:
    """Qubit-wise commuting groups of a fragment's sub-Paulis and, per sub-Pauli, its
    (group, column). Uses qiskit-addon-cutting's ObservableCollection."""
    from qiskit_addon_cutting.utils.observable_grouping import ObservableCollection

    coll = ObservableCollection(subpaulis)
    groups: list[_Group] = []
    for cog in coll.groups:
        idx = tuple(cog.pauli_indices)
        gen = cog.general_observable
        bases = tuple("Y" if gen.x[q] and gen.z[q] else "X" if gen.x[q] else "Z" for q in idx)
        groups.append(_Group(idx, bases, tuple(cog.pauli_bitmasks)))
    where = [coll.lookup[p][0] for p in subpaulis]
    return groups, where


def _build_circuit(
    subcircuit: QuantumCircuit, qpd_ids: list[int], map_ids: list[int], group: _Group
) -> QuantumCircuit:
    from qiskit.circuit import ClassicalRegister
    from qiskit_addon_cutting.qpd import decompose_qpd_instructions

    circ = subcircuit.copy()
    nobs = len(group.pauli_indices)
    obs_reg = ClassicalRegister(nobs, "observable_measurements") if nobs else None
    if obs_reg is not None:
        circ.add_register(obs_reg)
    decompose_qpd_instructions(circ, [[i] for i in qpd_ids], map_ids, inplace=True)
    for b, (q, basis) in enumerate(zip(group.pauli_indices, group.bases, strict=True)):
        if basis == "X":
            circ.h(q)
        elif basis == "Y":
            circ.sx(q)
        assert obs_reg is not None
        circ.measure(q, obs_reg[b])
    _drop_edge_resets(circ)
    return circ


def _drop_edge_resets(circ: QuantumCircuit) -> None:
    """Resets on a qubit before anything else acts on it, or after everything, do nothing
    (lets wire cuts run on devices without mid-circuit reset, as qiskit-addon-cutting does)."""
    data = circ.data
    n = circ.num_qubits
    drop: set[int] = set()
    for order in (range(len(data)), range(len(data) - 1, -1, -1)):
        touched = [False] * n
        for i in order:
            inst = data[i]
            qs = [circ.find_bit(q).index for q in inst.qubits]
            if inst.operation.name == "reset":
                if not touched[qs[0]]:
                    drop.add(i)
            elif inst.operation.name != "barrier":
                for q in qs:
                    touched[q] = True
    for i in sorted(drop, reverse=True):
        del circ.data[i]


def _terms(bases: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """All terms: map indices (T x K) and coefficients (T,)."""
    import numpy as np

    sizes = [len(b.maps) for b in bases]
    if not sizes:
        return np.zeros((1, 0), dtype=np.int64), np.ones(1)
    grids = np.indices(sizes).reshape(len(sizes), -1).T
    coef = np.ones(grids.shape[0])
    for i, b in enumerate(bases):
        coef *= np.asarray(b.coeffs, dtype=float)[grids[:, i]]
    return grids, coef


def build_problem(
    partition: Partition,
    observables: Observables | None,
    *,
    measured_qubits: Sequence[int] | None = None,
) -> CutProblem:
    """Distinct sub-experiments and monomials for ``observables`` (or, when None, for the
    output distribution over ``measured_qubits`` of the original circuit)."""
    import numpy as np
    from qiskit.quantum_info import PauliList
    from qiskit_addon_cutting import partition_problem
    from qiskit_addon_cutting.qpd import SingleQubitQPDGate

    from multiqpu._circuit_memo import freeze
    from multiqpu._transpile import circuit_key_and_operations

    expanded = partition.expanded
    n_exp = expanded.num_qubits
    labels = list(partition.labels)
    problem = partition_problem(expanded, partition_labels=labels)
    bases = list(problem.bases)
    grids, coef = _terms(bases)
    num_terms = grids.shape[0]

    # Paulis over the expanded circuit (identity on the wires moves split off).
    if observables is not None:
        z = np.zeros((len(observables.paulis), n_exp), dtype=bool)
        x = np.zeros_like(z)
        z[:, list(partition.output_qubit)] = observables.paulis.z
        x[:, list(partition.output_qubit)] = observables.paulis.x
        num_paulis = len(observables.paulis)
    else:
        measured = (
            list(range(len(partition.output_qubit)))
            if measured_qubits is None
            else list(measured_qubits)
        )
        z = np.zeros((1, n_exp), dtype=bool)
        x = np.zeros_like(z)
        z[0, [partition.output_qubit[q] for q in measured]] = True
        num_paulis = 1
    # Idle qubits stay |0>: a Pauli with X or Y there has expectation 0, I or Z give 1.
    idle = [q for q in range(n_exp) if labels[q] is None]
    idle_factor = (~x[:, idle]).all(axis=1).astype(float) if idle else np.ones(num_paulis)

    experiments: list[SubExperiment] = []
    var_offset = [0]
    mono_cols: list[np.ndarray] = []  # per fragment: (T, P) variable ids
    raw = 0
    output_qubits: list[tuple[int, ...]] = []
    origin = {q: i for i, q in enumerate(partition.output_qubit)}
    for frag, qubits in enumerate(partition.fragment_qubits):
        sub = problem.subcircuits[frag]
        qpd: list[tuple[int, int, int]] = []  # (data index, cut index, side)
        for i, inst in enumerate(sub.data):
            if isinstance(inst.operation, SingleQubitQPDGate):
                cut = int(inst.operation.label.rsplit("_", 1)[-1])
                qpd.append((i, cut, inst.operation.qubit_id))
        # Distinct side-operation settings of this fragment, per term.
        cols = []
        for _, cut, side in qpd:
            keys = [_ops_key(m[side]) for m in bases[cut].maps]
            first = {k: keys.index(k) for k in keys}
            cols.append(np.array([first[k] for k in keys])[grids[:, cut]])
        if cols:
            setting_rows = np.stack(cols, axis=1)
            uniq, setting_of_term = np.unique(setting_rows, axis=0, return_inverse=True)
            setting_of_term = setting_of_term.reshape(-1)
        else:
            uniq = np.zeros((1, 0), dtype=np.int64)
            setting_of_term = np.zeros(num_terms, dtype=np.int64)

        if observables is not None:
            sub_paulis = PauliList.from_symplectic(z[:, list(qubits)], x[:, list(qubits)])
            groups, where = _groups_for(sub_paulis)
        else:
            local = [j for j, q in enumerate(qubits) if z[0, q]]
            output_qubits.append(tuple(origin[qubits[j]] for j in local))
            groups = [_Group(tuple(local), ("Z",) * len(local), ())]
            where = [(0, 0)]
        raw += num_terms * len(groups)

        # Build each distinct circuit once (dedup by structure within the fragment).
        seen: dict[str, int] = {}
        circ_of = np.zeros((len(uniq), len(groups)), dtype=np.int64)
        weight_of: dict[int, float] = {}
        for s, row in enumerate(uniq):
            for g, group in enumerate(groups):
                circ = _build_circuit(sub, [q[0] for q in qpd], [int(v) for v in row], group)
                key, ops = circuit_key_and_operations(circ)
                if key not in seen:
                    seen[key] = len(experiments)
                    nobs = len(group.pauli_indices)
                    n_measure = sum(1 for name, _, _ in ops if name == "measure")
                    nq = n_measure - nobs
                    qpd_mask = ((1 << max(nq, 1)) - 1) << nobs if nq else 0
                    masks = group.bitmasks if observables is not None else (0,)
                    measures = n_measure > 0
                    # never changed again: hashed and read once
                    freeze(circ, circuit_key=key, operations=ops)
                    experiments.append(
                        SubExperiment(
                            circuit=circ,
                            fragment=frag,
                            num_obs_bits=nobs,
                            qpd_mask=qpd_mask,
                            column_masks=tuple(qpd_mask | m for m in masks),
                            weight=0.0,
                            trivial=not measures,
                        )
                    )
                    var_offset.append(var_offset[-1] + len(masks))
                    weight_of[seen[key]] = 0.0
                circ_of[s, g] = seen[key]
        # Variable of each (term, Pauli) in this fragment.
        offs = np.asarray(var_offset[:-1])
        grp = np.array([w[0] for w in where])
        col = np.array([w[1] for w in where])
        circ_tp = circ_of[setting_of_term][:, grp]  # (T, P)
        mono_cols.append(circ_tp if observables is None else offs[circ_tp] + col[None, :])

    if not partition.fragment_qubits:  # nothing acts on any qubit
        mono_var = np.zeros((num_terms * num_paulis, 0), dtype=np.int64)
    else:
        mono_var = np.stack([m.reshape(-1) for m in mono_cols], axis=1)
    mono_coef = np.repeat(coef, num_paulis) * np.tile(idle_factor, num_terms)
    mono_pauli = np.tile(np.arange(num_paulis), num_terms)
    keep = mono_coef != 0
    mono_var, mono_coef, mono_pauli = mono_var[keep], mono_coef[keep], mono_pauli[keep]
    # Merge monomials that read the same variables (identical circuits in every fragment).
    key_rows = np.concatenate([mono_pauli[:, None], mono_var], axis=1)
    uniq_rows, inverse = np.unique(key_rows, axis=0, return_inverse=True)
    merged = np.bincount(inverse.reshape(-1), weights=mono_coef, minlength=len(uniq_rows))
    nz = np.abs(merged) > 1e-15
    mono_pauli = uniq_rows[nz, 0]
    mono_var = uniq_rows[nz, 1:]
    mono_coef = merged[nz]

    kappa = float(math.prod(b.kappa for b in bases)) if bases else 1.0
    out = CutProblem(
        partition=partition,
        experiments=experiments,
        var_offset=np.asarray(var_offset, dtype=np.int64),
        mono_coef=mono_coef,
        mono_pauli=mono_pauli,
        mono_var=mono_var,
        num_terms=num_terms,
        num_raw_subexperiments=raw,
        kappa=kappa,
        observables=observables,
        output_qubits=tuple(output_qubits),
    )
    _set_weights(out)
    return out


def _set_weights(problem: CutProblem) -> None:
    """Prior importance of each circuit: the total |coefficient| of the monomials reading
    it, times the observables' |weights| (an upper bound on |d value / d circuit mean|)."""
    import numpy as np

    if problem.observables is not None:
        pw = np.abs(problem.observables.coeffs).sum(axis=0)
        mono_w = np.abs(problem.mono_coef) * pw[problem.mono_pauli]
        circ_of_var = np.repeat(np.arange(len(problem.experiments)), np.diff(problem.var_offset))
        circ_ids = circ_of_var[problem.mono_var]
    else:
        mono_w = np.abs(problem.mono_coef)
        circ_ids = problem.mono_var
    w = np.zeros(len(problem.experiments))
    for f in range(circ_ids.shape[1]):
        w += np.bincount(circ_ids[:, f], weights=mono_w, minlength=len(w))
    problem.experiments[:] = [
        SubExperiment(
            circuit=e.circuit,
            fragment=e.fragment,
            num_obs_bits=e.num_obs_bits,
            qpd_mask=e.qpd_mask,
            column_masks=e.column_masks,
            weight=float(w[i]),
            trivial=e.trivial or w[i] == 0,  # read by no term (coefficients cancelled)
        )
        for i, e in enumerate(problem.experiments)
    ]


def allocate_shots(
    scores: np.ndarray, total: int, *, minimum: int = 1, already: np.ndarray | None = None
) -> np.ndarray:
    """Integer shots per circuit, ``total`` of them, in proportion to ``scores``.

    Circuits with a zero score get none. Every circuit with a positive score ends with at
    least ``minimum`` shots in all (counting ``already``). With ``already`` (shots spent in
    earlier stages) the *final* totals are made proportional to the scores as far as the
    new shots allow (Neyman allocation across stages); only the new shots are returned.
    Largest remainders settle the rounding; the result sums to ``total`` unless the
    minimums alone need more.
    """
    import numpy as np

    scores = np.asarray(scores, dtype=float)
    have = np.zeros(len(scores)) if already is None else np.asarray(already, dtype=float)
    out = np.zeros(len(scores), dtype=np.int64)
    active = scores > 0
    if not active.any() or total <= 0:
        return out
    need = np.where(active, np.maximum(minimum - have, 0.0), 0.0).astype(np.int64)
    left = total - int(need.sum())
    if left <= 0:
        return need
    grand = total + have[active].sum()
    target = np.where(active, grand * scores / scores[active].sum(), 0.0)
    deficit = np.maximum(target - have - need, 0.0)
    if deficit.sum() <= 0:
        deficit = np.where(active, scores, 0.0)
    share = deficit * (left / deficit.sum())
    base = np.floor(share).astype(np.int64)
    short = int(left - base.sum())
    if short > 0:
        order = np.argsort(-(share - base))
        base[order[:short]] += 1
    return need + base
