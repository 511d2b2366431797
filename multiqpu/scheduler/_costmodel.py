"""The cost model for real devices: per (circuit class, device) fit, fidelity, time and price.

For each class (one representative circuit) and device: does it fit (qubits, shots, exact
mode, per-task device restrictions); the transpiled circuit (``device.transpile``, cached by
the device; the transpiler picks a noise-aware layout the way mapomatic scores layouts); its
estimated fidelity (``Calibration.estimated_fidelity``: product of gate and readout fidelities
on that layout); its predicted execution time (shots x (critical-path duration from the
calibration's gate durations + repetition delay)); and its price (``device.estimate_cost``).

An unknown price is NaN, never 0: a device whose ``estimate_cost`` raises, returns nothing or
a non-finite number cannot price the circuit, and is not free. ``cheapest`` ranks such devices
after every priced one, ``budget_usd`` does not use them, and the run report names them (see
``_policy``, ``_probing`` and ``_report``).

Estimates are cached across runs by (device, calibration fingerprint, circuit structure,
shots): fragments and shards repeat structures, and a structure ignores parameter values
(layout, gate counts and durations do not depend on them).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from multiqpu.scheduler._tables import ClassTables

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu._circuit_memo import Operation
    from multiqpu.calibration import Calibration
    from multiqpu.device import Device

__all__ = ["Estimate", "Item", "build_tables", "circuit_seconds", "structure_key"]

REPETITION_DELAY_S = 250e-6  # between shots (IBM's default); the learned speed corrects it
SIMULATOR_CIRCUIT_S = 5e-3  # a local simulator's cost per circuit, before learning
_DEFAULT_1Q_S = 50e-9
_DEFAULT_2Q_S = 300e-9
_DEFAULT_MEASURE_S = 1e-6
_CACHE_SIZE = 100_000


@dataclass(frozen=True)
class Item:
    """One circuit to run, normalised: shots (None: exact), allowed device specs, floor."""

    circuit: QuantumCircuit
    shots: int | None
    devices: frozenset[str] | None = None
    fidelity_floor: float | None = None


@dataclass(frozen=True)
class Estimate:
    """The cost model's answer for one (structure, shots, device); ``reason`` when it
    cannot run there; ``price`` NaN when the device cannot price it."""

    fidelity: float = 0.0
    seconds: float = 0.0
    price: float = 0.0
    reason: str | None = None


_cache: OrderedDict[tuple[str, str, str, int | None], Estimate] = OrderedDict()
#: (device spec, calibration fingerprint, structure) -> :func:`_shape`'s answer
_shapes: OrderedDict[tuple[str, str, str], tuple[float, float] | str] = OrderedDict()


def structure_key(circuit: QuantumCircuit) -> str:
    """A hash of a circuit's gates and wiring, ignoring parameter values and names."""
    from multiqpu._circuit_memo import memo

    return memo(circuit, "structure_key", _structure_key)


def _structure_key(circuit: QuantumCircuit) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{circuit.num_qubits},{circuit.num_clbits};".encode())
    fragments = _FRAGMENTS  # one instruction's text, shared by the circuits that hold it
    parts = []
    for op in _operations(circuit):
        text = fragments.get(op)
        if text is None:
            name, qs, cs = op
            text = fragments[op] = f"{name}[{','.join(map(str, qs))}][{','.join(map(str, cs))}];"
        parts.append(text)
    if len(fragments) > _CACHE_SIZE:
        fragments.clear()
    h.update("".join(parts).encode())
    return h.hexdigest()


_FRAGMENTS: dict[Operation, str] = {}


def _operations(circuit: QuantumCircuit) -> list[Operation]:
    from multiqpu._circuit_memo import operations

    return operations(circuit)


def circuit_seconds(isa: QuantumCircuit, calibration: Calibration) -> float:
    """Critical-path duration of a transpiled circuit from the calibration's durations."""
    t = [0.0] * isa.num_qubits
    durations: dict[tuple[str, tuple[int, ...]], float] = {}  # per (op, qubits), this walk
    for name, qs, _ in _operations(isa):
        if name == "barrier" or not qs:
            continue
        dur = durations.get((name, qs))
        if dur is None:
            dur = durations[(name, qs)] = _duration(calibration, name, qs)
        if len(qs) == 1:
            q = qs[0]
            t[q] = t[q] + dur
            continue
        start = max([t[q] for q in qs])
        for q in qs:
            t[q] = start + dur
    return max(t, default=0.0)


def _duration(calibration: Calibration, name: str, qs: tuple[int, ...]) -> float:
    dur = calibration.duration(name, qs)
    if dur is not None:
        return dur
    if name == "rz":
        return 0.0
    if name in ("measure", "reset"):
        return _DEFAULT_MEASURE_S
    return _DEFAULT_1Q_S if len(qs) == 1 else _DEFAULT_2Q_S


def _error_free(cal: Calibration) -> bool:
    """Whether ``cal`` knows no error at all (an ideal simulator's): every operation's error
    is then 0 and :meth:`Calibration.estimated_fidelity` is exactly 1.0."""
    return not (
        cal.readout_error or cal.gate_error_1q or cal.gate_error_2q or any(cal.gate_errors.values())
    )


def _shape(
    device: Device, cal: Calibration, circuit: QuantumCircuit, fingerprint: str | None = None
) -> tuple[float, float] | str:
    """What does not depend on shots: (estimated fidelity, critical-path seconds) of the
    circuit transpiled for ``device``, or why it does not transpile. ``fingerprint``:
    ``cal``'s, to remember the critical path with the transpiled circuit when the library
    made it (devices with the same calibration that run it as it is share it)."""
    try:
        isa = device.transpile(circuit)
    except Exception as exc:  # any transpiler failure means "cannot run here"
        return f"does not transpile for {device.spec}: {exc}"
    fidelity = 1.0 if _error_free(cal) else float(cal.estimated_fidelity(isa))
    if fingerprint is None:
        return fidelity, circuit_seconds(isa, cal)
    from multiqpu._circuit_memo import memo

    seconds = memo(isa, f"circuit_seconds/{fingerprint}", lambda c: circuit_seconds(c, cal))
    return fidelity, seconds


def _estimate(
    device: Device,
    cal: Calibration,
    circuit: QuantumCircuit,
    shots: int | None,
    shape: tuple[float, float] | str | None = None,
) -> Estimate:
    """The estimate for ``shots``; ``shape``: :func:`_shape`'s answer, if known already
    (the same structure with other shots: sub-experiments under a shot allocation)."""
    if circuit.num_qubits > device.num_qubits:
        return Estimate(
            reason=f"needs {circuit.num_qubits} qubits, {device.spec} has {device.num_qubits}"
        )
    if shots is None and not device.exact:
        return Estimate(reason=f"{device.spec} samples (exact results need an ideal simulator)")
    if shots is not None and shots > device.limits.max_shots:
        return Estimate(reason=f"{shots} shots exceed the limit of {device.limits.max_shots}")
    if shape is None:
        shape = _shape(device, cal, circuit)
    if isinstance(shape, str):
        return Estimate(reason=shape)
    fidelity, path_s = shape
    if not device.imitates_qpu:  # a plain simulator: no repetition delay, a per-circuit cost
        seconds = SIMULATOR_CIRCUIT_S + path_s * (shots or 1)
    else:
        seconds = (path_s + REPETITION_DELAY_S) * (shots or 1)
    try:
        price = float(device.estimate_cost([circuit], shots or 1).total_usd)
    except Exception:  # a device that cannot price a circuit: the price is unknown
        price = math.nan
    if not math.isfinite(price):
        price = math.nan
    return Estimate(fidelity=fidelity, seconds=float(seconds), price=price)


async def build_tables(
    devices: Sequence[Device], items: Sequence[Item]
) -> tuple[ClassTables, np.ndarray, list[list[str | None]]]:
    """Classes of ``items`` and their tables. Returns the tables, the class of each item,
    and per class and device the reason it cannot run there (None where it can)."""
    keys: dict[tuple[str, int | None, frozenset[str] | None, float | None], int] = {}
    reps: list[Item] = []
    structs: list[str] = []
    cls = np.empty(len(items), dtype=np.int64)
    for i, item in enumerate(items):
        s = structure_key(item.circuit)
        key = (s, item.shots, item.devices, item.fidelity_floor)
        c = keys.get(key)
        if c is None:
            c = keys[key] = len(reps)
            reps.append(item)
            structs.append(s)
        cls[i] = c
    n_c, n_d = len(reps), len(devices)
    fits = np.zeros((n_c, n_d), dtype=bool)
    fid = np.zeros((n_c, n_d))
    raw = np.zeros((n_c, n_d))
    price = np.zeros((n_c, n_d))
    reasons: list[list[str | None]] = [[None] * n_d for _ in range(n_c)]

    def compute() -> None:
        for d, device in enumerate(devices):
            cal = device.calibration()
            fingerprint = cal.fingerprint()
            for c, item in enumerate(reps):
                if item.devices is not None and device.spec not in item.devices:
                    reasons[c][d] = f"{device.spec} is not among the devices allowed for it"
                    continue
                ckey = (device.spec, fingerprint, structs[c], item.shots)
                est = _cache.get(ckey)
                if est is None:
                    # transpiled once per structure: the shots change only the arithmetic
                    skey = (device.spec, fingerprint, structs[c])
                    shape = _shapes.get(skey)
                    if shape is None and item.circuit.num_qubits <= device.num_qubits:
                        shape = _shapes[skey] = _shape(device, cal, item.circuit, fingerprint)
                        if len(_shapes) > _CACHE_SIZE:
                            _shapes.popitem(last=False)
                    est = _estimate(device, cal, item.circuit, item.shots, shape)
                    _cache[ckey] = est
                    if len(_cache) > _CACHE_SIZE:
                        _cache.popitem(last=False)
                else:
                    _cache.move_to_end(ckey)
                if est.reason is not None:
                    reasons[c][d] = est.reason
                    continue
                fits[c, d] = True
                fid[c, d], raw[c, d], price[c, d] = est.fidelity, est.seconds, est.price

    await asyncio.to_thread(compute)
    counts = np.bincount(cls, minlength=n_c).astype(float)
    groups: dict[int | None, int] = {}
    group = np.array([groups.setdefault(it.shots, len(groups)) for it in reps], dtype=np.int64)
    tables = ClassTables(
        fits=fits,
        fidelity=fid,
        raw_s=raw,
        price=price,
        floor=np.array([it.fidelity_floor or 0.0 for it in reps]),
        group=group,
        shots=np.array([it.shots or 0 for it in reps], dtype=np.int64),
        weight=counts,
    )
    return tables, cls, reasons
