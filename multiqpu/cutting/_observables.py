"""Observables in every form users hold them, reduced to one list of Pauli strings.

``SparsePauliOp``, ``PauliList``, ``Pauli``, a Pauli string (``"ZZII"``, qubit 0 rightmost),
or a list of any of these (one value each) become :class:`Observables`: the unique
phase-free Pauli strings to measure and a real matrix ``coeffs`` with one row per requested
observable, so ``value_k = sum_p coeffs[k, p] * <P_p>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    from qiskit.quantum_info import PauliList

__all__ = ["Observables", "normalize_observables"]

#: Imaginary parts below this (after simplification) are round-off, not physics.
_IMAG_TOL = 1e-10


@dataclass(frozen=True)
class Observables:
    """Unique phase-free Paulis (``paulis``) and a ``(num_observables, num_paulis)`` real
    coefficient matrix. ``labels`` name each observable for reports."""

    paulis: PauliList
    coeffs: np.ndarray
    labels: tuple[str, ...]
    single: bool  # the user passed one observable (not a list)

    @property
    def num_qubits(self) -> int:
        return int(self.paulis.num_qubits)

    def __len__(self) -> int:
        return len(self.labels)


def _terms(obs: Any, num_qubits: int, where: str) -> list[tuple[str, complex]]:
    from qiskit.quantum_info import Pauli, PauliList, SparsePauliOp

    if isinstance(obs, str):
        try:
            obs = Pauli(obs)
        except Exception as exc:  # qiskit raises QiskitError for bad labels
            raise InvalidInputError(f"{where}: {obs!r} is not a Pauli string ({exc})") from None
    if isinstance(obs, Pauli):
        obs = SparsePauliOp(obs)
    elif isinstance(obs, PauliList):
        obs = SparsePauliOp(obs, coeffs=[1.0] * len(obs))
    if not isinstance(obs, SparsePauliOp):
        raise InvalidInputError(
            f"{where}: expected a SparsePauliOp, PauliList, Pauli or Pauli string, "
            f"got {type(obs).__name__}"
        )
    if obs.num_qubits != num_qubits:
        raise InvalidInputError(
            f"{where} acts on {obs.num_qubits} qubits but the circuit has {num_qubits}"
        )
    out: list[tuple[str, complex]] = []
    for pauli, coeff in zip(obs.paulis, obs.coeffs, strict=True):
        # Fold the Pauli's own phase ((-i)^q) into the coefficient.
        phase = (-1j) ** int(pauli.phase)
        bare = pauli.copy()
        bare.phase = 0
        out.append((bare.to_label(), complex(coeff) * phase))
    return out


def normalize_observables(observables: Any, num_qubits: int) -> Observables:
    """Reduce ``observables`` to :class:`Observables` over ``num_qubits`` qubits.

    A ``PauliList`` or a list/tuple gives one value per element; anything else one value.
    Non-Hermitian observables (complex coefficients that do not cancel) are refused.
    """
    import numpy as np
    from qiskit.quantum_info import PauliList

    single = not isinstance(observables, (PauliList, list, tuple))
    items: Sequence[Any] = [observables] if single else list(observables)
    if len(items) == 0:
        raise InvalidInputError("no observables given")
    per_item = [_terms(o, num_qubits, f"observable {i}") for i, o in enumerate(items)]
    index: dict[str, int] = {}
    for terms in per_item:
        for label, _ in terms:
            index.setdefault(label, len(index))
    coeffs = np.zeros((len(items), len(index)), dtype=complex)
    for k, terms in enumerate(per_item):
        for label, c in terms:
            coeffs[k, index[label]] += c
    finite = np.isfinite(coeffs).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InvalidInputError(
            f"observable {bad} has a NaN or infinite coefficient; every coefficient must be "
            "a finite number"
        )
    if np.abs(coeffs.imag).max(initial=0.0) > _IMAG_TOL:
        bad = int(np.nonzero(np.abs(coeffs.imag).max(axis=1) > _IMAG_TOL)[0][0])
        raise InvalidInputError(
            f"observable {bad} is not Hermitian (complex coefficients); its expectation "
            "value would not be real"
        )
    labels = tuple(_label(o) for o in items)
    return Observables(PauliList(list(index)), coeffs.real.copy(), labels, single)


def _label(obs: Any) -> str:
    from qiskit.quantum_info import SparsePauliOp

    if isinstance(obs, SparsePauliOp):
        text = " + ".join(f"{c.real:g}*{p}" for p, c in zip(obs.paulis, obs.coeffs, strict=True))
        return text if len(text) <= 60 else text[:57] + "..."
    return str(obs)
