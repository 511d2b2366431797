"""IBM calibration data -> :class:`multiqpu.Calibration`.

Two readers feed one normaliser, so the offline and the live figures cannot drift apart:

* :func:`raw_from_snapshot` reads a fake backend's ``props_<name>.json`` as plain JSON (no
  qiskit-ibm-runtime import; units converted to seconds the way ``BackendProperties`` does);
* :func:`raw_from_target` reads a Qiskit ``Target`` (a real backend's ``backend.target``, or a
  fake backend's), plus the asymmetric readout figures a Target does not carry;
* :func:`normalise` turns either into a :class:`~multiqpu.Calibration`.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from multiqpu.provider_api import Calibration, DeviceTarget

if TYPE_CHECKING:
    from qiskit.transpiler import Target

__all__ = [
    "RawCalibration",
    "calibration_from_backend",
    "calibration_from_snapshot",
    "device_target_from_conf",
    "device_target_from_qiskit",
    "normalise",
    "raw_from_snapshot",
    "raw_from_target",
]

Qubits = tuple[int, ...]

# SI prefixes as qiskit.utils.units.apply_prefix applies them (divide for negative powers,
# so the floats agree bit for bit with BackendProperties / Target values).
_PREFIX = {"f": -15, "p": -12, "n": -9, "u": -6, "µ": -6, "μ": -6, "m": -3, "k": 3, "M": 6, "G": 9}
# Typical single-pulse 1q gate and native 2q gates, most preferred first.
_ONE_Q_PREFERENCE = ("sx", "u2", "x", "u3", "rx")
_TWO_Q_NATIVE = ("ecr", "cz", "cx")
# Instructions whose figures are not gate errors.
_NOT_GATES = frozenset({"measure", "delay", "barrier", "if_else", "while_loop", "for_loop",
                        "switch_case", "box"})  # fmt: skip


def si(value: float, unit: str | None) -> float:
    """``value`` in ``unit`` (``"us"``, ``"ns"``, ``"GHz"``, ``""``) as a plain SI number."""
    if not unit or len(unit) == 1:
        return float(value)
    power = _PREFIX.get(unit[0])
    if power is None:
        raise ValueError(f"unknown unit {unit!r} in IBM calibration data")
    return value / 10**-power if power < 0 else value * 10**power


@dataclass
class RawCalibration:
    """Vendor figures in SI units, before choosing what the summary fields mean."""

    num_qubits: int
    basis_gates: Sequence[str]
    # per qubit: t1, t2, readout_error, prob_meas1_prep0, prob_meas0_prep1, readout_length
    qubits: dict[int, dict[str, float]] = field(default_factory=dict)
    # per gate name, per qubit tuple: (error, duration); either may be None
    gates: dict[str, dict[Qubits, tuple[float | None, float | None]]] = field(default_factory=dict)


# ---------------------------------------------------------------------------- readers
def raw_from_snapshot(conf: Mapping[str, Any], props: Mapping[str, Any]) -> RawCalibration:
    """Parse fake-backend JSON (``conf_*.json``, ``props_*.json``) the way qiskit-ibm-runtime
    reads it into a Target: entries marked ``operational: 0`` are dropped (faulty qubits and
    gates), as are gates the configuration does not offer."""
    raw = RawCalibration(num_qubits=int(conf["n_qubits"]), basis_gates=list(conf["basis_gates"]))
    # As qiskit-ibm-runtime builds a Target: only instructions the configuration offers
    # (snapshots also calibrate fractional rx/rzz that the backend does not expose), and
    # measurement figures from the qubit entries.
    offered = set(conf["basis_gates"]) | set(conf.get("supported_instructions") or ())
    offered.discard("measure")
    for index, entries in enumerate(props.get("qubits", [])):
        values = {e["name"]: si(e["value"], e.get("unit")) for e in entries if "value" in e}
        if values.get("operational", 1.0) == 0:
            continue
        raw.qubits[index] = {
            ("t1" if k == "T1" else "t2" if k == "T2" else k): v for k, v in values.items()
        }
    for gate in props.get("gates", []):
        params = {p["name"]: si(p["value"], p.get("unit")) for p in gate["parameters"]}
        if params.get("operational", 1.0) == 0:
            continue
        qubits = tuple(int(q) for q in gate["qubits"])
        if gate["gate"] not in offered or any(q not in raw.qubits for q in qubits):
            continue
        raw.gates.setdefault(gate["gate"], {})[qubits] = (
            params.get("gate_error"),
            params.get("gate_length"),
        )
    return raw


def raw_from_target(
    target: Target,
    *,
    readout_asymmetry: Mapping[int, tuple[float, float]] | None = None,
) -> RawCalibration:
    """Read a Qiskit ``Target``. ``readout_asymmetry`` maps qubit -> (prob_meas1_prep0,
    prob_meas0_prep1) where known (``backend.properties()``; a Target does not hold them)."""
    n = target.num_qubits or 0
    names = list(target.operation_names)
    raw = RawCalibration(num_qubits=n, basis_gates=names)
    measure = target.get("measure") or {}
    props = target.qubit_properties or []
    for q in range(n):
        values: dict[str, float] = {}
        qp = props[q] if q < len(props) else None
        if qp is not None:
            if qp.t1 is not None:
                values["t1"] = float(qp.t1)
            if qp.t2 is not None:
                values["t2"] = float(qp.t2)
        m = measure.get((q,)) if measure else None
        if m is not None:
            if m.error is not None:
                values["readout_error"] = float(m.error)
            if m.duration is not None:
                values["readout_length"] = float(m.duration)
        if readout_asymmetry and q in readout_asymmetry:
            values["prob_meas1_prep0"], values["prob_meas0_prep1"] = readout_asymmetry[q]
        if values or m is not None:
            raw.qubits[q] = values
    for name in names:
        if name in _NOT_GATES:
            continue
        qmap = target[name]
        if qmap is None:
            continue
        table: dict[Qubits, tuple[float | None, float | None]] = {}
        for qargs, p in qmap.items():
            if qargs is None or p is None:
                continue
            table[tuple(qargs)] = (p.error, p.duration)
        if table:
            raw.gates[name] = table
    return raw


# ---------------------------------------------------------------------------- normaliser
def _pick(candidates: Iterable[str], tables: Mapping[str, Mapping[Qubits, Any]]) -> str | None:
    for name in candidates:
        if tables.get(name):
            return name
    return None


def _two_qubit_gate(raw: RawCalibration) -> str | None:
    """The native entangling gate: among ecr/cz/cx the one calibrated on most edges."""
    best: str | None = None
    best_count = 0
    for name in _TWO_Q_NATIVE:
        count = sum(1 for e, _ in raw.gates.get(name, {}).values() if e is not None)
        if count > best_count:
            best, best_count = name, count
    return best


def normalise(raw: RawCalibration, *, timestamp: datetime | None, source: str) -> Calibration:
    """The vendor-neutral profile: errors as probabilities, times in seconds."""
    gate_errors: dict[str, dict[Qubits, float]] = {}
    gate_durations: dict[str, dict[Qubits, float]] = {}
    for name, table in raw.gates.items():
        errs = {qs: float(e) for qs, (e, _) in table.items() if e is not None}
        durs = {qs: float(d) for qs, (_, d) in table.items() if d is not None}
        if errs:
            gate_errors[name] = errs
        if durs:
            gate_durations[name] = durs

    one_q = _pick(_ONE_Q_PREFERENCE, gate_errors)
    two_q = _two_qubit_gate(raw)
    gate_error_1q = {qs[0]: e for qs, e in gate_errors.get(one_q or "", {}).items()}
    gate_error_2q = {(qs[0], qs[1]): e for qs, e in gate_errors.get(two_q or "", {}).items()}

    def per_qubit(key: str) -> dict[int, float]:
        return {q: v[key] for q, v in sorted(raw.qubits.items()) if v.get(key) is not None}

    readout_lengths = per_qubit("readout_length")
    if readout_lengths:
        gate_durations["measure"] = {(q,): d for q, d in readout_lengths.items()}
    return Calibration(
        num_qubits=raw.num_qubits,
        readout_error=per_qubit("readout_error"),
        gate_error_1q=gate_error_1q,
        gate_error_2q=gate_error_2q,
        t1=per_qubit("t1"),
        t2=per_qubit("t2"),
        gate_errors=gate_errors,
        gate_durations=gate_durations,
        readout_duration=statistics.median(readout_lengths.values()) if readout_lengths else None,
        prob_meas1_prep0=per_qubit("prob_meas1_prep0"),
        prob_meas0_prep1=per_qubit("prob_meas0_prep1"),
        timestamp=timestamp,
        source=source,
    )


def parse_timestamp(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def calibration_from_snapshot(conf: Mapping[str, Any], props: Mapping[str, Any]) -> Calibration:
    """A fake backend's snapshot as a profile; source ``"snapshot <date>"``."""
    ts = parse_timestamp(props.get("last_update_date"))
    source = f"snapshot {ts.date().isoformat()}" if ts else "snapshot"
    return normalise(raw_from_snapshot(conf, props), timestamp=ts, source=source)


def calibration_from_backend(backend: Any, *, source: str = "live") -> Calibration:
    """A BackendV2's ``target`` plus the asymmetric readout figures and the calibration time
    from ``backend.properties()`` (real IBM backends and fake ones alike). Blocking."""
    target = backend.target
    props = backend.properties() if hasattr(backend, "properties") else None
    asym: dict[int, tuple[float, float]] = {}
    timestamp = None
    if props is not None:
        timestamp = getattr(props, "last_update_date", None)
        for q in range(target.num_qubits or 0):
            try:
                qp = props.qubit_property(q)
                asym[q] = (qp["prob_meas1_prep0"][0], qp["prob_meas0_prep1"][0])
            except Exception:  # qubit without these figures (BackendPropertyError, KeyError)
                continue
    raw = raw_from_target(target, readout_asymmetry=asym)
    return normalise(raw, timestamp=parse_timestamp(timestamp), source=source)


# ---------------------------------------------------------------------------- targets
def device_target_from_conf(conf: Mapping[str, Any]) -> DeviceTarget:
    """Native gates (sorted) and connectivity from a backend configuration JSON."""
    n = int(conf["n_qubits"])
    cmap = conf.get("coupling_map")
    if cmap:
        edges: tuple[tuple[int, int], ...] | None = tuple(
            sorted({(int(a), int(b)) for a, b in cmap})
        )
    else:
        edges = None  # all-to-all (or a single qubit)
    basis = tuple(sorted(g for g in conf["basis_gates"] if g != "reset"))
    return DeviceTarget(num_qubits=n, basis_gates=basis, coupling_map=edges)


def device_target_from_qiskit(target: Target) -> DeviceTarget:
    """Native gates and connectivity of a Qiskit ``Target`` (a real backend's)."""
    n = target.num_qubits or 0
    basis = tuple(
        sorted(
            name
            for name in target.operation_names
            if name not in _NOT_GATES and name not in ("reset", "measure")
        )
    )
    cmap = target.build_coupling_map()
    edges = tuple(sorted((int(a), int(b)) for a, b in cmap.get_edges())) if cmap else None
    return DeviceTarget(num_qubits=n, basis_gates=basis, coupling_map=edges)
