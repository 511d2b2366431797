"""The pipeline: per-device correction before recombination, for shards spread over
devices with different noise, for cut circuits, with honest standard errors, and with a
device lost halfway."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu
from multiqpu.mitigation._cache import clear_memory
from multiqpu.testing.faults import FaultyDevice


def ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    return qc


def readout_only(name: str, error: float, seed: int) -> multiqpu.Device:
    return multiqpu.device(
        "local:noisy", label=name, num_qubits=4, readout_error=error, gate_error_1q=0.0,
        gate_error_2q=0.0, seed=seed,
    )  # fmt: skip


async def test_each_device_is_corrected_with_its_own_calibration() -> None:
    # Two devices with very different readout (2 % and 8 %): the measurement groups of the
    # observables are spread over both; each is corrected with its own device's
    # calibration, so every value is unbiased (raw values are biased differently).
    fleet = multiqpu.Fleet([readout_only("good", 0.02, 1), readout_only("bad", 0.08, 2)])
    obs = ["ZZZZ", "XXXX", "YYYY"]
    exact = [float(Statevector(ghz(4)).expectation_value(SparsePauliOp(o)).real) for o in obs]
    res = await fleet.estimate(
        ghz(4), obs, shots=50_000, mitigation=[multiqpu.Readout()], use_scheduler=False
    )
    assert set(res.report.devices) == {"local:good", "local:bad"}
    measured = {c.device for c in res.report.calibrations if c.source == "measured"}
    assert measured == {"local:good", "local:bad"}
    raw = res.stages["unmitigated"]
    for k, e in enumerate(exact):
        assert abs(res.values[k] - e) < 4 * res.std_errors[k], obs[k]
        if e != 0:
            assert abs(raw.values[k] - e) > 5 * raw.std_errors[k], obs[k]


@pytest.mark.slow
async def test_cut_circuit_fragments_are_mitigated_before_knitting() -> None:
    # Two GHZ-3 blocks joined by one CNOT, cut into 3-qubit fragments that run on a
    # 5-qubit device with real calibration data; readout + ZNE on every sub-experiment.
    fleet = multiqpu.Fleet([multiqpu.device("ibm:fake_manila", seed=41)])
    qc = ghz(6)
    res = await fleet.estimate(
        qc, "ZZZZZZ", shots=24_000, cut="always", max_fragment_qubits=3,
        mitigation=[multiqpu.Readout(shots=8_000), multiqpu.ZNE()],
    )  # fmt: skip
    assert res.report.plan is not None and res.report.plan.cut
    assert res.report.fits >= 4  # one per (sub-experiment, device)
    raw = res.stages["unmitigated"]
    assert abs(res.value - 1) < 4 * res.std_error
    assert abs(raw.values[0] - 1) > 5 * raw.std_errors[0]
    assert abs(res.value - 1) < abs(raw.values[0] - 1) / 2
    assert res.report.shots_total == (
        res.report.shots_placement + res.report.shots_mitigation + res.report.shots_calibration
    )


async def test_standard_errors_are_honest_across_repeated_runs() -> None:
    # 12 independent readout-mitigated estimates (fresh calibrations, independent seeds):
    # the z-scores against the exact value have mean square ~1 (chi-square with 12 degrees
    # of freedom lies in [0.27, 2.2] x 12 with 99.8 % probability).
    theta = 0.9
    qc = QuantumCircuit(3)
    for q in range(3):
        qc.ry(theta + 0.3 * q, q)
    exact = math.prod(math.cos(theta + 0.3 * q) for q in range(3))
    z = []
    for seed in range(12):
        clear_memory()
        dev = multiqpu.device(
            "local:noisy", num_qubits=3, readout_error=0.05, gate_error_1q=0.0,
            gate_error_2q=0.0, seed=100 + seed,
        )  # fmt: skip
        res = await multiqpu.Fleet([dev]).estimate(
            qc, "ZZZ", shots=8_000,
            mitigation=[multiqpu.Readout(shots=4_000, cache_dir=None, cache=False)],
        )  # fmt: skip
        z.append((res.value - exact) / res.std_error)
    mean_sq = float(np.mean(np.square(z)))
    assert 0.27 < mean_sq < 2.2, z


async def test_a_device_lost_before_its_mitigation_circuits_is_replaced() -> None:
    # "dies" runs its placement job, then is lost: its circuit starts again on "lives",
    # and no fit ever holds points of two devices.
    dies = FaultyDevice(readout_only("a", 0.03, 3), name="dies", fail_after=1)
    lives = readout_only("lives", 0.03, 4)
    fleet = multiqpu.Fleet([dies, lives])
    circuits = [ghz(3), ghz(3)]
    for c in circuits:
        c.measure_all()
    res = await fleet.sample(
        circuits, shots=4000, mitigation=[multiqpu.Readout()], use_scheduler=False
    )
    assert "local:dies" in res.report.failed_devices
    assert res.devices == ("local:lives", "local:lives")
    for c in res:
        value, se = c.expectation("IZZ")
        assert abs(value - 1) < 4 * se


def test_bad_options_are_refused() -> None:
    with pytest.raises(multiqpu.InvalidInputError, match="two Readout"):
        multiqpu.mitigation.resolve([multiqpu.Readout(), multiqpu.Readout()])
    with pytest.raises(multiqpu.InvalidInputError, match="at least two"):
        multiqpu.ZNE(scales=(1,))
    with pytest.raises(multiqpu.InvalidInputError, match=">= 1"):
        multiqpu.ZNE(scales=(0.5, 1))
    with pytest.raises(multiqpu.InvalidInputError, match="unknown extrapolator"):
        multiqpu.ZNE(extrapolator="cubic-spline")
    with pytest.raises(multiqpu.InvalidInputError, match="Readout, ZNE or PauliTwirl"):
        multiqpu.mitigation.resolve(["readout"])
    spec = multiqpu.mitigation.resolve([multiqpu.ZNE, multiqpu.Readout()])
    assert spec.zne is not None and spec.readout is not None and spec.twirl is None


async def test_exact_runs_have_nothing_to_mitigate() -> None:
    fleet = multiqpu.Fleet([multiqpu.device("local:ideal", num_qubits=3)])
    with pytest.raises(multiqpu.InvalidInputError, match="nothing to mitigate"):
        await fleet.estimate(ghz(3), "ZZZ", shots=None, mitigation=[multiqpu.Readout()])
