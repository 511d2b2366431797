"""The circuits a device runs for mitigation, beyond the placement run: its own mapping of
each shard's circuit, the folded and twirled variants of it, and the readout calibration
circuits of the qubits the shards measured (unless cached or taken from the profile).
All blocking (transpiling, folding): :mod:`._execute` calls them in worker threads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import Device
    from multiqpu.mitigation._execute import EngineReport, Shard
    from multiqpu.mitigation._options import MitigationSpec
    from multiqpu.mitigation._readout import ReadoutCalibration

__all__ = ["CalJob", "adopt_one", "finish_calibration", "plan_calibration", "prepare", "variants"]

#: Calibrate up to this many qubits in one go when shards' qubit sets are combined.
_CAL_WIDTH = 12


def _split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    q, r = divmod(total, parts)
    return [q + (1 if i < r else 0) for i in range(parts)]


# ---------------------------------------------------------------------- preparing a shard
def prepare(device: Device, shard: Shard, circuit: QuantumCircuit, metadata: Any) -> None:
    """Blocking: the device's own mapping of the circuit and what each bit measures."""
    from multiqpu.mitigation._isa import clbit_qubits
    from multiqpu.simulation import active_qubits

    shard.noisy = not device.exact and not device.calibration().is_ideal()
    if not shard.noisy:
        return
    isa = device.transpile(circuit)
    ran = metadata.get("physical_qubits") if metadata else None
    if ran is not None and tuple(ran) != tuple(active_qubits(isa)):
        raise InvalidInputError(
            f"{device.spec} ran circuit '{circuit.name}' on physical qubits {tuple(ran)}, but "
            f"its transpile() maps it to {active_qubits(isa)}; mitigation needs the device to "
            "run what transpile() returns"
        )
    shard.isa = isa
    shard.clbit_qubits = clbit_qubits(isa)


def variants(
    device: Device, shard: Shard, spec: MitigationSpec, plan: dict[float, int], fraction: float
) -> list[tuple[float, QuantumCircuit, int]]:
    """Blocking: (nominal scale, circuit to run as given, shots) for one shard."""
    import numpy as np

    from multiqpu.mitigation._fold import fold_gates
    from multiqpu.mitigation._isa import adopt
    from multiqpu.mitigation._twirl import twirl

    basis = device.target.basis_gates
    calibration = device.calibration()
    out: list[tuple[float, QuantumCircuit, int]] = []
    for scale, shots in plan.items():
        if scale == 1.0 and spec.twirl is None:
            shard.achieved[1.0] = 1.0
            continue  # the placement run is the scale-1 data
        n = max(2, round(shots * fraction))
        seed = spec.zne.seed if spec.zne is not None else 0
        gates = spec.zne.gates if spec.zne is not None else "two_qubit"
        folded, achieved = fold_gates(
            shard.isa, scale, gates=gates, basis=basis, seed=seed, errors=calibration.error
        )
        shard.achieved[scale] = achieved
        if spec.twirl is None:
            adopt(device, folded)
            out.append((scale, folded, n))
            continue
        rng = np.random.default_rng(
            [spec.twirl.seed or 0, shard.index, int(scale * 1000), _stable(device.spec)]
        )
        for part in _split(n, spec.twirl.randomizations):
            variant, count = twirl(folded, rng, basis=basis)
            shard.twirled_gates = max(shard.twirled_gates, count)
            adopt(device, variant)
            out.append((scale, variant, part))
    return out


def _stable(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode())


# ---------------------------------------------------------------------- readout calibration
@dataclass
class CalJob:
    qubits: tuple[int, ...]
    circuits: list[Any]
    patterns: Any
    shots: int  # per circuit
    counts: list[dict[str, int]] = field(default_factory=list)


def plan_calibration(
    device: Device, shards: list[Shard], spec: MitigationSpec, fingerprint: str
) -> tuple[dict[tuple[int, ...], ReadoutCalibration], list[CalJob]]:
    """Blocking: calibrations available now (cache or profile) per measured-qubit set, and
    the calibration circuits still to run."""
    from multiqpu.mitigation._cache import ReadoutCache
    from multiqpu.mitigation._readout import calibration_circuits, from_profile

    readout = spec.readout
    assert readout is not None
    sets = sorted({s.measured for s in shards if s.measured})
    have: dict[tuple[int, ...], ReadoutCalibration] = {}
    if not readout.calibrate:
        cal = device.calibration()
        for qs in sets:
            have[qs] = from_profile(device.spec, cal, qs)
        return have, []
    cache = ReadoutCache(readout.cache_path()) if readout.cache else None
    missing: list[tuple[int, ...]] = []
    for qs in sets:
        hit = None
        if cache is not None:
            hit = cache.lookup(device.spec, fingerprint, qs, max_age_s=readout.max_age_s)
        if hit is not None:
            have[qs] = hit
        else:
            missing.append(qs)
    if not missing:
        return have, []
    union = sorted({q for qs in missing for q in qs})
    # One calibration for the union where it is small; never wider than both a circuit
    # that ran there and _CAL_WIDTH (simulated devices have width limits of their own).
    width = max(max(len(qs) for qs in missing), min(len(union), _CAL_WIDTH))
    jobs = []
    for start in range(0, len(union), width):
        chunk = tuple(union[start : start + width])
        circuits, patterns = calibration_circuits(device, chunk)
        per = max(1, math.ceil(readout.shots / len(circuits)))
        jobs.append(CalJob(chunk, circuits, patterns, per))
    return have, jobs


def adopt_one(device: Device, circuit: Any) -> None:
    from multiqpu.mitigation._isa import adopt

    adopt(device, circuit)


def finish_calibration(
    device: str,
    fingerprint: str,
    shards: list[Shard],
    spec: MitigationSpec,
    have: dict[tuple[int, ...], ReadoutCalibration],
    jobs: list[CalJob],
    report: EngineReport,
) -> None:
    from multiqpu.mitigation._cache import ReadoutCache
    from multiqpu.mitigation._execute import CalibrationUse
    from multiqpu.mitigation._readout import from_counts, merge

    readout = spec.readout
    assert readout is not None
    measured = []
    for job in jobs:
        cal = from_counts(
            device, fingerprint, job.qubits, job.patterns, job.counts,
            shots=job.shots * len(job.circuits),
        )  # fmt: skip
        measured.append(cal)
        if readout.cache:
            ReadoutCache(readout.cache_path()).store(cal)
        report.calibrations.append(
            CalibrationUse(device, job.qubits, "measured", cal.shots, cal.measured_at)
        )
    for qs, cal in have.items():
        report.calibrations.append(CalibrationUse(device, qs, cal.source, 0, cal.measured_at))
    for shard in shards:
        qs = shard.measured
        if not qs:
            continue
        if qs in have:
            shard.calibration = have[qs]
        else:
            shard.calibration = merge(device, fingerprint, qs, measured, source="measured")
