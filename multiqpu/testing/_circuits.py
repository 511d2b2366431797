"""Small circuits with known answers, used by the conformance suite."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qiskit import QuantumCircuit


def bell() -> QuantumCircuit:
    """(|00> + |11>)/sqrt(2), both qubits measured."""
    return ghz(2)


def ghz(n: int) -> QuantumCircuit:
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n, n, name=f"ghz{n}")
    qc.h(0)
    for q in range(1, n):
        qc.cx(0, q)
    qc.measure(range(n), range(n))
    return qc


def x_on(n: int, qubit: int) -> QuantumCircuit:
    """|0...1...0> with X on ``qubit`` only, every qubit measured to its own clbit."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n, n, name=f"x{qubit}")
    qc.x(qubit)
    qc.measure(range(n), range(n))
    return qc


def basis_state(n: int, value: int) -> QuantumCircuit:
    """The computational basis state ``value`` (qubit i holds bit i)."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n, n, name=f"basis{value}")
    for q in range(n):
        if value >> q & 1:
            qc.x(q)
    qc.measure(range(n), range(n))
    return qc


def partial_measurement() -> QuantumCircuit:
    """3 qubits, 2 classical bits: X on qubit 2 read into clbit 0, qubit 0 into clbit 1.
    Expected outcome ``"01"``; qubit 1 (in |+>) is never measured."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(3, 2, name="partial")
    qc.x(2)
    qc.h(1)
    qc.measure(2, 0)
    qc.measure(0, 1)
    return qc


def two_registers() -> QuantumCircuit:
    """Registers ``a`` (1 bit, clbit 0) and ``b`` (2 bits, clbits 1-2); qubit 1 is flipped
    and read into ``b[1]`` = clbit 2, qubit 0 into ``a[0]``. Expected outcome ``"100"``."""
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

    a, b = ClassicalRegister(1, "a"), ClassicalRegister(2, "b")
    qc = QuantumCircuit(QuantumRegister(2, "q"), a, b, name="registers")
    qc.x(1)
    qc.measure(0, a[0])
    qc.measure(1, b[1])
    return qc


def parameterized() -> QuantumCircuit:
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter

    qc = QuantumCircuit(1, 1, name="unbound")
    qc.ry(Parameter("theta"), 0)
    qc.measure(0, 0)
    return qc


def unmeasured() -> QuantumCircuit:
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(1, name="unmeasured")
    qc.h(0)
    return qc


def rotations(n: int, measure: Sequence[int] | None = None) -> QuantumCircuit:
    """A fixed entangling circuit with uneven amplitudes; ``measure`` lists the qubits read
    into clbits 0, 1, ... (default: every qubit into its own clbit)."""
    from qiskit import QuantumCircuit

    qubits = list(range(n)) if measure is None else list(measure)
    qc = QuantumCircuit(n, len(qubits), name="rotations")
    for q in range(n):
        qc.ry(0.3 + 0.7 * q, q)
        qc.rz(0.2 * (q + 1), q)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    for q in range(n):
        qc.rx(0.5 - 0.2 * q, q)
    qc.measure(qubits, range(len(qubits)))
    return qc


def statevector_probabilities(circuit: QuantumCircuit) -> dict[str, float]:
    """Exact outcome probabilities of a circuit whose measurements are all final, each
    qubit read into at most one classical bit (every clbit written once)."""
    from qiskit.quantum_info import Statevector

    measured: dict[int, int] = {}  # clbit -> qubit
    for inst in circuit.data:
        if inst.operation.name == "measure":
            clbit = circuit.find_bit(inst.clbits[0]).index
            measured[clbit] = circuit.find_bit(inst.qubits[0]).index
    assert sorted(measured) == list(range(circuit.num_clbits)), "every clbit must be written"
    state = Statevector(circuit.remove_final_measurements(inplace=False))
    qargs = [measured[c] for c in range(circuit.num_clbits)]
    return {str(k): float(v) for k, v in state.probabilities_dict(qargs=qargs).items()}


def mode(counts: Mapping[str, int]) -> str:
    """The most frequent outcome."""
    return max(counts, key=lambda k: counts[k])
