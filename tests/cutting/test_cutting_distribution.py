"""Output distributions of cut circuits (CutQC-style knitting) with per-outcome errors."""

from __future__ import annotations

import numpy as np
import pytest
from _cut_families import ghz, hea, ideal_fleet
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

import multiqpu
from multiqpu.cutting import CutLimits, distribution


def _exact(circuit: QuantumCircuit, qubits: list[int]) -> np.ndarray:
    body = circuit.remove_final_measurements(inplace=False)
    return Statevector(body).probabilities(qubits)


@pytest.mark.parametrize("gate_cuts", [True, False], ids=["gate-cuts", "wire-cuts"])
async def test_exact_distribution_of_a_cut_circuit(gate_cuts: bool) -> None:
    circuit = ghz(8)
    circuit.ry(0.4, 5)
    result = await distribution(ideal_fleet(5), circuit, shots=None, gate_cuts=gate_cuts)
    assert result.report.plan.cut
    assert result.qubits == tuple(range(8))
    np.testing.assert_allclose(result.probabilities, _exact(circuit, list(range(8))), atol=1e-9)
    assert np.all(result.std_errors == 0)


async def test_sampled_distribution_within_4_standard_errors() -> None:
    circuit = hea(9, reps=1, seed=5)
    result = await distribution(ideal_fleet(6, 5), circuit, shots=60_000)
    exact = _exact(circuit, list(range(9)))
    p, se = result.probabilities, result.std_errors
    assert result.report.plan.cut and result.report.shots == 60_000
    big = exact > 0.01
    assert np.all(se[big] > 0)
    z = np.abs(p - exact) / np.maximum(se, 1e-12)
    assert np.mean(z[big] < 2) > 0.85 and np.all(z[big] < 5)
    assert p.sum() == pytest.approx(1.0, abs=0.05)
    near = result.nearest_probabilities()
    assert near.min() >= 0 and near.sum() == pytest.approx(1.0)
    as_dict = result.as_dict(threshold=0.02)
    assert all(len(k) == 9 for k in as_dict) and set(as_dict) == set(
        result.std_error_dict(threshold=0.02)
    )


async def test_distribution_over_measured_qubits_in_clbit_order() -> None:
    circuit = ghz(8, tilt=0.0)
    circuit.x(7)
    measured = QuantumCircuit(8, 3)
    measured.compose(circuit, inplace=True)
    measured.measure([7, 0, 3], [0, 1, 2])  # clbit 0 <- qubit 7, clbit 1 <- 0, clbit 2 <- 3
    result = await distribution(ideal_fleet(5), measured, shots=None)
    assert result.qubits == (7, 0, 3)
    probs = result.as_dict(threshold=1e-9)
    # GHZ then X on 7: |0...01> + |1...10> over (q7, q0, q3): "001" (q7=1) and "110"
    assert probs == pytest.approx({"001": 0.5, "110": 0.5}, abs=1e-9)


async def test_wide_distributions_are_refused() -> None:
    with pytest.raises(multiqpu.InvalidInputError, match="max_output_qubits"):
        await distribution(ideal_fleet(5), ghz(10), limits=CutLimits(max_output_qubits=8))
