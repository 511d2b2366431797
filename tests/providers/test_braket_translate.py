"""Qiskit -> Braket translation: every mapped gate against Braket's own simulator, Qiskit's
decomposition of the rest, and classical-bit mapping (Qiskit order, clbit 0 rightmost)."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

pytest.importorskip("braket")

from braket.devices import LocalSimulator
from braket.ir.openqasm import Program as OpenQASMProgram
from multiqpu_braket._local import StateVectorDevice
from multiqpu_braket._translate import (
    GATES,
    counts_from_braket,
    decompose_for,
    program_from_source,
    to_braket_circuit,
    to_openqasm,
)
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit.library import QFTGate, UnitaryGate, get_standard_gate_name_mapping
from qiskit.quantum_info import Statevector, random_unitary

from multiqpu import InvalidInputError


@pytest.fixture(scope="module")
def sv() -> LocalSimulator:
    return LocalSimulator("braket_sv")


def statevector_in_braket_order(circuit: QuantumCircuit) -> np.ndarray:
    """Qiskit's statevector reindexed big-endian (qubit 0 most significant), as Braket's."""
    n = circuit.num_qubits
    data = Statevector(circuit.remove_final_measurements(inplace=False)).data
    return data.reshape([2] * n).transpose(list(range(n))[::-1]).reshape(-1)


@pytest.mark.parametrize("name", sorted(GATES))
def test_gate_matches_braket(name: str, sv: LocalSimulator) -> None:
    """(U ⊗ I)|Φ+> determines U up to global phase: compare it on Braket and in Qiskit."""
    rng = np.random.default_rng(sum(map(ord, name)))
    gate = get_standard_gate_name_mapping()[name]
    if gate.params:
        gate = type(gate)(*rng.uniform(-math.pi, math.pi, len(gate.params)))
    n = gate.num_qubits
    qc = QuantumCircuit(2 * n, 2 * n)
    for i in range(n):
        qc.h(n + i)
        qc.cx(n + i, i)
    qc.append(gate, range(n))
    qc.measure(range(2 * n), range(2 * n))
    program = to_openqasm(qc, exact=True)
    assert program.active == tuple(range(2 * n))
    source = program.source.rsplit("#pragma", 1)[0] + "#pragma braket result state_vector\n"
    braket_state = np.asarray(sv.run(OpenQASMProgram(source=source), shots=0).result().values[0])
    overlap = abs(np.vdot(statevector_in_braket_order(qc), braket_state))
    assert overlap == pytest.approx(1.0, abs=1e-9), f"{name} -> {GATES[name][0]}"


def _exact(circuit: QuantumCircuit) -> dict[str, float]:
    device = StateVectorDevice()
    result = asyncio.run(device.run([circuit], shots=None))
    probs = result[0].probabilities
    assert probs is not None
    return dict(probs)


def _assert_close(got: dict[str, float], want: dict[str, float], tol: float = 1e-9) -> None:
    for key in set(got) | set(want):
        assert abs(got.get(key, 0.0) - want.get(key, 0.0)) <= tol, key


def _unsupported_gates() -> QuantumCircuit:
    qc = QuantumCircuit(4)
    qc.h(0)
    qc.ch(0, 1)
    qc.crx(0.7, 1, 2)
    qc.cu(0.3, 0.2, 0.1, 0.4, 2, 3)
    qc.rccx(0, 1, 3)
    qc.mcx([0, 1, 2], 3)
    qc.append(UnitaryGate(random_unitary(4, seed=3)), [1, 3])
    qc.append(QFTGate(3), [0, 2, 3])
    qc.measure_all()
    return qc


def test_unsupported_gates_are_decomposed_exactly() -> None:
    qc = _unsupported_gates()
    prepared = decompose_for(qc, tuple(GATES))
    assert {i.operation.name for i in prepared.data} <= set(GATES) | {"measure", "barrier"}
    want = Statevector(qc.remove_final_measurements(inplace=False)).probabilities_dict()
    _assert_close(_exact(qc), want)


def test_supported_circuit_is_not_transpiled() -> None:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    assert decompose_for(qc, tuple(GATES)) is qc


def test_asymmetric_partial_measurement() -> None:
    """X on qubit 2 only, read into clbit 0; clbit 1 never written; clbit 2 reads qubit 0."""
    qc = QuantumCircuit(3, 3)
    qc.x(2)
    qc.measure(2, 0)
    qc.measure(0, 2)
    assert _exact(qc) == pytest.approx({"001": 1.0})
    program = to_openqasm(qc)
    assert program.measured == (0, 2)
    counts = LocalSimulator("braket_sv").run(OpenQASMProgram(source=program.source), shots=50)
    result = counts.result()
    # Braket's own key is over its measured qubits, big-endian: qubit 0 then qubit 2 -> "01"
    assert dict(result.measurement_counts) == {"01": 50}
    assert counts_from_braket(program, result.measurement_counts, result.measured_qubits) == {
        "001": 50
    }


def test_permuted_measurement_on_sparse_qubits() -> None:
    """Out-of-order clbits over non-contiguous qubits (a Braket probability-ordering trap)."""
    rng = np.random.default_rng(11)
    qc = QuantumCircuit(5, 3)
    for q in range(5):
        qc.ry(float(rng.uniform(0, math.pi)), q)
    qc.cx(0, 3)
    qc.cz(4, 1)
    qc.measure([3, 1, 4], [0, 1, 2])
    ref = QuantumCircuit(5)
    ref.compose(qc.remove_final_measurements(inplace=False), inplace=True)
    full = Statevector(ref).probabilities_dict(qargs=[3, 1, 4])  # qargs[0] = rightmost bit
    _assert_close(_exact(qc), full)


def test_multiple_registers_join_without_spaces() -> None:
    qr = QuantumRegister(3)
    a, b = ClassicalRegister(1, "a"), ClassicalRegister(2, "b")
    qc = QuantumCircuit(qr, a, b)
    qc.x(qr[0])
    qc.x(qr[2])
    qc.measure(qr[0], a[0])
    qc.measure(qr[1], b[0])
    qc.measure(qr[2], b[1])
    # clbits in order a0, b0, b1 = 1, 0, 1 -> Qiskit key (b1 b0 a0) "101"
    assert _exact(qc) == pytest.approx({"101": 1.0})


@pytest.mark.parametrize("kind", ["mid-circuit", "reset", "if_else"])
def test_refuses_what_braket_cannot_run(kind: str) -> None:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    if kind == "mid-circuit":
        qc.measure(0, 0)
        qc.x(0)
    elif kind == "reset":
        qc.reset(1)
    else:
        qc.measure(0, 0)
        with qc.if_test((qc.clbits[0], 1)):
            qc.x(1)
    qc.measure(1, 1)
    with pytest.raises(InvalidInputError):
        to_openqasm(qc)


def test_header_lets_results_be_mapped_later() -> None:
    qc = QuantumCircuit(4, 3)
    qc.x(3)
    qc.measure(3, 0)
    qc.measure(1, 2)
    program = to_openqasm(qc, physical=[10, 11, 12, 13])
    again = program_from_source(program.source)
    assert again.labels == program.labels == (11, 13)
    assert again.clbit_slot == program.clbit_slot == (1, None, 0)
    assert again.physical
    assert counts_from_braket(again, {"01": 7}, [11, 13]) == {"001": 7}
    with pytest.raises(InvalidInputError):
        program_from_source("OPENQASM 3.0;\nqubit[1] q;\n")


def test_braket_circuit_form_orients_symmetric_gates() -> None:
    qc = QuantumCircuit(2, 2)
    qc.cz(1, 0)
    qc.measure([0, 1], [0, 1])
    circuit, program = to_braket_circuit(qc, [5, 9], symmetric_edges={(5, 9)})
    cz = next(i for i in circuit.instructions if i.operator.name == "CZ")
    assert [int(q) for q in cz.target] == [5, 9]
    assert program.labels == (5, 9)
