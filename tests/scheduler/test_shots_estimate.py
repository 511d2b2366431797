"""Estimates whose shots ran on several devices (docs/shots.md): every device's share is
corrected on that device, then the values are combined with inverse-variance weights and the
spread between devices is reported; devices that disagree widen the error, not hide it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu
from multiqpu.pipeline import SplitEstimate, combine


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


def test_combine_is_the_inverse_variance_mean() -> None:
    c = combine([1.0, 2.0], [0.1, 0.2])
    w = np.array([100.0, 25.0])
    assert c.value == pytest.approx((w @ [1.0, 2.0]) / w.sum())
    # the two values are 4.5 sigma apart: the error is scaled up by sqrt(Q / dof)
    q = float(w @ (np.array([1.0, 2.0]) - c.value) ** 2)
    assert c.q == pytest.approx(q) and c.dof == 1 and not c.consistent
    assert c.std_error == pytest.approx(math.sqrt(q) / math.sqrt(w.sum()))
    agree = combine([1.0, 1.01, 0.99], [0.05, 0.05, 0.05])
    assert agree.consistent and agree.scale == 1.0
    assert agree.std_error == pytest.approx(0.05 / math.sqrt(3))


def test_combined_error_is_honest_under_shot_noise() -> None:
    # three devices measuring the same value with different errors: |combined - truth| / se
    # is standard normal; over 2,000 draws its spread is 1 within sampling error
    rng = np.random.default_rng(11)
    errs = np.array([0.01, 0.02, 0.04])
    z = []
    for _ in range(2000):
        c = combine((0.3 + errs * rng.standard_normal(3)).tolist(), errs.tolist())
        z.append((c.value - 0.3) / (c.std_error / c.scale))
    assert abs(float(np.std(z)) - 1.0) < 0.05


async def test_estimate_split_mitigates_each_device_then_combines() -> None:
    fleet = multiqpu.Fleet([readout_only("sg", 0.02, 1), readout_only("sb", 0.08, 2)])
    obs = ["ZZZZ", "XXXX"]
    exact = [float(Statevector(ghz(4)).expectation_value(SparsePauliOp(o)).real) for o in obs]
    res = await fleet.estimate(
        ghz(4), obs, shots=40_000, mitigation=[multiqpu.Readout()], split_shots=True,
        use_scheduler=False,
    )  # fmt: skip
    assert isinstance(res, SplitEstimate)
    assert [p.device for p in res.per_device] == ["local:sg", "local:sb"]
    assert sum(p.shots or 0 for p in res.per_device) == 40_000
    for p in res.per_device:  # each device's share ran there alone and was corrected there
        assert set(p.result.report.devices) == {p.device}
    for k, e in enumerate(exact):
        assert abs(res.values[k] - e) < 4 * res.std_errors[k], obs[k]
        # the combined error is below every device's own
        assert (
            res.std_errors[k]
            <= min(p.std_errors[k] for p in res.per_device) * res.combined[k].scale
        )
    assert len(res.spread) == 2 and all(s >= 0 for s in res.spread)


async def test_devices_with_different_noise_are_flagged_when_not_mitigated() -> None:
    fleet = multiqpu.Fleet([readout_only("ug", 0.01, 1), readout_only("ub", 0.15, 2)])
    res = await fleet.estimate(
        ghz(4), ["ZZZZ"], shots=40_000, split_shots=True, use_scheduler=False
    )
    c = res.combined[0]
    assert not c.consistent and c.scale > 3  # 0.15 readout error moves <ZZZZ> by far
    assert res.std_error == pytest.approx(c.scale / math.sqrt(
        sum(1 / p.std_errors[0] ** 2 for p in res.per_device)
    ))  # fmt: skip


async def test_auto_splits_estimates_only_for_the_fastest_policy() -> None:
    fleet = multiqpu.Fleet([readout_only("ag", 0.01, 1), readout_only("ab", 0.01, 2)])
    plain = await fleet.estimate(ghz(3), ["ZZZ"], shots=4000, use_scheduler=False)
    assert not isinstance(plain, SplitEstimate)
    fast = await fleet.estimate(ghz(3), ["ZZZ"], shots=4000, policy="fastest")
    assert isinstance(fast, SplitEstimate) and len(fast.per_device) == 2
