"""The standard errors are right: over many independent repetitions the estimates scatter as
the reported errors say (about 95% within 2 SE), for the quasi-probability estimator with
unequal shots per sub-experiment and several observables sharing circuits."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from _cut_families import exact_values, ghz, hea, ideal_fleet, observables_for

import multiqpu
from multiqpu.cutting._experiments import allocate_shots, build_problem
from multiqpu.cutting._observables import normalize_observables
from multiqpu.cutting._partition import find_cut_candidates, partition, prepare_circuit
from multiqpu.cutting._reconstruct import Stats, reconstruct_expectations
from multiqpu.device import CircuitResult


def _problem(circuit, observables, width):  # type: ignore[no-untyped-def]
    prepared = prepare_circuit(circuit)
    cand = find_cut_candidates(prepared, [width], max_overhead=1e4, seed=0, max_backjumps=1000)
    part = partition(prepared, cand[0].cut_circuit, width)
    return build_problem(part, normalize_observables(observables, circuit.num_qubits))


@pytest.mark.slow
@pytest.mark.parametrize("mean_shots", [60, 2000])
async def test_coverage_of_two_standard_errors(mean_shots: int) -> None:
    circuit = hea(12, seed=8)
    observables = observables_for(12, seed=4)
    problem = _problem(circuit, observables, 7)
    exact = exact_values(circuit, observables)
    run = [i for i, e in enumerate(problem.experiments) if not e.trivial]
    # Exact output distributions of every sub-experiment, from the exact simulator.
    device = multiqpu.device("local:ideal", num_qubits=7)
    results = await device.run([problem.experiments[i].circuit for i in run], shots=None)
    tables = []
    for r in results:
        keys = list(r.probabilities)
        p = np.array([r.probabilities[k] for k in keys])
        tables.append((keys, p / p.sum()))
    weights = np.array([problem.experiments[i].weight for i in run])
    shots = allocate_shots(weights, mean_shots * len(run), minimum=2)  # unequal shots
    rng = np.random.default_rng(1234)
    reps = 300
    estimates, errors = [], []
    for _ in range(reps):
        stats = Stats.empty(problem)
        for i, (keys, p), n in zip(run, tables, shots, strict=True):
            drawn = rng.multinomial(int(n), p)
            counts = {k: int(c) for k, c in zip(keys, drawn, strict=True) if c}
            stats.add(problem, i, CircuitResult(counts=counts, shots=int(n)))
        v, s = reconstruct_expectations(problem, stats)
        estimates.append(v)
        errors.append(s)
    est, err = np.array(estimates), np.array(errors)
    inside = np.abs(est - exact) < 2 * err
    assert 0.91 <= inside.mean() <= 0.985, inside.mean(axis=0)
    # The reported error matches the real scatter (the estimator is unbiased). At a few
    # dozen shots per circuit the plug-in error is a little conservative (it counts the
    # product of two fragments' sampling variances twice), never optimistic.
    ratio = err.mean(axis=0) / est.std(axis=0)
    upper = 1.4 if mean_shots < 100 else 1.15
    assert np.all((ratio > 0.9) & (ratio < upper)), ratio
    bias = np.abs(est.mean(axis=0) - exact) / (est.std(axis=0) / np.sqrt(reps))
    assert np.all(bias < 4), bias


@pytest.mark.slow
async def test_coverage_through_the_fleet() -> None:
    """End to end (two-stage allocation, two devices): repeated runs land within 2 SE about
    95% of the time."""
    circuit = ghz(10)
    observables = ["Z" + "I" * 8 + "Z", "X" * 10, "IIIIZZIIII"]
    exact = exact_values(circuit, observables)
    inside = []
    for seed in range(40):
        fleet = ideal_fleet(6, 6, seed=100 * seed)
        result = await fleet.estimate(circuit, observables, shots=4_000)
        err = np.array(result.std_errors)
        # Z4Z5 is +1 for sure: estimated exactly, with a zero error
        inside.append(np.abs(np.array(result.values) - exact) <= 2 * err + 1e-12)
        await asyncio.sleep(0)
    frac = np.mean(inside)
    assert 0.85 <= frac <= 1.0, frac
