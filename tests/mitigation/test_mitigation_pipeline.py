"""One pipeline for every job: what works without mitigation works with it (precision
targets, adaptive shots) or is refused up front, and the mitigation circuits run on
subsets of the caller's pool, so what they teach the scheduler stays with the fleet."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu


def entangled() -> tuple[QuantumCircuit, SparsePauliOp, float]:
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.ry(0.7, 2)
    qc.cx(1, 2)
    obs = SparsePauliOp(["ZZI", "IZZ", "XXI"], [0.4, 0.4, 0.2])  # two measurement groups
    return qc, obs, float(Statevector(qc).expectation_value(obs).real)


async def test_precision_target_with_mitigation_on_the_default_fleet() -> None:
    # The acceptance point of issue #9: a precision target with Readout + ZNE on the
    # default fleet returns a value with a standard error at the target.
    qc, obs, exact = entangled()
    fleet = multiqpu.Fleet.local(time_scale=0.001)
    res = await fleet.estimate(
        qc, obs, precision=0.02, mitigation=[multiqpu.Readout(), multiqpu.ZNE()]
    )
    assert isinstance(res, multiqpu.mitigation.MitigatedEstimate)
    assert 0 < res.std_error <= 0.02
    assert abs(res.value - exact) < 4 * res.std_error  # 4 standard errors
    assert res.report.plan is not None and res.report.plan.precision == 0.02


async def test_precision_target_is_met_on_noisy_devices() -> None:
    # The same on the default fleet's noisy devices only, where readout correction and
    # ZNE really act: a pilot sizes the main stage, which stops at the target.
    qc, obs, exact = entangled()
    fleet = multiqpu.Fleet([d for d in multiqpu.Fleet.local(time_scale=0.001) if not d.exact])
    res = await fleet.estimate(
        qc, obs, precision=0.02, mitigation=[multiqpu.Readout(), multiqpu.ZNE()]
    )
    rep = res.report
    assert 0 < res.std_error <= 0.02
    assert abs(res.value - exact) < 4 * res.std_error
    assert rep.pilot_shots > 0 and rep.fits >= 1
    assert rep.shots_base < 100_000  # stopped at the target, not at the budget
    assert rep.shots_calibration > 0


async def test_adaptive_allocation_applies_with_mitigation() -> None:
    dev = multiqpu.device(
        "local:noisy", num_qubits=3, readout_error=0.04, gate_error_1q=0.0, gate_error_2q=0.0,
        seed=5,
    )  # fmt: skip
    qc, obs, exact = entangled()
    fleet = multiqpu.Fleet([dev])
    staged = await fleet.estimate(qc, obs, shots=6_000, mitigation=[multiqpu.Readout()])
    plain = await fleet.estimate(
        qc, obs, shots=6_000, adaptive=False, mitigation=[multiqpu.Readout()]
    )
    assert staged.report.pilot_shots > 0 and plain.report.pilot_shots == 0
    assert staged.report.shots_base == plain.report.shots_base == 6_000
    for res in (staged, plain):
        assert abs(res.value - exact) < 4 * res.std_error


async def test_mitigation_circuits_teach_the_callers_pool() -> None:
    # The readout calibration runs on a one-device subset of the fleet's pool: the jobs it
    # completes are learned in the fleet's own pool.
    dev = multiqpu.device(
        "local:noisy", num_qubits=3, readout_error=0.04, gate_error_1q=0.0, gate_error_2q=0.0,
        seed=6,
    )  # fmt: skip
    circuit = QuantumCircuit(2)
    circuit.x(0)
    circuit.measure_all()
    fleet = multiqpu.Fleet([dev])
    plain = multiqpu.Fleet([dev])
    await plain.sample([circuit], shots=500)
    await fleet.sample([circuit], shots=500, mitigation=[multiqpu.Readout()])
    jobs_plain = plain.pool.knowledge[dev.spec].jobs
    assert fleet.pool.knowledge[dev.spec].jobs > jobs_plain >= 1


async def test_what_mitigation_cannot_serve_is_refused_up_front() -> None:
    dev = multiqpu.device("local:noisy", num_qubits=3, seed=7)
    fleet = multiqpu.Fleet([dev])
    qc, _, _ = entangled()
    measured = qc.copy()
    measured.measure_all()
    with pytest.raises(multiqpu.InvalidInputError, match="distributions"):
        await multiqpu.pipeline.distribution(fleet, qc, mitigation=[multiqpu.Readout()])
    with pytest.raises(multiqpu.InvalidInputError, match="nothing to mitigate"):
        await fleet.estimate(qc, "ZZZ", shots=None, precision=0.01, mitigation=[multiqpu.Readout()])
    with pytest.raises(multiqpu.InvalidInputError, match="budget_usd"):
        await fleet.sample([measured], budget_usd=1.0, mitigation=[multiqpu.Readout()])
    assert dev.spec not in fleet.pool.knowledge  # nothing ran


async def test_plan_allows_for_mitigations_extra_variance() -> None:
    # fleet.plan takes estimate's arguments: with mitigation, a precision target's shot
    # bound grows by the stage's variance factor (ZNE's extrapolation, readout inversion).
    qc, obs, _ = entangled()
    fleet = multiqpu.Fleet([multiqpu.device("local:noisy", num_qubits=3, seed=8)])
    plain = fleet.plan(qc, obs, precision=0.02)
    mitigation = [multiqpu.Readout(), multiqpu.ZNE()]
    mitigated = fleet.plan(qc, obs, precision=0.02, mitigation=mitigation, policy="fastest")
    factor = multiqpu.mitigation.MitigationStage.of(mitigation).variance_factor
    assert factor > 1
    assert plain.shots is not None and mitigated.shots is not None
    assert mitigated.shots == pytest.approx(plain.shots * factor, rel=0.01)
    with pytest.raises(multiqpu.InvalidInputError, match="nothing to mitigate"):
        fleet.plan(qc, obs, shots=None, mitigation=mitigation)
