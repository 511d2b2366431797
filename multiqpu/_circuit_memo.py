"""Facts about circuits the library made and never changes (the sub-experiments of a cut
problem), computed once per circuit instead of once per run that touches it.

A sub-experiment is run in the pilot, the main stage and the top-ups, and each run hashes it
(the journal's :func:`~multiqpu._transpile.circuit_key`, the cost model's structure key),
checks it for mid-circuit measurements and, on a remote engine, serializes it. The planner
:func:`freeze` s each circuit it builds (with the key and the :func:`operations` it already
read); :func:`memo` then answers from the circuit's record for as long as the circuit
lives. Circuits that were not frozen (a user's, which may be changed in place between runs)
are computed every time.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["Operation", "freeze", "memo", "operations", "read_operations"]

T = TypeVar("T")

#: One instruction: (name, qubit indices, clbit indices).
Operation = tuple[str, tuple[int, ...], tuple[int, ...]]

_FROZEN: dict[int, tuple[weakref.ref[Any], dict[str, Any]]] = {}
# Re-entrant: a frozen circuit's finalizer (_forget) runs wherever the garbage collector
# does, which may be inside this module's own locked blocks (an allocation there), in the
# same thread: a plain lock deadlocked there (a planning thread, seen in engine.py --quick).
_LOCK = threading.RLock()


def _forget(key: int) -> None:
    with _LOCK:
        found = _FROZEN.get(key)
        # only a dead circuit's record: its id may already hold a new frozen circuit's
        if found is not None and found[0]() is None:
            del _FROZEN[key]


def freeze(circuit: QuantumCircuit, **facts: Any) -> None:
    """Promise that ``circuit`` is never changed again (library-made circuits only), and
    record ``facts`` already known about it (e.g. ``circuit_key=...``)."""
    key = id(circuit)
    with _LOCK:
        found = _FROZEN.get(key)
        if found is not None and found[0]() is circuit:
            found[1].update(facts)
            return
        _FROZEN[key] = (weakref.ref(circuit), dict(facts))
    weakref.finalize(circuit, _forget, key)


def memo(circuit: QuantumCircuit, name: str, compute: Callable[[QuantumCircuit], T]) -> T:
    """``compute(circuit)``, remembered under ``name`` when ``circuit`` is frozen."""
    with _LOCK:
        found = _FROZEN.get(id(circuit))
    if found is None or found[0]() is not circuit:
        return compute(circuit)
    facts = found[1]
    if name in facts:
        value: T = facts[name]
        return value
    value = compute(circuit)
    facts[name] = value  # a race computes it twice, with the same result
    return value


def operations(circuit: QuantumCircuit) -> list[Operation]:
    """(name, qubit indices, clbit indices) of each instruction, read once per frozen
    circuit (the structure key, the critical path and the planner's checks walk them)."""
    return memo(circuit, "operations", read_operations)


def read_operations(circuit: QuantumCircuit) -> list[Operation]:
    """:func:`operations`, read now."""
    qidx = {q: i for i, q in enumerate(circuit.qubits)}
    cidx = {c: i for i, c in enumerate(circuit.clbits)}
    # ``inst.name``, not ``inst.operation.name``: the latter builds a Python gate object
    # for every instruction (most of a walk's cost); same string
    return [
        (inst.name, tuple(map(qidx.__getitem__, inst.qubits)),
         tuple(map(cidx.__getitem__, inst.clbits)))
        for inst in circuit.data
    ]  # fmt: skip
