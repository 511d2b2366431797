"""Qiskit V2 primitives over a fleet, checked against Aer's own primitives and exact values.

Sampled estimates are compared within 5 of their reported standard errors (a two-sided 5
sigma band: a false alarm about once in 1.7 million comparisons); exact mode within 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import BaseEstimatorV2, BaseSamplerV2
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu
from multiqpu.pool import DevicePool
from multiqpu.primitives import FleetSampler

K_SIGMA = 5.0


@pytest.fixture(scope="module")
def ideal_fleet() -> multiqpu.Fleet:
    return multiqpu.Fleet(
        [multiqpu.device("local:ideal", num_qubits=6, seed=11), multiqpu.device("braket:sv")]
    )


def _pub() -> tuple[QuantumCircuit, list[list[SparsePauliOp]], np.ndarray]:
    qc = efficient_su2(3, reps=1)
    params = np.random.default_rng(5).uniform(-np.pi, np.pi, (4, qc.num_parameters))
    observables = [
        [SparsePauliOp(["ZZI", "XIX", "YYI", "III"], [0.5, 0.3, -0.7, 0.25])],
        [SparsePauliOp("IIZ")],
    ]
    return qc, observables, params


def test_they_are_qiskit_v2_primitives(ideal_fleet: multiqpu.Fleet) -> None:
    assert isinstance(ideal_fleet.estimator(), BaseEstimatorV2)
    assert isinstance(ideal_fleet.sampler(), BaseSamplerV2)


def test_estimator_matches_aer_within_reported_standard_errors(
    ideal_fleet: multiqpu.Fleet,
) -> None:
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator

    qc, observables, params = _pub()
    ours = ideal_fleet.estimator().run([(qc, observables, params)]).result()[0]
    aer = AerEstimator().run([(qc, observables, params)]).result()[0]
    assert ours.data.evs.shape == aer.data.evs.shape == (2, 4)
    stds = ours.data.stds
    assert np.all(stds > 0) and np.all(stds < 0.05)
    assert np.all(np.abs(ours.data.evs - aer.data.evs) <= K_SIGMA * stds), (
        ours.data.evs - aer.data.evs
    ) / stds
    assert ours.metadata["shots"] == 4096
    assert sum(ours.metadata["devices"].values()) == ours.metadata["num_circuits"]


def test_estimator_standard_errors_are_calibrated(ideal_fleet: multiqpu.Fleet) -> None:
    """Across many independent estimates the z-scores against exact values have unit spread."""
    qc, observables, params = _pub()
    est = ideal_fleet.estimator(default_precision=0.05)  # 400 shots per circuit
    exact = ideal_fleet.estimator(default_precision=0).run([(qc, observables, params)])
    truth = exact.result()[0].data.evs
    z = []
    for _ in range(6):
        r = est.run([(qc, observables, params)]).result()[0]
        z.extend(((r.data.evs - truth) / r.data.stds).ravel())
    z_arr = np.array(z)
    # 48 z-scores: their standard deviation is within 0.6..1.5 unless the errors are wrong.
    assert 0.6 < z_arr.std() < 1.5, z_arr.std()
    assert abs(z_arr.mean()) < 4 / np.sqrt(len(z_arr)) * 1.5


def test_exact_mode_equals_statevector(ideal_fleet: multiqpu.Fleet) -> None:
    qc, observables, params = _pub()
    r = ideal_fleet.estimator().run([(qc, observables, params)], precision=0).result()[0]
    for i in range(4):
        sv = Statevector(qc.assign_parameters(params[i]))
        for k, [obs] in enumerate(observables):
            assert r.data.evs[k, i] == pytest.approx(sv.expectation_value(obs).real, abs=1e-10)
    assert np.all(r.data.stds == 0)


def test_estimator_on_a_fleet_without_exact_devices_refuses_precision_zero() -> None:
    fleet = multiqpu.Fleet([multiqpu.device("local:noisy")])
    qc = QuantumCircuit(1)
    qc.h(0)
    with pytest.raises(multiqpu.InvalidInputError, match="exact simulator"):
        fleet.estimator().run([(qc, "X")], precision=0).result()


def test_sampler_bitarrays_per_register_match_exact_probabilities(
    ideal_fleet: multiqpu.Fleet,
) -> None:
    from qiskit import ClassicalRegister, QuantumRegister
    from qiskit.circuit import Parameter

    theta = Parameter("t")
    q = QuantumRegister(3)
    a, b = ClassicalRegister(1, "alpha"), ClassicalRegister(2, "beta")
    qc = QuantumCircuit(q, a, b)
    qc.ry(theta, 0)
    qc.cx(0, 1)
    qc.x(2)
    qc.measure(0, a[0])
    qc.measure(1, b[0])
    qc.measure(2, b[1])
    shots = 4000
    thetas = np.array([[0.3], [1.2], [2.5]])
    res = ideal_fleet.sampler(seed=3).run([(qc, thetas)], shots=shots).result()[0]
    assert res.data.alpha.shape == (3,) and res.data.alpha.num_shots == shots
    assert res.data.beta.num_bits == 2
    for i, (t,) in enumerate(thetas):
        p1 = np.sin(t / 2) ** 2
        counts_a = res.data.alpha.get_counts(i)
        counts_b = res.data.beta.get_counts(i)
        # beta: bit 1 (qubit 2) always 1; bit 0 copies qubit 0
        assert set(counts_b) <= {"10", "11"}
        assert counts_b.get("11", 0) == counts_a.get("1", 0)
        se = np.sqrt(p1 * (1 - p1) / shots)
        assert abs(counts_a.get("1", 0) / shots - p1) <= K_SIGMA * se + 1e-12


def test_sampler_matches_aer_sampler_in_distribution(ideal_fleet: multiqpu.Fleet) -> None:
    from qiskit_aer.primitives import SamplerV2 as AerSampler

    qc = efficient_su2(2, reps=1)
    qc.measure_all()
    params = np.random.default_rng(2).uniform(-np.pi, np.pi, qc.num_parameters)
    shots = 8000
    ours = FleetSampler(ideal_fleet).run([(qc, params)], shots=shots).result()[0]
    aer = AerSampler(seed=1).run([(qc, params)], shots=shots).result()[0]
    exact = Statevector(qc.remove_final_measurements(inplace=False).assign_parameters(params))
    probs = exact.probabilities_dict()
    for key, p in probs.items():
        se = np.sqrt(max(p * (1 - p), 1e-12) / shots) * np.sqrt(2)
        a = ours.data.meas.get_counts().get(key, 0) / shots
        b = aer.data.meas.get_counts().get(key, 0) / shots
        assert abs(a - b) <= K_SIGMA * se + 1e-12, (key, a, b)


def test_qiskit_addon_cutting_workflow_runs_on_the_fleet(ideal_fleet: multiqpu.Fleet) -> None:
    """A wire-free gate cut: sub-experiments sampled by FleetSampler, reconstructed by the addon,
    compared with the exact expectation value within the reconstruction's propagated error."""
    cutting = pytest.importorskip("qiskit_addon_cutting")
    qc = QuantumCircuit(4)
    for i in range(4):
        qc.ry(0.4 + 0.3 * i, i)
    qc.cx(0, 1)
    qc.cx(2, 3)
    qc.cx(1, 2)
    for i in range(4):
        qc.rx(0.2 * i + 0.1, i)
    obs = SparsePauliOp(["ZZZZ", "IIZZ"], [0.6, 0.4])
    partitioned = cutting.partition_problem(qc, "AABB", observables=obs.paulis)
    experiments, coefficients = cutting.generate_cutting_experiments(
        partitioned.subcircuits, partitioned.subobservables, num_samples=np.inf
    )
    sampler = FleetSampler(ideal_fleet, seed=4)
    shots = 4000
    results = {
        label: sampler.run(subs, shots=shots).result() for label, subs in experiments.items()
    }
    values = cutting.reconstruct_expectation_values(
        results, coefficients, partitioned.subobservables
    )
    estimate = float(np.dot(values, obs.coeffs.real))
    exact = Statevector(qc).expectation_value(obs).real
    # Each of the 6 x 6 sub-experiment pairs contributes with |coeff| <= 1 (gamma = 3 for a
    # CNOT cut); a generous bound on the error: 3 * 2 / sqrt(shots) per term, 5 sigma.
    assert abs(estimate - exact) <= K_SIGMA * 3 * 2 / np.sqrt(shots)


@pytest.mark.parametrize("use_scheduler", [True, False])
async def test_dispatch_splits_shots_above_the_device_limit(use_scheduler: bool) -> None:
    from multiqpu.primitives._dispatch import sample

    limited = multiqpu.device(
        "local:ideal", num_qubits=2, seed=1, limits=multiqpu.DeviceLimits(max_shots=1000)
    )
    pool = DevicePool([limited])
    qc = QuantumCircuit(1, 1)
    qc.h(0)
    qc.measure(0, 0)
    out = await sample(pool, [qc, qc], [2500, None], use_scheduler=use_scheduler)
    assert [s.device for s in out] == ["local:ideal", "local:ideal"]
    assert out[0].result.shots == 2500 and sum(out[0].result.counts.values()) == 2500
    se = np.sqrt(0.25 / 2500)
    assert abs(out[0].result.counts.get("1", 0) / 2500 - 0.5) <= K_SIGMA * se
    assert out[1].result.probabilities == pytest.approx({"0": 0.5, "1": 0.5})


def test_primitives_run_on_the_fleets_pool_and_what_they_learn_stays_there() -> None:
    fleet = multiqpu.Fleet([multiqpu.device("local:ideal", num_qubits=3, seed=2)])
    est = fleet.estimator(default_precision=0.1)
    assert est.pool is fleet.pool and FleetSampler(fleet).pool is fleet.pool
    qc, _, params = _pub()
    est.run([(qc, SparsePauliOp("ZZI"), params[:1])]).result()
    assert fleet.pool.knowledge["local:ideal"].jobs >= 1
    # what fleet= took before still works: a device, a spec string, a list of specs
    for given in (fleet["local:ideal"], "local:ideal", ["local:ideal"]):
        pool = FleetSampler(given).pool
        assert isinstance(pool, DevicePool) and pool.specs == ("local:ideal",)
