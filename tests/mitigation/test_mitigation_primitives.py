"""fleet.estimator(mitigation=...): every measurement circuit corrected on the device that ran
it; evs within the propagated stds of the exact values and closer to them than the plain
estimates from the same shots. The sampler refuses mitigation.

Devices are unseeded (seed=None): every check is a statistical bound (4 standard errors) or
a comparison with a bias many standard errors wide."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu
from multiqpu.primitives import FleetEstimator


def noisy(readout: float = 0.05, gate_2q: float = 0.0, label: str | None = None) -> multiqpu.Device:
    options = {"label": label} if label else {}
    return multiqpu.device(
        "local:noisy", num_qubits=3, readout_error=readout, gate_error_1q=0.0,
        gate_error_2q=gate_2q, seed=None, **options,
    )  # fmt: skip


def circuit() -> QuantumCircuit:
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.ry(0.4, 2)
    return qc


OBSERVABLES = [
    SparsePauliOp("ZZI"),
    SparsePauliOp("IZZ"),
    SparsePauliOp.from_list([("XXX", 0.5), ("ZZI", 1.0), ("III", 0.2)]),
]


def exact_values(qc: QuantumCircuit, observables: list[SparsePauliOp]) -> np.ndarray:
    state = Statevector(qc)
    return np.array([state.expectation_value(o).real for o in observables])


def test_readout_mitigated_estimates_are_closer_and_within_errors_on_each_device() -> None:
    """Two devices with very different readout errors (3% and 10%): a correction made with the
    wrong device's calibration would leave a bias of several standard errors."""
    fleet = multiqpu.Fleet([
        noisy(readout=0.03, label="ro3"), noisy(readout=0.10, label="ro10"),
    ])  # fmt: skip
    estimator = fleet.estimator(
        mitigation=[multiqpu.Readout()], default_precision=0.01, policy="fastest"
    )
    qc = circuit()
    exact = exact_values(qc, OBSERVABLES)
    result = estimator.run([(qc, OBSERVABLES)] * 6).result()
    used: set[str] = set()
    for pub in result:
        data = pub.data
        assert data.evs.shape == data.stds.shape == (3,)
        assert np.all(np.abs(data.evs - exact) < 4 * data.stds)
        # readout error biases the plain estimates by many standard errors; correction
        # removes it
        assert np.all(np.abs(data.evs - exact) < np.abs(data.evs_unmitigated - exact))
        # correction and the calibration's own error widen the error bars
        assert np.all(data.stds >= data.stds_unmitigated)
        meta = pub.metadata
        assert sum(meta["devices"].values()) == meta["num_circuits"] == 2
        assert meta["mitigation"].startswith("readout")
        used.update(meta["devices"])
    assert used == {"local:ro3", "local:ro10"}
    report = result.metadata["mitigation"]
    assert report.shots_calibration > 0
    assert set(report.devices) == used


def test_readout_mitigation_on_a_fake_ibm_backend() -> None:
    """fake_manila's measured readout (about 2-3% per qubit) corrected; X gates only, so
    readout is nearly all the noise there is."""
    qc = QuantumCircuit(3)
    qc.x(0)
    qc.x(2)
    obs = [
        SparsePauliOp("ZIZ"),
        SparsePauliOp("ZZZ"),
        SparsePauliOp.from_list([("IZI", 0.5), ("ZII", -1)]),
    ]
    fleet = multiqpu.Fleet([multiqpu.device("ibm:fake_manila")])
    result = (
        fleet.estimator(mitigation=multiqpu.Readout(), default_precision=0.01)
        .run([(qc, obs)])
        .result()
    )
    data = result[0].data
    exact = exact_values(qc, obs)
    assert np.all(np.abs(data.evs - exact) < 4 * data.stds)
    assert np.all(np.abs(data.evs - exact) < np.abs(data.evs_unmitigated - exact))
    assert result[0].metadata["devices"] == {"ibm:fake_manila": 1}


def test_zne_and_readout_per_device_with_parameter_bindings() -> None:
    theta = Parameter("t")
    qc = QuantumCircuit(2)
    qc.ry(theta, 0)
    qc.cx(0, 1)
    qc.cx(0, 1)
    qc.cx(0, 1)
    fleet = multiqpu.Fleet([noisy(readout=0.03, gate_2q=0.04)])
    estimator = FleetEstimator(
        fleet, default_precision=0.008,
        mitigation=[multiqpu.ZNE(scales=(1, 3, 5)), multiqpu.Readout()],
    )  # fmt: skip
    angles = np.array([[0.3], [1.2]])
    obs = SparsePauliOp("ZZ")
    result = estimator.run([(qc, obs, angles)]).result()
    data = result[0].data
    assert data.evs.shape == (2,)
    exact = np.array([Statevector(qc.assign_parameters(a)).expectation_value(obs).real
                      for a in angles])  # fmt: skip
    assert np.all(np.abs(data.evs - exact) < 4 * data.stds)
    assert np.all(np.abs(data.evs - exact) < np.abs(data.evs_unmitigated - exact))
    # extrapolation multiplies the shot noise (Richardson weights 15/8, -10/8, 3/8)
    assert np.all(data.stds > 1.5 * data.stds_unmitigated)
    assert "zne" in result[0].metadata["mitigation"]


def test_single_term_error_matches_the_spread_of_repeats() -> None:
    """The propagated std of one Pauli term is the real spread of the estimate (not just a
    bound): over repeated runs, the z-scores have a variance near 1."""
    fleet = multiqpu.Fleet([noisy(readout=0.06)])
    estimator = fleet.estimator(
        mitigation=[multiqpu.Readout(calibrate=False)], default_precision=0.02
    )
    qc = circuit()
    obs = SparsePauliOp("ZZI")
    exact = exact_values(qc, [obs])[0]
    result = estimator.run([(qc, [obs])] * 40).result()
    z = np.array([(r.data.evs[0] - exact) / r.data.stds[0] for r in result])
    # 40 draws: the sample variance of z lies in [0.4, 1.9] with probability > 0.998
    assert 0.4 < float(np.var(z)) < 1.9
    assert abs(float(np.mean(z))) < 4 / np.sqrt(40)


def test_bad_combinations_are_refused() -> None:
    fleet = multiqpu.Fleet([noisy()])
    with pytest.raises(multiqpu.InvalidInputError, match="sampler"):
        fleet.sampler(mitigation=[multiqpu.Readout()])
    with pytest.raises(multiqpu.InvalidInputError, match="mitigation="):
        fleet.estimator(mitigation="readout")
    with pytest.raises(multiqpu.InvalidInputError, match="linear"):
        fleet.estimator(mitigation=[multiqpu.ZNE(extrapolator="exponential")])
    estimator = fleet.estimator(mitigation=[multiqpu.Readout()])
    with pytest.raises(multiqpu.InvalidInputError, match="exact"):
        estimator.run([(circuit(), SparsePauliOp("ZZI"))], precision=0).result()
    # mitigation=None or [] is the plain estimator
    plain = fleet.estimator(mitigation=[])
    assert plain.mitigation is None
    data = plain.run([(circuit(), SparsePauliOp("ZZI"))]).result()[0].data
    assert not hasattr(data, "evs_unmitigated")
