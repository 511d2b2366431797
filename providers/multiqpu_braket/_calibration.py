"""Braket device-properties documents -> :class:`multiqpu.Calibration` and device shape.

Plain JSON parsing, no braket import: the offline emulator's profile (and ``multiqpu
devices``) must load without the 3-4 s braket import. The same normaliser reads the
``deviceCapabilities`` string of a live ``GetDevice`` response.

Mapping (errors are average gate infidelities, as IBM's are):

* ``standardized.oneQubitProperties[label]``: ``RANDOMIZED_BENCHMARKING`` (else
  ``SIMULTANEOUS_RANDOMIZED_BENCHMARKING``) fidelity F -> 1q error ``1 - F`` on every native
  one-qubit gate; ``READOUT`` fidelity -> readout error; ``T1``/``T2`` -> seconds.
* ``standardized.twoQubitProperties["a-b"]``: each gate's fidelity F -> ``1 - F`` for that
  gate on that pair (``gate_errors``); the native gate's error is ``gate_error_2q``.
* standardized v3 (device-level figures, AQT) and IonQ's ``provider.fidelity``/``timing``
  apply one figure to every qubit and pair, as Braket's own emulator does.

Qubit labels (Garnet's are 1..20) become physical indices 0..n-1 in label order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from multiqpu.provider_api import Calibration, ConfigError
from multiqpu_braket._translate import BRAKET_TO_QISKIT, qiskit_basis

__all__ = ["DeviceProfile", "parse_properties"]

_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_ONE_Q_TYPES = ("RANDOMIZED_BENCHMARKING", "SIMULTANEOUS_RANDOMIZED_BENCHMARKING")
_SYMMETRIC_2Q = frozenset({"cz", "iswap", "xy", "cphaseshift", "ms", "swap", "zz", "xx", "yy"})
_ONE_QUBIT_NATIVE = frozenset({"prx", "rx", "ry", "rz", "gpi", "gpi2", "x", "sx", "v", "h"})


@dataclass(frozen=True)
class DeviceProfile:
    """What multiqpu needs from a Braket device-properties document."""

    labels: tuple[int, ...]
    native_gates: tuple[str, ...]
    supported_ops: tuple[str, ...]
    edges: tuple[tuple[int, int], ...] | None
    calibration: Calibration
    physical_qubits: bool
    max_shots: int | None
    execution_windows: tuple[Mapping[str, Any], ...]

    @property
    def num_qubits(self) -> int:
        return len(self.labels)

    @property
    def basis_gates(self) -> tuple[str, ...]:
        """Qiskit names to transpile to: the natives when all have a Qiskit equivalent,
        else every supported operation we can translate."""
        native = [BRAKET_TO_QISKIT.get(g.lower()) for g in self.native_gates]
        if native and all(native):
            return tuple(dict.fromkeys(n for n in native if n))
        return qiskit_basis(self.supported_ops)


def _seconds(entry: Mapping[str, Any] | None) -> float | None:
    if not entry or entry.get("value") is None:
        return None
    unit = str(entry.get("unit", "s")).strip()
    factor = _UNITS.get(unit) or _UNITS.get(unit.lower())
    return float(entry["value"]) * factor if factor else None


def _timestamp(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _one_qubit(fidelities: Sequence[Mapping[str, Any]]) -> tuple[float | None, float | None]:
    by_type = {str(f["fidelityType"]["name"]).upper(): float(f["fidelity"]) for f in fidelities}
    gate = next((by_type[t] for t in _ONE_Q_TYPES if t in by_type), None)
    readout = next((v for k, v in by_type.items() if "READOUT" in k), None)
    return (
        None if gate is None else 1.0 - gate,
        None if readout is None else 1.0 - readout,
    )


def _labels(doc: Mapping[str, Any], n: int, std: Mapping[str, Any]) -> tuple[int, ...]:
    known: set[int] = {int(k) for k in (std.get("oneQubitProperties") or {})}
    graph = ((doc.get("paradigm") or {}).get("connectivity") or {}).get("connectivityGraph") or {}
    for node, nbrs in graph.items():
        known.add(int(node))
        known.update(int(x) for x in nbrs)
    if not known or max(known) < n:
        return tuple(range(n))
    return tuple(sorted(known))


def parse_properties(document: str | Mapping[str, Any], *, source: str) -> DeviceProfile:
    """Normalise a Braket device-capabilities document (JSON text or parsed dict)."""
    doc: Mapping[str, Any] = json.loads(document) if isinstance(document, str) else document
    paradigm = doc.get("paradigm") or {}
    if "qubitCount" not in paradigm:
        raise ConfigError(f"device properties ({source}) are not a gate-model document")
    n = int(paradigm["qubitCount"])
    std: Mapping[str, Any] = doc.get("standardized") or {}
    labels = _labels(doc, n, std)
    index = {label: i for i, label in enumerate(labels)}
    natives = tuple(str(g).lower() for g in paradigm.get("nativeGateSet") or ())
    action = (doc.get("action") or {}).get("braket.ir.openqasm.program") or {}
    supported = tuple(str(g) for g in action.get("supportedOperations") or ())

    ro: dict[int, float] = {}
    e1: dict[int, float] = {}
    t1: dict[int, float] = {}
    t2: dict[int, float] = {}
    e2: dict[tuple[int, int], float] = {}
    per_gate: dict[str, dict[tuple[int, ...], float]] = {}
    one_q_natives = [
        BRAKET_TO_QISKIT[g] for g in natives if g in _ONE_QUBIT_NATIVE and g in BRAKET_TO_QISKIT
    ]
    two_q_natives = [g for g in natives if g not in _ONE_QUBIT_NATIVE]

    def set_qubit(q: int, props: Mapping[str, Any], fids: Sequence[Mapping[str, Any]]) -> None:
        g, r = _one_qubit(fids)
        if g is not None:
            e1[q] = g
            for name in one_q_natives:
                per_gate.setdefault(name, {})[(q,)] = g
        if r is not None:
            ro[q] = r
        for key, table in (("T1", t1), ("T2", t2)):
            value = _seconds(props.get(key))
            if value is not None:
                table[q] = value

    def set_pair(pair: tuple[int, int], fids: Sequence[Mapping[str, Any]]) -> None:
        errors: dict[str, float] = {}
        for f in fids:
            gate = str(f.get("gateName", "")).lower()
            errors[gate] = 1.0 - float(f["fidelity"])
            qname = BRAKET_TO_QISKIT.get(gate)
            if qname:
                per_gate.setdefault(qname, {})[pair] = errors[gate]
        if errors:
            native = [errors[g] for g in two_q_natives if g in errors]
            e2[pair] = native[0] if native else min(errors.values())

    device_readout = [  # v3: one device-level readout figure
        {"fidelityType": {"name": "READOUT"}, "fidelity": f["fidelity"]}
        for f in (std.get("readoutFidelity") or [])[:1]
    ]
    device_t = {k: std[k] for k in ("T1", "T2") if std.get(k)}
    for label, props in (std.get("oneQubitProperties") or {}).items():
        q = index.get(int(label))
        if q is not None:
            fids = list(props.get("oneQubitFidelity") or []) + device_readout
            set_qubit(q, {**device_t, **props}, fids)
    for key, props in (std.get("twoQubitProperties") or {}).items():
        a, b = (int(x) for x in str(key).split("-"))
        if a in index and b in index:
            set_pair((index[a], index[b]), list(props.get("twoQubitGateFidelity") or []))
    connectivity = paradigm.get("connectivity")
    fully = connectivity is None or bool(connectivity.get("fullyConnected"))
    if std.get("twoQubitGateFidelity") and two_q_natives:  # v3: one device-level figure
        fid = [
            {"gateName": two_q_natives[0], "fidelity": std["twoQubitGateFidelity"][0]["fidelity"]}
        ]
        for a in range(n):
            for b in range(a + 1, n):
                set_pair((a, b), fid)
    _ionq(doc, n, natives, set_qubit, set_pair)

    edges = None if fully else _edges(paradigm, index, e2, two_q_natives)
    service = doc.get("service") or {}
    shots_range = service.get("shotsRange")
    calibration = Calibration(
        num_qubits=n if len(labels) == n else len(labels),
        readout_error=ro,
        gate_error_1q=e1,
        gate_error_2q=e2,
        t1=t1,
        t2=t2,
        gate_errors=per_gate,
        gate_durations=_durations(doc, std, n),
        readout_duration=_seconds(std.get("readoutDuration"))
        or _float((doc.get("provider") or {}).get("timing", {}).get("readout")),
        timestamp=_timestamp(service.get("updatedAt")),
        source=source,
    )
    return DeviceProfile(
        labels=labels,
        native_gates=natives,
        supported_ops=supported,
        edges=edges,
        calibration=calibration,
        physical_qubits=bool(action.get("supportPhysicalQubits")),
        max_shots=int(shots_range[1]) if shots_range else None,
        execution_windows=tuple(service.get("executionWindows") or ()),
    )


def _edges(
    paradigm: Mapping[str, Any],
    index: Mapping[int, int],
    e2: Mapping[tuple[int, int], float],
    two_q_natives: list[str],
) -> tuple[tuple[int, int], ...]:
    graph = (paradigm.get("connectivity") or {}).get("connectivityGraph") or {}
    pairs: set[tuple[int, int]] = set()
    for node, nbrs in graph.items():
        for nb in nbrs:
            if int(node) in index and int(nb) in index:
                pairs.add((index[int(node)], index[int(nb)]))
    pairs.update(p for p in e2 if not graph)
    if all(g in _SYMMETRIC_2Q for g in two_q_natives):
        pairs |= {(b, a) for a, b in pairs}
    return tuple(sorted(pairs))


def _ionq(
    doc: Mapping[str, Any], n: int, natives: tuple[str, ...], set_qubit: Any, set_pair: Any
) -> None:
    """IonQ documents carry mean figures under ``provider`` instead of ``standardized``."""
    provider = doc.get("provider") or {}
    fid = provider.get("fidelity") or {}
    timing = provider.get("timing") or {}
    if not fid:
        return
    f1 = (fid.get("1Q") or {}).get("mean")
    f2 = (fid.get("2Q") or {}).get("mean")
    spam = (fid.get("spam") or {}).get("mean")
    one = []
    if f1 is not None:
        one.append({"fidelityType": {"name": "RANDOMIZED_BENCHMARKING"}, "fidelity": f1})
    if spam is not None:
        one.append({"fidelityType": {"name": "READOUT"}, "fidelity": spam})
    props = {
        k: {"value": timing[k], "unit": "s"} for k in ("T1", "T2") if timing.get(k) is not None
    }
    for q in range(n):
        set_qubit(q, props, one)
    if f2 is not None:
        gate = next((g for g in natives if g not in _ONE_QUBIT_NATIVE), "ms")
        for a in range(n):
            for b in range(a + 1, n):
                set_pair((a, b), [{"gateName": gate, "fidelity": f2}])


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _durations(
    doc: Mapping[str, Any], std: Mapping[str, Any], n: int
) -> dict[str, dict[tuple[int, ...], float]]:
    """Typical gate durations: IonQ ``provider.timing`` or standardized v3 fields."""
    timing = (doc.get("provider") or {}).get("timing") or {}
    d1 = _seconds(std.get("singleQubitGateDuration")) or _float(timing.get("1Q"))
    d2 = _seconds(std.get("twoQubitGateDuration")) or _float(timing.get("2Q"))
    out: dict[str, dict[tuple[int, ...], float]] = {}
    if d1 is not None:
        out["1q"] = {(q,): d1 for q in range(n)}
    if d2 is not None:
        out["2q"] = {(a, b): d2 for a in range(n) for b in range(n) if a != b}
    return out
