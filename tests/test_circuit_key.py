"""The structural circuit key (journal, result cache, resume): equal for the same circuit
built twice, in this process or another, different whenever what runs differs, including
control flow, large unitaries, Hamiltonians and gates made from circuits. Before
2026-12-05 control-flow blocks were keyed by their memory address and large arrays by a
``repr`` with "...": one circuit built twice had two keys, and two different ones could
share one (a cached result served for the wrong circuit)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit.classical import expr
from qiskit.circuit.library import PauliEvolutionGate, UnitaryGate
from qiskit.quantum_info import SparsePauliOp, random_unitary

from multiqpu._transpile import circuit_key


def feed_forward(value: int, angle: float, else_angle: float | None = None) -> QuantumCircuit:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.measure(0, 0)
    if else_angle is None:
        with qc.if_test((qc.clbits[0], value)):
            qc.rx(angle, 1)
    else:
        with qc.if_test((qc.clbits[0], value)) as orelse:
            qc.rx(angle, 1)
        with orelse:
            qc.ry(else_angle, 1)
    qc.measure(1, 1)
    return qc


def test_control_flow_is_keyed_by_content_not_address() -> None:
    base = circuit_key(feed_forward(1, 0.3))
    assert circuit_key(feed_forward(1, 0.3)) == base  # built twice: one key
    assert circuit_key(feed_forward(0, 0.3)) != base  # the condition's value
    assert circuit_key(feed_forward(1, 0.5)) != base  # the block's gate
    assert circuit_key(feed_forward(1, 0.3, 0.2)) != base  # an else branch
    assert circuit_key(feed_forward(1, 0.3, 0.2)) != circuit_key(feed_forward(1, 0.3, 0.4))


def loops_and_switches(n: int, case_gate: str, on_bit: int) -> QuantumCircuit:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.measure(0, 0)
    qc.measure(1, 1)
    with qc.for_loop(range(n)) as i:
        qc.rx(i, 0)
    with qc.switch(qc.clbits[on_bit]) as case:
        with case(0):
            getattr(qc, case_gate)(1)
        with case(case.DEFAULT):
            qc.z(1)
    with qc.while_loop(expr.logic_and(qc.clbits[0], expr.logic_not(qc.clbits[1]))):
        qc.x(0)
        qc.measure(0, 0)
    return qc


def test_loops_switches_and_expressions() -> None:
    base = circuit_key(loops_and_switches(3, "x", 0))
    assert circuit_key(loops_and_switches(3, "x", 0)) == base
    assert circuit_key(loops_and_switches(4, "x", 0)) != base  # the loop's range
    assert circuit_key(loops_and_switches(3, "y", 0)) != base  # a case's block
    assert circuit_key(loops_and_switches(3, "x", 1)) != base  # the switch's target bit


def test_large_unitaries_hamiltonians_and_circuit_gates() -> None:
    u = random_unitary(64, seed=1).data  # 4,096 entries: numpy's repr elides them with "..."
    v = u.copy()
    v[10, 10] *= -1

    def with_unitary(m: np.ndarray) -> QuantumCircuit:
        qc = QuantumCircuit(6)
        qc.append(UnitaryGate(m, check_input=False), range(6))
        qc.measure_all()
        return qc

    assert circuit_key(with_unitary(u)) == circuit_key(with_unitary(u.copy()))
    assert circuit_key(with_unitary(u)) != circuit_key(with_unitary(v))

    def evolution(op: SparsePauliOp) -> QuantumCircuit:
        qc = QuantumCircuit(2)
        qc.append(PauliEvolutionGate(op, time=0.3), [0, 1])
        qc.measure_all()
        return qc

    zz = SparsePauliOp(["ZZ"])
    assert circuit_key(evolution(zz)) == circuit_key(evolution(SparsePauliOp(["ZZ"])))
    assert circuit_key(evolution(zz)) != circuit_key(evolution(SparsePauliOp(["XX"])))
    assert circuit_key(evolution(zz)) != circuit_key(evolution(SparsePauliOp(["ZZ"], [0.5])))

    def from_gate(angle: float, name: str) -> QuantumCircuit:
        inner = QuantumCircuit(1, name=name)
        inner.rx(angle, 0)
        qc = QuantumCircuit(1)
        qc.append(inner.to_gate(), [0])
        qc.measure_all()
        return qc

    # the same name (as a counter in another process would give) and different contents
    assert circuit_key(from_gate(0.1, "block")) != circuit_key(from_gate(0.2, "block"))
    assert circuit_key(from_gate(0.1, "block")) == circuit_key(from_gate(0.1, "block"))


def test_the_key_is_the_same_in_another_process() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.path[:0] = [p for p in sys.argv[1:]]
        from test_circuit_key import feed_forward, loops_and_switches
        from multiqpu._transpile import circuit_key
        print(circuit_key(feed_forward(1, 0.3, 0.2)), circuit_key(loops_and_switches(3, "x", 0)))
        """
    )
    here = str(__import__("pathlib").Path(__file__).parent)
    out = subprocess.run(
        [sys.executable, "-c", script, here, *sys.path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [
        circuit_key(feed_forward(1, 0.3, 0.2)),
        circuit_key(loops_and_switches(3, "x", 0)),
    ]


def nested_loops(use_outer: bool) -> QuantumCircuit:
    qc = QuantumCircuit(1, 1)
    with qc.for_loop(range(2)) as i, qc.for_loop(range(3)) as j:
        qc.rx(i if use_outer else j, 0)
    qc.measure(0, 0)
    return qc


def test_nested_loop_parameters_stay_apart() -> None:
    assert circuit_key(nested_loops(True)) == circuit_key(nested_loops(True))
    assert circuit_key(nested_loops(True)) != circuit_key(nested_loops(False))
