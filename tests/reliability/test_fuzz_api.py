"""Property-based tests of the public API (hypothesis), reduced (tests/benchmarks/chaos.py
runs 1,500 cases per family), and the escapes they found, as plain regression tests."""

from __future__ import annotations

import math

import pytest
from _fuzz import FAMILIES, run_family
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

import multiqpu
from multiqpu.errors import InvalidInputError


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # qiskit, on inf
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_bad_input_raises_a_clear_multiqpu_error_and_submits_nothing(family: str) -> None:
    tally = run_family(family, 40, seed=5)
    assert tally.cases == 40
    assert tally.escapes == []
    assert tally.misses == []


@pytest.fixture
def fleet() -> multiqpu.Fleet:
    return multiqpu.Fleet([multiqpu.device("local:ideal", num_qubits=4)])


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    return qc


async def test_sample_none_is_refused(fleet: multiqpu.Fleet) -> None:
    with pytest.raises(InvalidInputError, match=r"circuits must be a list.*NoneType"):
        await fleet.sample(None)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # qiskit, on inf
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
async def test_a_nan_or_infinite_coefficient_is_named(fleet: multiqpu.Fleet, bad: float) -> None:
    with pytest.raises(InvalidInputError, match="NaN or infinite coefficient"):
        await fleet.estimate(bell(), SparsePauliOp(["ZZ", "XX"], [bad, 1.0]))


async def test_estimate_without_observables_is_refused(fleet: multiqpu.Fleet) -> None:
    with pytest.raises(InvalidInputError, match="needs observables"):
        await fleet.estimate(bell(), None)


@pytest.mark.parametrize("limits", ["10/s", {"local": ("a", 1.0)}, {"local": (5, "1s")}])
async def test_bad_rate_limits_are_refused(fleet: multiqpu.Fleet, limits: object) -> None:
    qc = bell()
    qc.measure_all()
    with pytest.raises(InvalidInputError, match="rate_limits"):
        await fleet.sample([qc], rate_limits=limits, journal=None)


async def test_absurd_shots_are_refused_before_anything_is_built(fleet: multiqpu.Fleet) -> None:
    qc = bell()
    qc.measure_all()
    with pytest.raises(InvalidInputError, match="at most 10000 parts"):
        await fleet.sample([qc], shots=10**30, journal=None)


def test_simulate_compare_survives_a_device_loss() -> None:
    import sys
    from dataclasses import replace
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scheduler"))
    from test_simulate import WORKLOAD, small_fleet

    from multiqpu.scheduler import simulate

    devices = small_fleet()
    devices[0] = replace(devices[0], lost_at=200.0)
    for policy in ("fastest", "balanced", "most_accurate"):
        r = simulate(devices, WORKLOAD, policy=policy, compare=True)
        assert sum(d["circuits"] for d in r.per_device) == 400
        assert set(r.baselines) == {"least_busy", "round_robin"}
