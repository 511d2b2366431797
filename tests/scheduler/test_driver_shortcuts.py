"""The driver's shortcuts in the placement core decide exactly what the slow paths would:
mask groups, the fluid plan's lower bound and skipped programs, the structure key, the
plan of a fleet with nothing to trade, water-filling on Python floats, the journal key and
instruction list read in one walk, an ideal calibration's fidelity."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import efficient_su2

import multiqpu
from multiqpu._circuit_memo import read_operations
from multiqpu._transpile import circuit_key_and_operations
from multiqpu.scheduler import (
    SimCircuit,
    SimDevice,
    Workload,
    _bounds,
    _budget,
    _waterfill,
    simulate,
)
from multiqpu.scheduler._bounds import fluid_floor, fluid_plan
from multiqpu.scheduler._costmodel import _shape, _structure_key
from multiqpu.scheduler._estimates import row_groups


def _programs(seed: int, n: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    for _ in range(n):
        c, d = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        counts = rng.integers(0, 40, c).astype(float)
        seconds = rng.exponential(float(rng.choice([1e-4, 1e-2, 1.0, 100.0])), (c, d))
        waits = rng.exponential(float(rng.choice([1e-3, 1.0, 50.0])), d)
        if rng.random() < 0.3:
            waits = waits * 0.0
        if rng.random() < 0.2:
            waits[rng.integers(0, d)] = np.inf
        eligible = rng.random((c, d)) < 0.7
        kw = {}
        if rng.random() < 0.5:
            loss = rng.random((c, d)) * (rng.random((c, d)) < 0.5)
            kw = {"loss": loss, "budget": float(rng.random() * counts @ loss.max(axis=1))}
        yield counts, seconds, waits, eligible, kw


def test_row_groups_match_unique() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        rows = rng.random((int(rng.integers(1, 30)), int(rng.integers(1, 70)))) < rng.random()
        rows[rng.integers(0, len(rows), len(rows) // 2)] = rows[0]
        expected = np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)
        assert np.array_equal(row_groups(rows), expected)


def test_fluid_floor_is_a_lower_bound() -> None:
    checked = 0
    for counts, seconds, waits, eligible, _ in _programs(5, 300):
        t, _plan = fluid_plan(counts, seconds, waits, eligible)
        floor = fluid_floor(counts, seconds, waits, eligible)
        if np.isfinite(floor):
            assert floor <= t
            checked += 1
    assert checked > 100


def test_skipped_programs_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = list(_programs(7, 300))
    fast = [fluid_plan(c, s, w, e, **kw) for c, s, w, e, kw in cases]
    monkeypatch.setattr(_bounds, "fluid_floor", lambda *a: -np.inf)  # every program solved
    for (c, s, w, e, kw), (t, plan) in zip(cases, fast, strict=True):
        t_all, plan_all = fluid_plan(c, s, w, e, **kw)
        assert t == t_all
        if plan is None or plan_all is None:
            assert plan is None and plan_all is None
        else:
            assert np.array_equal(plan, plan_all)


def test_structure_key_same_as_by_operation_name() -> None:
    qc = efficient_su2(5, reps=2, entanglement="linear")
    qc = qc.assign_parameters(np.linspace(0, 1, qc.num_parameters))
    qc.barrier()
    qc.measure_all()
    mid = QuantumCircuit(3, 2)
    mid.h(0)
    mid.measure(0, 1)
    mid.cx(0, 2)
    for circuit in (qc, mid):
        h = hashlib.blake2b(digest_size=16)
        qi = {q: i for i, q in enumerate(circuit.qubits)}
        ci = {c: i for i, c in enumerate(circuit.clbits)}
        h.update(f"{circuit.num_qubits},{circuit.num_clbits};".encode())
        for inst in circuit.data:
            qs = ",".join(str(qi[q]) for q in inst.qubits)
            cs = ",".join(str(ci[c]) for c in inst.clbits)
            h.update(f"{inst.operation.name}[{qs}][{cs}];".encode())
        assert _structure_key(circuit) == h.hexdigest()


def test_a_fleet_with_nothing_to_trade_is_planned_as_the_programs_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # identical error figures (no spread): every device is as accurate as the best one
    base = SimDevice("a", num_qubits=20, error_spread=0.0, median_wait_s=60.0, wait_drift=0.2)
    fleet = [base, replace(base, name="b", median_wait_s=300.0),
             replace(base, name="c", median_wait_s=30.0, shot_s=1e-3)]  # fmt: skip
    work = Workload(
        (SimCircuit(4, 10, 30, 8, shots=4000), SimCircuit(6, 20, 40, 6)), (0.5, 0.5), 300
    )
    calls: list[bool] = []
    real = _budget._nothing_to_trade

    def spy(*args):  # type: ignore[no-untyped-def]
        calls.append(real(*args))
        return calls[-1]

    def decisions(seed: int) -> dict[str, object]:  # the run's figures, not the driver's time
        out = simulate(fleet, work, policy="balanced", seed=seed).to_dict()
        return {k: v for k, v in out.items() if k not in ("wall_s", "placements_per_s")}

    monkeypatch.setattr(_budget, "_nothing_to_trade", spy)
    for seed in (0, 1, 2):
        short = decisions(seed)
        monkeypatch.setattr(_budget, "_nothing_to_trade", lambda *a: False)
        slow = decisions(seed)
        monkeypatch.setattr(_budget, "_nothing_to_trade", spy)
        assert short == slow and short["circuits"] == 300
    assert calls and all(calls)


def test_water_filling_on_python_floats_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    cases = []
    for t in range(3000):
        m = int(rng.integers(1, 9))
        if t % 2:  # ties and round numbers
            F = rng.integers(0, 3, m).astype(float)
            x = rng.choice([0.1, 0.5, 1.0, 2.0], m)
        else:
            F, x = rng.exponential(10.0, m), rng.exponential(0.1, m) + 1e-9
        room = rng.integers(0, 40, m).astype(np.int64)
        cases.append((F, x, int(rng.integers(0, 150)), room))
    fast = [(_waterfill.waterfill(F, x, k), _waterfill.capped_waterfill(F, x, k, r))
            for F, x, k, r in cases]  # fmt: skip
    monkeypatch.setattr(_waterfill, "_SMALL", 0)  # numpy throughout
    for (F, x, k, r), ((n, level), capped) in zip(cases, fast, strict=True):
        n_np, level_np = _waterfill.waterfill(F, x, k)
        assert np.array_equal(n, n_np) and level == level_np and n.dtype == n_np.dtype
        assert np.array_equal(capped, _waterfill.capped_waterfill(F, x, k, r))


def test_journal_key_and_instructions_in_one_walk() -> None:
    qc = efficient_su2(4, reps=1, entanglement="linear")
    qc = qc.assign_parameters(np.linspace(0.1, 1, qc.num_parameters))
    qc.measure_all()
    mid = QuantumCircuit(3, 2)
    mid.h(0)
    mid.measure(0, 1)
    mid.cx(0, 2)
    mid.cp(0.25, 2, 1)
    mid.reset(0)
    mid.initialize([0, 1], 1)
    for circuit in (qc, mid):
        h = hashlib.sha256()  # the key as defined: by Python gate objects and find_bit
        h.update(f"{circuit.num_qubits},{circuit.num_clbits};".encode())
        ops = []
        for inst in circuit.data:
            op = inst.operation
            qs = [circuit.find_bit(q).index for q in inst.qubits]
            cs = [circuit.find_bit(c).index for c in inst.clbits]
            params = ",".join(repr(p) for p in op.params)
            h.update(
                f"{op.name}({params})[{','.join(map(str, qs))}][{','.join(map(str, cs))}];".encode()
            )
            ops.append((op.name, tuple(qs), tuple(cs)))
        key, walked = circuit_key_and_operations(circuit)
        assert key == h.hexdigest()[:32] and key == multiqpu._transpile.circuit_key(circuit)
        assert walked == ops == read_operations(circuit)


def test_an_ideal_calibrations_fidelity_is_one_without_a_walk() -> None:
    qc = efficient_su2(4, reps=1, entanglement="linear")
    qc = qc.assign_parameters(np.linspace(0.1, 1, qc.num_parameters))
    qc.measure_all()
    ideal = multiqpu.device("local:ideal", num_qubits=4)
    cal = ideal.calibration()
    shape = _shape(ideal, cal, qc)
    assert not isinstance(shape, str)
    assert shape[0] == cal.estimated_fidelity(ideal.transpile(qc)) == 1.0
