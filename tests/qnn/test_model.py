"""QNNModel: outputs against Qiskit's Statevector, parameter-shift Jacobians against finite
differences, shot-based Jacobians on a real fleet within their standard errors."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu
from multiqpu.qnn import FleetExecutor, QNNModel, variational_classifier
from multiqpu.qnn._simulate import exact_probabilities


def _mixed_model() -> tuple[QNNModel, QuantumCircuit, list[Parameter], list[SparsePauliOp]]:
    a, b, x = Parameter("a"), Parameter("b"), Parameter("x")
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.rx(2 * a + x, 0)  # linear in a weight, shifted by an input
    qc.rzz(a * x, 0, 1)  # coefficient depends on the input
    qc.cx(1, 2)
    qc.crz(x, 2, 0)  # a controlled rotation driven by an input only: allowed
    qc.u(b, a, 0.3, 1)
    qc.cp(b, 1, 2)
    qc.rzx(a - b, 2, 0)
    qc.ry(0.7, 2)
    qc.s(1)
    obs = [SparsePauliOp(["XZY", "ZIZ", "IXI"], [0.5, 1.0, -0.3]), SparsePauliOp("YYI")]
    return QNNModel(qc, [x], [a, b], obs), qc, [x, a, b], obs


def test_outputs_match_statevector_for_general_expressions_and_gates() -> None:
    model, qc, (x, a, b), obs = _mixed_model()
    X = np.array([[0.3], [1.7], [-0.4]])
    w = np.array([0.4, -1.1])
    f = model.exact_outputs(X, w)
    for i, (xv,) in enumerate(X):
        sv = Statevector(qc.assign_parameters({x: xv, a: w[0], b: w[1]}))
        for k, o in enumerate(obs):
            assert f[i, k] == pytest.approx(sv.expectation_value(o).real, abs=1e-12)


def test_parameter_shift_jacobian_equals_finite_differences() -> None:
    model, *_ = _mixed_model()
    X = np.array([[0.3], [1.7]])
    w = np.array([0.4, -1.1])
    jac = model.exact_jacobian(X, w)
    eps = 1e-6
    for j in range(2):
        wp, wm = w.copy(), w.copy()
        wp[j] += eps
        wm[j] -= eps
        fd = (model.exact_outputs(X, wp) - model.exact_outputs(X, wm)) / (2 * eps)
        np.testing.assert_allclose(jac[:, :, j], fd, atol=1e-8)


def test_a_weight_in_a_gate_without_a_two_term_rule_is_refused() -> None:
    w = Parameter("w")
    qc = QuantumCircuit(2)
    qc.crx(w, 0, 1)
    with pytest.raises(multiqpu.InvalidInputError, match="parameter-shift"):
        QNNModel(qc, [], [w], ["ZI"])


def test_batched_simulator_agrees_with_statevector_on_the_classifier() -> None:
    model = variational_classifier(4, 3, layers=2)
    rng = np.random.default_rng(0)
    X = rng.uniform(0, np.pi, (6, 4))
    w = model.init_weights(1)
    work = model.work(X, w, gradients=False)
    probs = exact_probabilities(work)
    measured = [q for q, pauli in enumerate(model.bases[0]) if pauli]
    for circuit, p in zip(work.circuits(), probs, strict=True):
        sv = Statevector(circuit.remove_final_measurements(inplace=False))
        ref = sv.probabilities_dict(qargs=measured)
        for key, value in ref.items():
            assert p.get(key, 0.0) == pytest.approx(value, abs=1e-12)


async def test_shot_jacobian_on_the_fleet_within_standard_errors() -> None:
    """Every entry of the shot-estimated Jacobian lies within 5 of its own reported standard
    errors of the exact parameter-shift value."""
    model = variational_classifier(2, 2, layers=2)
    fleet = multiqpu.Fleet(
        [multiqpu.device("local:ideal", num_qubits=4, seed=3), multiqpu.device("braket:sv")]
    )
    executor = FleetExecutor(list(fleet))
    X = np.array([[0.4, 2.0], [1.3, 0.2]])
    w = model.init_weights(4)
    shots = 6000
    executor.start(0, model.work(X[:1], w, gradients=True), shots, "a")
    executor.start(1, model.work(X[1:], w, gradients=True), shots, "b")
    done = {c.tag: c for c in [await executor.next(), await executor.next()]}
    exact = model.exact_jacobian(X, w)
    for i, tag in enumerate(("a", "b")):
        out = model.outputs(X[i : i + 1], w, done[tag].results, gradients=True)
        assert out.jac is not None and out.jac_var is not None
        se = np.sqrt(out.jac_var[0])
        assert np.all(se > 0)
        assert np.all(np.abs(out.jac[0] - exact[i]) <= 5 * se), (out.jac[0] - exact[i]) / se
