"""A vendor-neutral noise profile of a device.

Every adapter normalises its vendor's calibration data into :class:`Calibration`:
errors are probabilities in [0, 1], times are seconds, qubits are the device's physical
indices, and edges are ordered pairs as the device defines them. The local simulator can
emulate any profile (``multiqpu.device("local:noisy", calibration=profile)``), and the
scheduler scores placements with :meth:`Calibration.estimated_fidelity`.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["Calibration"]

Edge = tuple[int, int]

# Operations that are free of error on every platform we know (virtual or classical).
_VIRTUAL_OPS = frozenset({"rz", "barrier", "delay", "id", "i", "virtual_rz", "global_phase"})


def _median(values: Iterable[float]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(vals) if vals else None


@dataclass(frozen=True, eq=False)
class Calibration:
    """Noise profile of one device at one time.

    Attributes:
        num_qubits: physical qubits on the device.
        readout_error: per-qubit probability of reading the wrong bit (mean of both directions).
        gate_error_1q: per-qubit error of a typical single-qubit native gate (e.g. ``sx``).
        gate_error_2q: per-edge error of the native two-qubit gate.
        t1, t2: per-qubit relaxation and dephasing times in seconds.
        gate_errors: per-native-gate, per-qubit-tuple errors where the vendor gives them.
        gate_durations: per-native-gate, per-qubit-tuple durations in seconds.
        readout_duration: typical measurement time in seconds.
        prob_meas1_prep0, prob_meas0_prep1: asymmetric readout errors where known.
        timestamp: when the vendor last calibrated (None if unknown).
        source: where the figures come from (``"live"``, ``"snapshot ..."``, ``"model"``).
    """

    num_qubits: int
    readout_error: Mapping[int, float] = field(default_factory=dict)
    gate_error_1q: Mapping[int, float] = field(default_factory=dict)
    gate_error_2q: Mapping[Edge, float] = field(default_factory=dict)
    t1: Mapping[int, float] = field(default_factory=dict)
    t2: Mapping[int, float] = field(default_factory=dict)
    gate_errors: Mapping[str, Mapping[tuple[int, ...], float]] = field(default_factory=dict)
    gate_durations: Mapping[str, Mapping[tuple[int, ...], float]] = field(default_factory=dict)
    readout_duration: float | None = None
    prob_meas1_prep0: Mapping[int, float] = field(default_factory=dict)
    prob_meas0_prep1: Mapping[int, float] = field(default_factory=dict)
    timestamp: datetime | None = None
    source: str = "unknown"

    # ------------------------------------------------------------------ constructors
    @classmethod
    def ideal(cls, num_qubits: int) -> Calibration:
        """A noiseless profile (every error zero)."""
        return cls(num_qubits=num_qubits, source="ideal")

    @classmethod
    def uniform(
        cls,
        num_qubits: int,
        *,
        readout_error: float = 0.0,
        gate_error_1q: float = 0.0,
        gate_error_2q: float = 0.0,
        t1: float | None = None,
        t2: float | None = None,
        edges: Iterable[Edge] | None = None,
        duration_1q: float | None = None,
        duration_2q: float | None = None,
        readout_duration: float | None = None,
        source: str = "model",
    ) -> Calibration:
        """The same figures on every qubit and edge (all-to-all when ``edges`` is None)."""
        qubits = range(num_qubits)
        if edges is None:
            edge_list: list[Edge] = [(a, b) for a in qubits for b in qubits if a != b]
        else:
            edge_list = [(int(a), int(b)) for a, b in edges]
        durations: dict[str, dict[tuple[int, ...], float]] = {}
        if duration_1q is not None:
            durations["1q"] = {(q,): duration_1q for q in qubits}
        if duration_2q is not None:
            durations["2q"] = {e: duration_2q for e in edge_list}
        return cls(
            num_qubits=num_qubits,
            readout_error=dict.fromkeys(qubits, readout_error),
            gate_error_1q=dict.fromkeys(qubits, gate_error_1q),
            gate_error_2q=dict.fromkeys(edge_list, gate_error_2q),
            t1={q: t1 for q in qubits} if t1 is not None else {},
            t2={q: t2 for q in qubits} if t2 is not None else {},
            gate_durations=durations,
            readout_duration=readout_duration,
            source=source,
        )

    # ------------------------------------------------------------------ summaries
    def median_readout_error(self) -> float | None:
        return _median(self.readout_error.values())

    def median_1q_error(self) -> float | None:
        return _median(self.gate_error_1q.values())

    def median_2q_error(self) -> float | None:
        return _median(self.gate_error_2q.values())

    def median_t1(self) -> float | None:
        return _median(self.t1.values())

    def median_t2(self) -> float | None:
        return _median(self.t2.values())

    def is_ideal(self) -> bool:
        return not any(
            v > 0
            for table in (self.readout_error, self.gate_error_1q, self.gate_error_2q)
            for v in table.values()
        )

    # ------------------------------------------------------------------ per-operation lookups
    def error(self, op: str, qubits: tuple[int, ...]) -> float:
        """Error of one operation on physical ``qubits`` (0 for virtual ops)."""
        if op in _VIRTUAL_OPS:
            return 0.0
        if op == "measure":
            return self.readout_error.get(qubits[0], 0.0)
        table = self.gate_errors.get(op)
        if table is not None:
            value = table.get(qubits)
            if value is None and len(qubits) == 2:
                value = table.get((qubits[1], qubits[0]))
            if value is not None:
                return value
        if len(qubits) == 1:
            return self.gate_error_1q.get(qubits[0], 0.0)
        if len(qubits) == 2:
            e = self.gate_error_2q.get((qubits[0], qubits[1]))
            if e is None:
                e = self.gate_error_2q.get((qubits[1], qubits[0]))
            return e if e is not None else (self.median_2q_error() or 0.0)
        return 0.0

    def duration(self, op: str, qubits: tuple[int, ...]) -> float | None:
        """Duration of one operation in seconds, if known."""
        if op == "measure" and self.readout_duration is not None:
            return self.readout_duration
        table = self.gate_durations.get(op)
        if table is not None:
            d = table.get(qubits)
            if d is not None:
                return d
        generic = self.gate_durations.get("1q" if len(qubits) == 1 else "2q")
        if generic is not None:
            return generic.get(qubits)
        return None

    def estimated_fidelity(self, circuit: QuantumCircuit) -> float:
        """Product of (1 - error) over the operations of a circuit already mapped to
        physical qubits (an ISA circuit). Qubit ``i`` of the circuit is physical qubit ``i``."""
        log_f = 0.0
        index = {q: i for i, q in enumerate(circuit.qubits)}
        for inst in circuit.data:
            op = inst.name  # not inst.operation.name: that builds a gate object each time
            if op in _VIRTUAL_OPS:
                continue
            qubits = tuple(index[q] for q in inst.qubits)
            err = self.error(op, qubits)
            if err >= 1.0:
                return 0.0
            log_f += math.log1p(-err)
        return math.exp(log_f)

    def subset(self, qubits: Iterable[int]) -> Calibration:
        """The profile of a few physical qubits, renumbered 0..k-1 in the given order."""
        order = list(qubits)
        index = {q: i for i, q in enumerate(order)}

        def remap_q(table: Mapping[int, float]) -> dict[int, float]:
            return {index[q]: v for q, v in table.items() if q in index}

        def remap_t(table: Mapping[tuple[int, ...], float]) -> dict[tuple[int, ...], float]:
            return {
                tuple(index[q] for q in k): v
                for k, v in table.items()
                if all(q in index for q in k)
            }

        return Calibration(
            num_qubits=len(order),
            readout_error=remap_q(self.readout_error),
            gate_error_1q=remap_q(self.gate_error_1q),
            gate_error_2q={
                (index[a], index[b]): v
                for (a, b), v in self.gate_error_2q.items()
                if a in index and b in index
            },
            t1=remap_q(self.t1),
            t2=remap_q(self.t2),
            gate_errors={op: remap_t(t) for op, t in self.gate_errors.items()},
            gate_durations={op: remap_t(t) for op, t in self.gate_durations.items()},
            readout_duration=self.readout_duration,
            prob_meas1_prep0=remap_q(self.prob_meas1_prep0),
            prob_meas0_prep1=remap_q(self.prob_meas0_prep1),
            timestamp=self.timestamp,
            source=self.source,
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuple keys become ``"a,b"`` strings)."""

        def keys(table: Mapping[Any, float]) -> dict[str, float]:
            return {
                ",".join(map(str, k)) if isinstance(k, tuple) else str(k): float(v)
                for k, v in table.items()
            }

        return {
            "num_qubits": self.num_qubits,
            "readout_error": keys(self.readout_error),
            "gate_error_1q": keys(self.gate_error_1q),
            "gate_error_2q": keys(self.gate_error_2q),
            "t1": keys(self.t1),
            "t2": keys(self.t2),
            "gate_errors": {op: keys(t) for op, t in self.gate_errors.items()},
            "gate_durations": {op: keys(t) for op, t in self.gate_durations.items()},
            "readout_duration": self.readout_duration,
            "prob_meas1_prep0": keys(self.prob_meas1_prep0),
            "prob_meas0_prep1": keys(self.prob_meas0_prep1),
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`."""

        def q(table: Mapping[str, float] | None) -> dict[int, float]:
            return {int(k): float(v) for k, v in (table or {}).items()}

        def t(table: Mapping[str, float] | None) -> dict[tuple[int, ...], float]:
            return {
                tuple(int(x) for x in str(k).split(",")): float(v) for k, v in (table or {}).items()
            }

        ts = data.get("timestamp")
        return cls(
            num_qubits=int(data["num_qubits"]),
            readout_error=q(data.get("readout_error")),
            gate_error_1q=q(data.get("gate_error_1q")),
            gate_error_2q={(k[0], k[1]): v for k, v in t(data.get("gate_error_2q")).items()},
            t1=q(data.get("t1")),
            t2=q(data.get("t2")),
            gate_errors={op: t(v) for op, v in (data.get("gate_errors") or {}).items()},
            gate_durations={op: t(v) for op, v in (data.get("gate_durations") or {}).items()},
            readout_duration=data.get("readout_duration"),
            prob_meas1_prep0=q(data.get("prob_meas1_prep0")),
            prob_meas0_prep1=q(data.get("prob_meas0_prep1")),
            timestamp=datetime.fromisoformat(ts) if ts else None,
            source=str(data.get("source", "unknown")),
        )

    def fingerprint(self) -> str:
        """A short content hash, stable across processes (for caches keyed by calibration)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
