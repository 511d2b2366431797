"""Expectation values of Pauli sums from measured counts, with standard errors.

An observable ``sum_k c_k P_k`` is measured by rotating each qubit into the basis its Paulis
need (X: H; Y: S† then H) and reading the computational basis. Terms that agree qubit by
qubit (qubit-wise commuting) share one measurement circuit: :func:`merge_bases` packs the
terms of every observable paired with one parameter binding into as few bases as it can
(greedy, heaviest terms first).

Estimates (:func:`estimate`): per shot the observable's terms measured by one circuit take
the value ``v = sum_k c_k (-1)^{popcount(outcome & mask_k)}``; the estimate is the mean of
``v`` and its variance the sample variance of ``v`` over the shots (covariances between terms
measured on the same shots included). Terms measured by different circuits are independent,
so their variances add. Exact probabilities give the exact value with zero error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult

__all__ = [
    "Basis",
    "Estimate",
    "Term",
    "estimate",
    "measurement_circuit",
    "merge_bases",
    "terms_of",
]

#: Per-qubit Pauli codes.
_CODE = {"I": 0, "X": 1, "Y": 2, "Z": 3}

Basis = tuple[int, ...]  # a Pauli code per qubit (index = qubit), 0 = not measured


@dataclass(frozen=True)
class Term:
    """``coeff`` times a Pauli string (per-qubit codes, index = qubit)."""

    paulis: Basis
    coeff: float

    @property
    def weight(self) -> int:
        return sum(1 for p in self.paulis if p)


@dataclass(frozen=True)
class Estimate:
    """An expectation value and the variance of the estimate (0 when exact)."""

    value: float
    variance: float

    @property
    def std(self) -> float:
        return float(np.sqrt(self.variance))


def terms_of(
    observable: Mapping[str, float] | Iterable[tuple[str, float]], num_qubits: int
) -> tuple[float, list[Term]]:
    """Split ``{"XZI": c, ...}`` (Qiskit labels: qubit 0 is the rightmost character) into the
    identity's coefficient and the other terms."""
    items = observable.items() if isinstance(observable, Mapping) else observable
    constant = 0.0
    terms: list[Term] = []
    for label, coeff in items:
        if len(label) != num_qubits:
            raise InvalidInputError(
                f"observable term '{label}' acts on {len(label)} qubits, the circuit has "
                f"{num_qubits}"
            )
        c = complex(coeff)
        if abs(c.imag) > 1e-10 * max(1.0, abs(c.real)):
            raise InvalidInputError(
                f"observable term '{label}' has a complex coefficient {coeff}: "
                "only Hermitian observables have expectation values"
            )
        try:
            paulis = tuple(_CODE[ch] for ch in reversed(label))
        except KeyError:
            raise InvalidInputError(
                f"observable term '{label}' is not a Pauli string (use I, X, Y, Z)"
            ) from None
        if any(paulis):
            terms.append(Term(paulis, c.real))
        else:
            constant += c.real
    return constant, terms


def _compatible(basis: list[int], term: Basis) -> bool:
    return all(t == 0 or b == 0 or t == b for b, t in zip(basis, term, strict=True))


def merge_bases(terms: Sequence[Term]) -> tuple[list[Basis], list[int]]:
    """Bases that measure every term, and for each term the index of the basis that does."""
    order = sorted(range(len(terms)), key=lambda i: -terms[i].weight)
    bases: list[list[int]] = []
    where = [0] * len(terms)
    for i in order:
        term = terms[i].paulis
        for b, basis in enumerate(bases):
            if _compatible(basis, term):
                for q, p in enumerate(term):
                    if p:
                        basis[q] = p
                where[i] = b
                break
        else:
            where[i] = len(bases)
            bases.append(list(term))
    return [tuple(b) for b in bases], where


def measured_qubits(basis: Basis) -> tuple[int, ...]:
    return tuple(q for q, p in enumerate(basis) if p)


def measurement_circuit(circuit: QuantumCircuit, basis: Basis) -> QuantumCircuit:
    """``circuit`` (final measurements removed) rotated into ``basis`` and measured into a
    new register ``meas`` whose bit ``j`` reads the ``j``-th measured qubit."""
    from qiskit import ClassicalRegister

    qc = circuit.remove_final_measurements(inplace=False)
    qubits = measured_qubits(basis)
    if not qubits:
        raise InvalidInputError("nothing to measure: the basis is all identities")
    creg = ClassicalRegister(len(qubits), _fresh_name(qc, "meas"))
    qc.add_register(creg)
    for q in qubits:
        if basis[q] == 1:
            qc.h(q)
        elif basis[q] == 2:
            qc.sdg(q)
            qc.h(q)
    for j, q in enumerate(qubits):
        qc.measure(q, creg[j])
    return qc


def _fresh_name(circuit: QuantumCircuit, stem: str) -> str:
    taken = {r.name for r in circuit.cregs}
    name, k = stem, 0
    while name in taken:
        k += 1
        name = f"{stem}{k}"
    return name


def _outcomes(result: CircuitResult, width: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(outcomes as ints over the last-added register's ``width`` bits, weights, exact)."""
    if result.probabilities is not None:
        data: Mapping[str, float] = result.probabilities
        exact = True
    else:
        data = result.counts
        exact = False
    keys = list(data)
    # The measurement register was added last: its bits are the leftmost characters.
    outcomes = np.fromiter((int(k.replace(" ", "")[:width], 2) for k in keys), dtype=np.int64,
                           count=len(keys))  # fmt: skip
    weights = np.fromiter((data[k] for k in keys), dtype=np.float64, count=len(keys))
    return outcomes, weights, exact


def _parity(values: np.ndarray) -> np.ndarray:
    count = getattr(np, "bitwise_count", None)
    if count is not None:
        return np.asarray(count(values)) & 1
    out = np.zeros_like(values)
    v = values.copy()
    while np.any(v):
        out ^= v & 1
        v >>= 1
    return out


def term_masks(basis: Basis, terms: Sequence[Term]) -> np.ndarray:
    """Bit masks over the measured positions of ``basis`` for each term."""
    position = {q: j for j, q in enumerate(measured_qubits(basis))}
    masks = np.zeros(len(terms), dtype=np.int64)
    for k, term in enumerate(terms):
        for q, p in enumerate(term.paulis):
            if p:
                masks[k] |= 1 << position[q]
    return masks


def estimate(result: CircuitResult, basis: Basis, terms: Sequence[Term]) -> Estimate:
    """The summed expectation of ``terms`` (all measured by ``basis``) from one result."""
    if not terms:
        return Estimate(0.0, 0.0)
    width = len(measured_qubits(basis))
    if width > 62:
        raise InvalidInputError("more than 62 measured qubits in one basis are not supported")
    outcomes, weights, exact = _outcomes(result, width)
    masks = term_masks(basis, terms)
    coeffs = np.array([t.coeff for t in terms])
    signs = 1.0 - 2.0 * _parity(outcomes[:, None] & masks[None, :])  # (outcomes, terms)
    values = signs @ coeffs
    total = float(weights.sum())
    if total <= 0:
        raise InvalidInputError("a result with no shots and no probabilities")
    mean = float(weights @ values / total)
    if exact:
        return Estimate(mean, 0.0)
    second = float(weights @ (values * values) / total)
    spread = max(second - mean * mean, 0.0)
    sample_var = spread * total / (total - 1) if total > 1 else spread
    return Estimate(mean, sample_var / total)
