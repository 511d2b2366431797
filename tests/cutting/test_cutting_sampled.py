"""Sampled cutting runs: estimates within 4 standard errors of the exact statevector values,
standard errors that shrink with shots, shots spent as planned, work spread over the fleet."""

from __future__ import annotations

import numpy as np
import pytest
from _cut_families import (
    exact_values,
    ghz,
    hea,
    ideal_fleet,
    observables_for,
    qaoa,
    random_blocks,
)

import multiqpu

CASES = [
    ("hea-12-on-7+5", hea(12), (7, 5), 60_000),
    ("qaoa-8-on-5+5", qaoa(8), (5, 5), 40_000),
    ("ghz-10-on-6+4", ghz(10), (6, 4), 30_000),
    ("random-10-on-6+6", random_blocks(10), (6, 6), 60_000),
]


@pytest.mark.parametrize(("name", "circuit", "widths", "shots"), CASES, ids=[c[0] for c in CASES])
async def test_sampled_estimate_within_4_standard_errors(name, circuit, widths, shots) -> None:
    fleet = ideal_fleet(*widths)
    observables = observables_for(circuit.num_qubits)
    result = await fleet.estimate(circuit, observables, shots=shots)
    exact = exact_values(circuit, observables)
    values, errors = np.array(result.values), np.array(result.std_errors)
    assert result.report.plan.cut
    assert np.all(errors > 0) and np.all(errors < 0.25), errors
    assert np.all(np.abs(values - exact) < 4 * errors), (values, exact, errors)
    report = result.report
    assert report.shots == shots
    assert sum(d.shots for d in report.devices) == shots
    assert len(report.devices) == len(widths), "every device of the fleet took work"


async def test_pilot_then_neyman_allocation_beats_weights_alone() -> None:
    """With a generous budget a pilot measures each circuit's variance contribution and the
    rest of the shots follow it: a clearly smaller error than shots by weights alone, and
    the pilot's shots are counted but not used in the estimate."""
    circuit = hea(12, seed=1)
    fleet = ideal_fleet(7, 5)
    obs = ["Z" + "I" * 10 + "Z"]
    staged = await fleet.estimate(circuit, obs, shots=200_000)
    flat = await fleet.estimate(circuit, obs, shots=200_000, adaptive=False)
    assert staged.report.stages == 2 and 0 < staged.report.pilot_shots < 60_000
    assert staged.report.shots == flat.report.shots == 200_000
    assert staged.std_error < 0.75 * flat.std_error
    exact = exact_values(circuit, obs)[0]
    for r in (staged, flat):
        assert abs(r.value - exact) < 4 * r.std_error


async def test_standard_error_shrinks_like_one_over_root_shots() -> None:
    circuit = ghz(10)
    fleet = ideal_fleet(6, 6)
    obs = ["Z" + "I" * 8 + "Z"]
    small = await fleet.estimate(circuit, obs, shots=5_000, adaptive=False)
    large = await fleet.estimate(circuit, obs, shots=80_000, adaptive=False)
    ratio = small.std_error / large.std_error
    assert 2.8 < ratio < 5.7  # sqrt(16) = 4, within sampling noise of the error estimates


async def test_heterogeneous_fleet_fragments_sized_to_devices() -> None:
    """Fragments fit the devices that run them; the narrow device takes the narrow fragment's
    work and never a fragment wider than itself."""
    circuit = hea(12)
    wide = multiqpu.device("local:ideal", num_qubits=7, seed=1)
    narrow = multiqpu.device("local:noisy", num_qubits=5, readout_error=0.0,
                             gate_error_1q=0.0, gate_error_2q=0.0, seed=2)  # fmt: skip
    fleet = multiqpu.Fleet([wide, narrow])
    result = await fleet.estimate(circuit, "Z" * 12, shots=20_000)
    plan = result.report.plan
    assert sorted(f.width for f in plan.fragments) == [5, 7]
    by_width = {f.width: f for f in plan.fragments}
    assert by_width[7].devices == ("local:ideal",)
    assert set(by_width[5].devices) == {"local:ideal", "local:noisy"}
    used = {d.device: d for d in result.report.devices}
    assert set(used) == {"local:ideal", "local:noisy"}
    assert used["local:noisy"].circuits <= 2 * by_width[5].subexperiments
    exact = exact_values(circuit, ["Z" * 12])[0]
    assert abs(result.value - exact) < 4 * result.std_error


@pytest.mark.parametrize("precision", [0.05, 0.01])
async def test_precision_target_is_met(precision: float) -> None:
    circuit = hea(12)
    fleet = ideal_fleet(7, 5)
    obs = observables_for(12)[:1]
    result = await fleet.estimate(circuit, obs, precision=precision)
    report = result.report
    assert result.std_error <= precision
    assert report.shots < report.plan.shots / 5, "measured variances beat the worst case"
    exact = exact_values(circuit, obs)[0]
    assert abs(result.value - exact) < 4 * result.std_error
