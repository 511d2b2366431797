"""Shared helpers for the scheduler tests: circuits whose results identify them, and a check
of sampled counts against exact statevector probabilities."""

from __future__ import annotations

import math
from collections.abc import Mapping

from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

#: tolerance of the count checks, in standard errors of each outcome's frequency
N_SIGMA = 5.0


def tagged_circuit(index: int, *, bits: int = 4) -> QuantumCircuit:
    """A circuit whose outcome names it: qubits 0..bits-1 hold ``index`` in binary
    (deterministic), qubit ``bits`` is rotated by an index-dependent angle (a biased coin),
    so a result returned for the wrong circuit fails :func:`assert_matches_exact`."""
    qc = QuantumCircuit(bits + 1, name=f"tagged{index}")
    for b in range(bits):
        if (index >> b) & 1:
            qc.x(b)
    qc.ry(0.3 + 2.5 * ((index * 7) % 11) / 10, bits)
    qc.measure_all()
    return qc


def exact_probabilities(circuit: QuantumCircuit) -> dict[str, float]:
    """Exact outcome probabilities (Qiskit bit order) of a circuit that ends in measure_all."""
    return Statevector(circuit.remove_final_measurements(inplace=False)).probabilities_dict()


def assert_matches_exact(
    circuit: QuantumCircuit, counts: Mapping[str, int], shots: int, n_sigma: float = N_SIGMA
) -> None:
    """Every outcome frequency lies within ``n_sigma`` standard errors of its exact
    probability (outcomes of probability 0 never appear) and the counts sum to ``shots``."""
    assert sum(counts.values()) == shots, f"{sum(counts.values())} counts for {shots} shots"
    exact = exact_probabilities(circuit)
    for outcome in counts:
        assert exact.get(outcome, 0.0) > 1e-12, f"{circuit.name}: impossible outcome {outcome}"
    for outcome, p in exact.items():
        if p < 1e-12:
            continue
        freq = counts.get(outcome, 0) / shots
        sigma = math.sqrt(p * (1 - p) / shots)
        assert abs(freq - p) <= n_sigma * sigma + 1e-12, (
            f"{circuit.name}: P({outcome}) = {freq:.4f}, exact {p:.4f} (sigma {sigma:.4f})"
        )
