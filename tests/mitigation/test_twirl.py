"""Pauli twirling: every variant is the same unitary in native gates, and twirled
estimates agree with untwirled ones."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import CXGate, CZGate, ECRGate, iSwapGate
from qiskit.quantum_info import Operator, Pauli

import multiqpu
from multiqpu.mitigation._twirl import _LABELS, pauli_table, twirl
from multiqpu.simulation import active_qubits, compact_circuit


@pytest.mark.parametrize("gate", [CZGate(), ECRGate(), CXGate(), iSwapGate()])
def test_conjugation_tables_hold(gate: object) -> None:
    table = pauli_table(gate)
    assert table is not None
    g = QuantumCircuit(2)
    g.append(gate, [0, 1])
    op = Operator(g)
    for label, (after, negative) in zip(_LABELS, table, strict=True):
        # P' G P == ±G
        lhs = Operator(Pauli(label)).compose(op).compose(Operator(Pauli(after)))
        sign = -1 if negative else 1
        assert lhs.equiv(op) and np.allclose(lhs.data, sign * op.data)


def test_non_clifford_gates_are_left_alone() -> None:
    from qiskit.circuit.library import RZZGate

    assert pauli_table(RZZGate(0.3)) is None


@pytest.mark.parametrize("spec", ["ibm:fake_kyiv", "ibm:fake_manila", "braket:emulator"])
def test_twirled_variants_are_the_same_unitary_in_native_gates(spec: str) -> None:
    dev = multiqpu.device(spec)
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.ry(0.7, 2)
    qc.cx(1, 2)
    isa = dev.transpile(qc)
    qubits = active_qubits(isa)
    ref = Operator(compact_circuit(isa, qubits))
    rng = np.random.default_rng(3)
    basis = set(dev.target.basis_gates) | {"barrier", "measure"}
    for _ in range(4):
        variant, count = twirl(isa, rng, basis=dev.target.basis_gates)
        assert count == 2
        assert Operator(compact_circuit(variant, qubits)).equiv(ref)
        assert set(variant.count_ops()) <= basis
        assert active_qubits(variant) == qubits


async def test_twirled_estimate_agrees_with_exact_after_mitigation() -> None:
    fleet = multiqpu.Fleet([multiqpu.device("ibm:fake_manila", seed=31)])
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    res = await fleet.estimate(
        qc,
        ["ZZZ", "XXX"],
        shots=30_000,
        mitigation=[multiqpu.Readout(), multiqpu.ZNE(), multiqpu.PauliTwirl(randomizations=4)],
    )
    exact = [0.0, 1.0]
    raw = res.stages["unmitigated"]
    for k in range(2):
        assert abs(res.values[k] - exact[k]) < 4 * res.std_errors[k]
    assert abs(res.values[1] - 1) < abs(raw.values[1] - 1)
    # every scale ran as 4 twirled variants on the one device
    assert res.report.shots_mitigation == res.report.shots_total - res.report.shots_placement - (
        res.report.shots_calibration
    )
    assert res.report.devices["ibm:fake_manila"][0] >= 2 * 3 * 4
