"""qml.device("multiqpu.fleet", ..., mitigation=[...]): expectation values (and the variance of
one Pauli word) corrected on the device that ran each tape, within the propagated standard
errors of the exact values and closer to them than the plain device's; refusals for what
mitigation cannot correct.

Devices are unseeded (seed=None): every check is a statistical bound (4 standard errors) or
a comparison with a bias many standard errors wide."""

from __future__ import annotations

import numpy as np
import pytest

qml = pytest.importorskip("pennylane")

import multiqpu  # noqa: E402

MITIGATION = [multiqpu.Readout(), multiqpu.ZNE(scales=(1, 3, 5))]


def noisy_fleet(readout: float = 0.04, gate_2q: float = 0.03) -> multiqpu.Fleet:
    return multiqpu.Fleet([
        multiqpu.device("local:noisy", num_qubits=3, readout_error=readout, gate_error_1q=0.0,
                        gate_error_2q=gate_2q, seed=None),
    ])  # fmt: skip


def ghz_like(x: float) -> None:
    qml.RY(x, wires=0)
    qml.CNOT(wires=[0, 1])
    qml.CNOT(wires=[1, 2])


def test_mitigated_expval_is_closer_and_within_errors() -> None:
    fleet = noisy_fleet()
    dev = qml.device("multiqpu.fleet", wires=3, fleet=fleet, mitigation=MITIGATION)
    plain = qml.device("multiqpu.fleet", wires=3, fleet=fleet)
    exact_dev = qml.device("default.qubit", wires=3)

    def body(x: float) -> object:
        ghz_like(x)
        return qml.expval(qml.PauliZ(0) @ qml.PauliZ(2))

    x = 0.7
    exact = float(qml.QNode(body, exact_dev)(x))
    value = float(qml.set_shots(qml.QNode(body, dev), 20_000)(x))
    (se,) = dev.last_standard_errors
    raw = float(qml.set_shots(qml.QNode(body, plain), 20_000)(x))
    assert abs(value - exact) < 4 * se
    assert abs(value - exact) < abs(raw - exact)
    # extrapolation and readout correction widen the error beyond the plain shot noise
    raw_se = np.sqrt((1 - raw**2) / 20_000)
    assert se > raw_se
    report = dev.last_mitigation_report
    assert report.fits == 1 and report.shots_calibration > 0
    assert dev.work_share == {"local:noisy": 1}


def test_variance_of_a_pauli_word_and_a_rotated_sum() -> None:
    """var(Z1) = 1 - <Z1>^2 from the mitigated <Z1>; a sum with an X term is rotated into the
    Z basis by PennyLane and each measured tape is mitigated."""
    fleet = noisy_fleet(readout=0.05, gate_2q=0.0)
    dev = qml.device("multiqpu.fleet", wires=3, fleet=fleet, mitigation=[multiqpu.Readout()])
    exact_dev = qml.device("default.qubit", wires=3)

    def var_body(x: float) -> object:
        ghz_like(x)
        return qml.var(qml.PauliZ(1))

    def sum_body(x: float) -> object:
        ghz_like(x)
        return qml.expval(0.5 * qml.PauliX(0) + qml.PauliZ(1))

    x = 0.9
    # var: one tape, one result; the sum: one tape measuring X0 (rotated) and Z1, whose
    # errors weighted by the coefficients bound the error of the combination
    for body, weights in ((var_body, [1.0]), (sum_body, [0.5, 1.0])):
        exact = float(qml.QNode(body, exact_dev)(x))
        value = float(qml.set_shots(qml.QNode(body, dev), 20_000)(x))
        ses = np.ravel(dev.last_standard_errors)
        assert len(ses) == len(weights)
        assert abs(value - exact) < 4 * float(np.dot(ses, weights))


def test_parameter_shift_gradient_runs_mitigated() -> None:
    fleet = noisy_fleet(readout=0.05, gate_2q=0.0)
    dev = qml.device("multiqpu.fleet", wires=3, fleet=fleet, mitigation=[multiqpu.Readout()])

    @qml.set_shots(20_000)
    @qml.qnode(dev, diff_method="parameter-shift")
    def circuit(x: float) -> object:
        ghz_like(x)
        return qml.expval(qml.PauliZ(0))

    x = qml.numpy.array(0.8, requires_grad=True)
    grad = float(qml.grad(circuit)(x))
    # d<Z0>/dx = -sin x; two shifted tapes, each with an error up to ~0.01 -> 0.01 on the grad
    ses = np.ravel(dev.last_standard_errors)
    assert len(ses) == 2
    assert abs(grad - (-np.sin(0.8))) < 4 * 0.5 * float(np.sqrt(np.sum(ses**2)))


def test_refusals() -> None:
    fleet = noisy_fleet()
    dev = qml.device("multiqpu.fleet", wires=3, fleet=fleet, mitigation=[multiqpu.Readout()])

    def probs() -> object:
        ghz_like(0.3)
        return qml.probs(wires=[0, 1])

    def hermitian() -> object:
        ghz_like(0.3)
        return qml.expval(qml.Hermitian(np.diag([1.0, 2.0]), wires=0))

    def counts() -> object:
        ghz_like(0.3)
        return qml.counts(wires=[0, 1])

    def expval() -> object:
        ghz_like(0.3)
        return qml.expval(qml.PauliZ(0))

    for body in (probs, hermitian, counts):
        with pytest.raises(multiqpu.InvalidInputError, match="mitigation="):
            qml.set_shots(qml.QNode(body, dev), 1000)()
    with pytest.raises(multiqpu.InvalidInputError, match="analytic"):
        qml.QNode(expval, dev)()
    with pytest.raises(multiqpu.InvalidInputError, match="shot vectors"):
        qml.set_shots(qml.QNode(expval, dev), [500, 500])()
    with pytest.raises(multiqpu.InvalidInputError, match="mitigation="):
        qml.device("multiqpu.fleet", wires=2, fleet=fleet, mitigation=["readout"])
    assert dev.work_share == {}  # refused before anything ran
