"""Exact sub-experiments (shots=None) reconstruct exact expectation values of circuits wider
than any device of the fleet, for several circuit families, gate and wire cuts."""

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

CASES = [
    ("hea-12-on-7+5", hea(12), (7, 5)),
    ("qaoa-8-on-5", qaoa(8), (5,)),
    ("ghz-10-on-6+4", ghz(10), (6, 4)),
    ("random-10-on-6", random_blocks(10), (6,)),
    ("hea-14-on-8", hea(14, reps=1, seed=4), (8,)),
]


@pytest.mark.parametrize(("name", "circuit", "widths"), CASES, ids=[c[0] for c in CASES])
async def test_exact_cut_estimate_matches_statevector(name, circuit, widths) -> None:
    fleet = ideal_fleet(*widths)
    observables = observables_for(circuit.num_qubits)
    result = await fleet.estimate(circuit, observables, shots=None)
    plan = result.report.plan
    assert circuit.num_qubits > max(widths)
    assert plan.cut and plan.cuts, "a circuit wider than every device must be cut"
    assert all(f.width <= max(widths) for f in plan.fragments)
    assert all(s == 0.0 for s in result.std_errors)
    np.testing.assert_allclose(result.values, exact_values(circuit, observables), atol=1e-8)
    assert result.report.shots is None
    assert sum(d.circuits for d in result.report.devices) == plan.subexperiments


async def test_wire_cuts_only_are_exact() -> None:
    circuit = ghz(8)
    fleet = ideal_fleet(5)
    observables = observables_for(8, seed=5)
    result = await fleet.estimate(circuit, observables, shots=None, gate_cuts=False)
    plan = result.report.plan
    assert plan.wire_cuts >= 1 and plan.gate_cuts == 0
    assert plan.sampling_overhead == pytest.approx(16.0**plan.wire_cuts)
    np.testing.assert_allclose(result.values, exact_values(circuit, observables), atol=1e-8)


async def test_uncut_when_a_device_fits() -> None:
    circuit = hea(8, reps=1)
    fleet = ideal_fleet(10)
    observables = observables_for(8, seed=2)
    result = await fleet.estimate(circuit, observables, shots=None)
    assert not result.report.plan.cut
    assert result.report.plan.sampling_overhead == 1.0
    np.testing.assert_allclose(result.values, exact_values(circuit, observables), atol=1e-8)


async def test_max_fragment_qubits_forces_narrower_fragments() -> None:
    circuit = hea(10, reps=1, seed=9)
    fleet = ideal_fleet(24)
    observables = observables_for(10, seed=3)
    result = await fleet.estimate(circuit, observables, shots=None, max_fragment_qubits=6)
    plan = result.report.plan
    assert plan.cut and all(f.width <= 6 for f in plan.fragments)
    np.testing.assert_allclose(result.values, exact_values(circuit, observables), atol=1e-8)
