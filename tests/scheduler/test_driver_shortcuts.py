"""The driver's shortcuts in the placement core decide exactly what the slow paths would:
mask groups, the fluid plan's lower bound and skipped programs, the structure key."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import efficient_su2

from multiqpu.scheduler import _bounds
from multiqpu.scheduler._bounds import fluid_floor, fluid_plan
from multiqpu.scheduler._costmodel import _structure_key
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
