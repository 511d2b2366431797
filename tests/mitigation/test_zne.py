"""ZNE: extrapolators, the per-device fit, native folding (exact unitaries, native gates,
run as given), and the physics: extrapolation removes two-qubit gate noise."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Operator

import multiqpu
from multiqpu.mitigation._fold import fold_gates, fold_two_qubit_gates, foldable_positions
from multiqpu.mitigation._isa import adopt, two_qubit_positions
from multiqpu.mitigation._zne import (
    DeviceFit,
    Exponential,
    Polynomial,
    Richardson,
    fit_per_device,
)
from multiqpu.simulation import active_qubits, compact_circuit


# ---------------------------------------------------------------- extrapolators
def test_richardson_weights_for_1_3_5_and_polynomials_are_reproduced() -> None:
    gamma = Richardson(3).coefficients((1, 3, 5))
    assert np.allclose(gamma, [15 / 8, -5 / 4, 3 / 8])
    lam = np.array([1.0, 3.0, 5.0])
    y = (0.7 - 0.1 * lam + 0.004 * lam**2)[:, None]
    value, jac = Richardson(3).extrapolate(lam, y)
    assert value[0] == pytest.approx(0.7, abs=1e-12)
    assert np.allclose(jac[:, 0], gamma)


def test_least_squares_line_and_exponential() -> None:
    lam = np.array([1.0, 2.0, 3.0, 4.0])
    value, _ = Polynomial(1).extrapolate(lam, (0.9 - 0.05 * lam)[:, None])
    assert value[0] == pytest.approx(0.9)
    y = np.stack([0.8 * np.exp(-0.1 * lam), -0.5 * np.exp(-0.2 * lam)], axis=1)
    value, jac = Exponential().extrapolate(lam, y)
    assert np.allclose(value, [0.8, -0.5])
    # d value / d y_j = value * gamma_j / y_j, checked by a finite difference
    eps = 1e-7
    bumped = y.copy()
    bumped[2, 0] += eps
    assert (Exponential().extrapolate(lam, bumped)[0][0] - value[0]) / eps == pytest.approx(
        jac[2, 0], rel=1e-5
    )


def test_exponential_falls_back_where_signs_disagree() -> None:
    lam = (1.0, 3.0, 5.0)
    y = np.array([[0.1], [-0.05], [0.02]])
    ex = Exponential()
    value, _ = ex.extrapolate(lam, y)
    assert ex.fallbacks(lam, y) == 1
    assert value[0] == pytest.approx(float(Richardson(3).coefficients(lam) @ y[:, 0]))


def test_fit_variance_matches_monte_carlo() -> None:
    rng = np.random.default_rng(7)
    lam = (1.0, 3.0, 5.0)
    truth = np.array([0.9, 0.75, 0.62])
    sd = np.array([0.01, 0.015, 0.03])
    fit = DeviceFit("dev", Richardson(3))
    for s, m, e in zip(lam, truth, sd, strict=True):
        fit.add("dev", s, [m], [[e**2]])
    res = fit.result()
    draws = truth + rng.standard_normal((20_000, 3)) * sd
    values = draws @ Richardson(3).coefficients(lam)
    # the analytic standard error agrees with the spread of 20,000 draws within 2 %
    assert np.sqrt(res.cov[0, 0]) == pytest.approx(values.std(), rel=0.02)


# ---------------------------------------------------------------- one device per fit
def test_a_fit_refuses_points_from_another_device() -> None:
    fit = DeviceFit("ibm:fake_kyiv", Richardson(3))
    fit.add("ibm:fake_kyiv", 1.0, [0.9], [[1e-4]])
    with pytest.raises(multiqpu.InvalidInputError, match="cannot join"):
        fit.add("ibm:fake_manila", 3.0, [0.7], [[1e-4]])
    with pytest.raises(multiqpu.InvalidInputError, match="already"):
        fit.add("ibm:fake_kyiv", 1.0, [0.9], [[1e-4]])
    with pytest.raises(multiqpu.InvalidInputError, match="at least two"):
        fit.result()


def test_fit_per_device_never_mixes_devices() -> None:
    # two devices with different noise: each fit recovers the same zero-noise value 0.8,
    # which one fit through all six points could not
    points = []
    for dev, rate in (("a", 0.02), ("b", 0.1)):
        for s in (1.0, 3.0, 5.0):
            points.append((dev, s, [0.8 * (1 - rate * s)], [[1e-6]]))
    fits = fit_per_device(points, Richardson(3))
    assert sorted(fits) == ["a", "b"]
    for res in fits.values():
        assert res.value[0] == pytest.approx(0.8)
        assert len(res.scales) == 3


# ---------------------------------------------------------------- folding
def _circuit() -> QuantumCircuit:
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.ry(0.4, 2)
    qc.cx(1, 2)
    qc.rz(0.3, 1)
    qc.cx(0, 2)
    return qc


@pytest.mark.parametrize("spec", ["ibm:fake_kyiv", "ibm:fake_torino", "braket:emulator"])
def test_folding_keeps_the_unitary_native_gates_and_scales_the_two_qubit_count(spec: str) -> None:
    dev = multiqpu.device(spec)
    isa = dev.transpile(_circuit())
    qubits = active_qubits(isa)
    ref = Operator(compact_circuit(isa, qubits))
    d = len(two_qubit_positions(isa))
    basis = set(dev.target.basis_gates)
    for scale in (3.0, 5.0, 2.0):
        folded, achieved = fold_two_qubit_gates(isa, scale, basis=dev.target.basis_gates, seed=1)
        assert Operator(compact_circuit(folded, qubits)).equiv(ref)
        assert set(folded.count_ops()) <= basis | {"barrier", "measure"}
        assert len(two_qubit_positions(folded)) == round(achieved * d)
        assert achieved == pytest.approx(1 + 2 * round((scale - 1) * d / 2) / d)
        assert active_qubits(folded) == qubits  # same physical qubits at every scale


@pytest.mark.parametrize("spec", ["ibm:fake_kyiv", "ibm:fake_manila", "braket:emulator"])
def test_folding_all_gates_keeps_the_unitary_in_native_gates(spec: str) -> None:
    dev = multiqpu.device(spec)
    isa = dev.transpile(_circuit())
    qubits = active_qubits(isa)
    ref = Operator(compact_circuit(isa, qubits))
    d = len(foldable_positions(isa, "all"))
    assert d > len(two_qubit_positions(isa))  # single-qubit pulses are folded too
    basis = set(dev.target.basis_gates)
    for scale in (3.0, 5.0):
        folded, achieved = fold_gates(isa, scale, gates="all", basis=dev.target.basis_gates)
        assert achieved == scale
        assert Operator(compact_circuit(folded, qubits)).equiv(ref)
        assert set(folded.count_ops()) <= basis | {"barrier", "measure"}
        # every physical pulse is there `scale` times (an inverse sx is one sx pulse)
        assert len(foldable_positions(folded, "all")) == round(scale * d)


def test_folding_refuses_a_gate_whose_inverse_is_not_native() -> None:
    qc = QuantumCircuit(2)
    qc.rzx(0.3, 0, 1)
    with pytest.raises(multiqpu.InvalidInputError, match="not a native gate"):
        fold_two_qubit_gates(qc, 3.0, basis=["rzx_fixed", "rz", "sx"])


async def test_an_adopted_folded_circuit_runs_as_given() -> None:
    dev = multiqpu.device("ibm:fake_kyiv", seed=3)
    qc = _circuit()
    qc.measure_all()
    isa = dev.transpile(qc)
    folded, _ = fold_two_qubit_gates(isa, 5.0, basis=dev.target.basis_gates)
    adopt(dev, folded)
    assert dev.transpile(folded) is folded
    result = await dev.run([folded], 100)
    assert tuple(result[0].metadata["physical_qubits"]) == active_qubits(isa)


# ---------------------------------------------------------------- physics
async def test_zne_removes_two_qubit_gate_noise(tmp_path: object) -> None:
    # GHZ-4 X-parity (exact 1) on a simulator whose only noise is a 3 % two-qubit
    # depolarising error: the unmitigated parity is biased by ~0.1; extrapolation removes
    # the bias to within 4 standard errors and at least halves it.
    noisy = multiqpu.device(
        "local:noisy",
        num_qubits=4,
        gate_error_2q=0.03,
        gate_error_1q=0.0,
        readout_error=0.0,
        seed=11,
    )
    qc = QuantumCircuit(4)
    qc.h(0)
    for i in range(3):
        qc.cx(i, i + 1)
    res = await multiqpu.Fleet([noisy]).estimate(
        qc, "XXXX", shots=40_000, mitigation=[multiqpu.ZNE(scales=(1, 3, 5))]
    )
    raw = res.stages["unmitigated"]
    raw_err = abs(raw.values[0] - 1)
    err = abs(res.value - 1)
    assert raw_err > 10 * raw.std_errors[0]
    assert err < 4 * res.std_error
    assert err < raw_err / 2
    assert res.report.fits == 1
    assert res.report.shots_mitigation > 0
