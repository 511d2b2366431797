"""How the journal turns circuits, results and options into bytes and JSON (and back).

Circuits are stored as QPY (``qiskit.qpy``), so a resumed run rebuilds exactly the circuits it
was given, compressed with zlib (level 1: QPY of real workloads shrinks 4-5x for about 10 us a
circuit; journals written before compression hold raw QPY, which still reads, by its ``QISKIT``
magic). Results and options are JSON. Anything that JSON cannot hold is made JSON-safe first:
tuples and sets become arrays, numpy scalars and arrays become numbers and lists, enums their
values, dataclasses dicts, and anything else its ``str()``. Arrays in result metadata come back
as tuples (``CircuitResult`` is frozen; ``physical_qubits`` is a tuple).
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import math
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from multiqpu.device import CircuitResult

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = [
    "circuit_from_qpy",
    "circuit_to_qpy",
    "dumps",
    "jsonable",
    "loads",
    "result_from_json",
    "result_to_json",
]


def jsonable(obj: Any) -> Any:
    """A JSON-safe copy of ``obj`` (see the module docstring for the rules)."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, set | frozenset):
        items = [jsonable(v) for v in obj]
        try:
            return sorted(items)
        except TypeError:
            return items
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).hex()
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars, without importing numpy
    if callable(tolist):
        try:
            return jsonable(tolist())
        except Exception:  # pragma: no cover - a foreign object with an odd tolist()
            pass
    return str(obj)


def dumps(obj: Any) -> str:
    """Compact JSON of :func:`jsonable` ``(obj)``; NaN and infinities are kept (Python's JSON)."""
    return json.dumps(jsonable(obj), separators=(",", ":"), sort_keys=True)


def loads(text: str) -> Any:
    return json.loads(text)


def _tuples(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_tuples(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _tuples(v) for k, v in obj.items()}
    return obj


def result_to_json(result: CircuitResult) -> str:
    """One circuit's result as JSON: counts, shots, probabilities, metadata."""
    probabilities = result.probabilities
    data = {
        "counts": {str(k): int(v) for k, v in result.counts.items()},
        "shots": None if result.shots is None else int(result.shots),
        "probabilities": (
            None if probabilities is None else {str(k): float(v) for k, v in probabilities.items()}
        ),
        "metadata": jsonable(result.metadata),
    }
    return json.dumps(data, separators=(",", ":"))


def result_from_json(text: str) -> CircuitResult:
    data = json.loads(text)
    probabilities = data.get("probabilities")
    return CircuitResult(
        counts={str(k): int(v) for k, v in data["counts"].items()},
        shots=data.get("shots"),
        probabilities=(
            None if probabilities is None else {str(k): float(v) for k, v in probabilities.items()}
        ),
        metadata=_tuples(data.get("metadata") or {}),
    )


def circuit_to_qpy(circuit: QuantumCircuit) -> bytes:
    from multiqpu._circuit_memo import memo

    return memo(circuit, "qpy", _to_qpy)  # a sub-experiment is serialized once


def _to_qpy(circuit: QuantumCircuit) -> bytes:
    from qiskit import qpy

    buffer = io.BytesIO()
    qpy.dump(circuit, buffer)
    return zlib.compress(buffer.getvalue(), 1)


def circuit_from_qpy(blob: bytes) -> QuantumCircuit:
    """The circuit of a stored blob: zlib-compressed QPY, or raw QPY from older journals."""
    from qiskit import qpy

    raw = blob if blob[:6] == _QPY_MAGIC else zlib.decompress(blob)
    (circuit,) = qpy.load(io.BytesIO(raw))
    return circuit


_QPY_MAGIC = b"QISKIT"


def finite_or_none(value: float | None) -> float | None:
    """A float for a REAL column (None for missing or NaN)."""
    if value is None or math.isnan(value):
        return None
    return float(value)
