"""Facts about library-made circuits are computed once; a user's circuit, which may change
in place, is hashed afresh every time."""

from __future__ import annotations

import gc

from qiskit import QuantumCircuit

from multiqpu._circuit_memo import _FROZEN, freeze, memo
from multiqpu._journal_codec import circuit_from_qpy, circuit_to_qpy
from multiqpu._transpile import circuit_key


def _bell() -> QuantumCircuit:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


def test_user_circuits_are_hashed_afresh_after_a_change() -> None:
    qc = _bell()
    before = circuit_key(qc)
    qc.x(1)
    assert circuit_key(qc) != before
    assert circuit_from_qpy(circuit_to_qpy(qc)) == qc


def test_frozen_circuits_are_computed_once_and_forgotten_with_them() -> None:
    qc = _bell()
    key = circuit_key(qc)
    freeze(qc)
    calls: list[int] = []

    def count(c: QuantumCircuit) -> int:
        calls.append(1)
        return len(c.data)

    assert memo(qc, "n", count) == memo(qc, "n", count) == 4
    assert len(calls) == 1
    assert circuit_key(qc) == key and circuit_to_qpy(qc) is circuit_to_qpy(qc)
    freeze(qc, circuit_key="given")  # facts already known are recorded
    assert circuit_key(qc) == "given"
    ident = id(qc)
    del qc
    gc.collect()
    assert ident not in _FROZEN


def test_a_finalizer_run_inside_the_memos_lock_does_not_deadlock() -> None:
    # The garbage collector runs a dead frozen circuit's finalizer wherever it collects,
    # e.g. on an allocation inside freeze's locked block, in the same thread.
    import threading

    from multiqpu._circuit_memo import _LOCK

    done: list[bool] = []

    def collect_while_locked() -> None:
        qc = _bell()
        freeze(qc)
        ident = id(qc)
        with _LOCK:
            del qc
            gc.collect()
        done.append(ident not in _FROZEN)

    worker = threading.Thread(target=collect_while_locked, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert done == [True]
