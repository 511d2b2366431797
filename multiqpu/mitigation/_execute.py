"""Running mitigated work: the scheduler places it, each device then runs its own
mitigation circuits.

Stage by stage (request -> plan -> schedule -> execute -> mitigate per device):

1. **Placement.** The circuits run through the pool like any work (the pipeline's
   execution step: the scheduler, or its stand-in) at noise scale 1. Each
   result comes back with the device that produced it: that device *owns* the circuit
   from now on. (A circuit split over several devices, e.g. more shots than one device
   takes, becomes several shards, each owned by its device and mitigated on its own.)
2. **Per-device mitigation circuits.** For every device, in one batch scheduled on that
   device alone (``pool.subset([device])``, so retries, journal and throttling apply as
   usual and what the scheduler learns about the device is kept in the caller's pool):
   the readout calibration circuits its shards need (unless cached), and each shard's
   folded circuits at the other noise scales and twirled variants, all derived from the
   circuit *as that device mapped it* (same physical qubits at every scale) and run as
   given (:func:`multiqpu.mitigation._isa.adopt`).
3. A device that fails in step 2 is dropped and its shards start again from step 1 on the
   rest of the fleet (their points never join another device's).

The caller gets per-shard counts per noise scale, the readout calibration of the qubits
each shard measured, and an account of the shots spent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError, JobError, MultiQPUError
from multiqpu.mitigation._extra import (
    CalJob,
    adopt_one,
    finish_calibration,
    plan_calibration,
    prepare,
    variants,
)
from multiqpu.mitigation._options import MitigationSpec

if TYPE_CHECKING:
    from multiqpu.device import CircuitResult, Device
    from multiqpu.mitigation._readout import ReadoutCalibration
    from multiqpu.pipeline._execute import Execution, Task
    from multiqpu.pool import DevicePool

__all__ = ["CalibrationUse", "EngineReport", "Item", "Shard", "run_mitigated", "scale_shots"]

_MAX_RETRIES = 2


@dataclass(frozen=True)
class Item:
    """One circuit to run mitigated, with the shots an unmitigated run would give it."""

    index: int
    circuit: Any  # QuantumCircuit
    shots: int


@dataclass
class Shard:
    """The part of one circuit that one device ran, and everything mitigation needs."""

    index: int
    device: str
    width: int  # classical bits
    raw: dict[str, int] = field(default_factory=dict)  # placement counts (scale 1, plain)
    raw_shots: int = 0
    noisy: bool = True
    isa: Any = None
    clbit_qubits: tuple[int | None, ...] = ()
    calibration: ReadoutCalibration | None = None
    counts: dict[float, dict[str, int]] = field(default_factory=dict)  # nominal scale -> pooled
    achieved: dict[float, float] = field(default_factory=dict)  # nominal -> achieved scale
    twirled_gates: int = 0

    @property
    def measured(self) -> tuple[int, ...]:
        return tuple(sorted({q for q in self.clbit_qubits if q is not None}))


@dataclass(frozen=True)
class CalibrationUse:
    """A readout calibration a run used: measured now, from the cache, or the profile."""

    device: str
    qubits: tuple[int, ...]
    source: str
    shots: int
    measured_at: float | None


@dataclass
class EngineReport:
    """Shots and circuits spent, per purpose and per device."""

    shots_placement: int = 0
    shots_mitigation: int = 0
    shots_calibration: int = 0
    circuits: int = 0
    calibrations: list[CalibrationUse] = field(default_factory=list)
    per_device: dict[str, list[int]] = field(default_factory=dict)  # [circuits, shots]
    executions: list[Execution] = field(default_factory=list)
    failed_devices: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def record(self, device: str, circuits: int, shots: int) -> None:
        row = self.per_device.setdefault(device, [0, 0])
        row[0] += circuits
        row[1] += shots
        self.circuits += circuits


def scale_shots(spec: MitigationSpec, shots: int) -> dict[float, int]:
    """Shots per nominal noise scale for a circuit whose unmitigated run gets ``shots``."""
    import numpy as np

    zne = spec.zne
    if zne is None:
        return {1.0: shots}
    scales = zne.scales
    if zne.allocation == "equal":
        return dict.fromkeys(scales, shots)
    gamma = zne.make_extrapolator().coefficients(scales)
    if gamma is None:
        return dict.fromkeys(scales, shots)
    weight = np.abs(np.asarray(gamma, dtype=float))
    weight = np.maximum(weight, 1e-3 * weight.max())
    total = shots * len(scales)
    share = total * weight / weight.sum()
    base = np.maximum(np.floor(share).astype(np.int64), 2)
    short = total - int(base.sum())
    if short > 0:
        for j in np.argsort(-(share - np.floor(share)))[:short]:
            base[j] += 1
    return {s: int(n) for s, n in zip(scales, base, strict=True)}


def _add(into: dict[str, int], counts: Any) -> None:
    for k, v in counts.items():
        key = k.replace(" ", "")
        into[key] = into.get(key, 0) + int(v)


async def _run(
    pool: DevicePool,
    tasks: list[Task],
    policy: str,
    report: EngineReport,
    use_scheduler: bool | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[tuple[Task, str, CircuitResult]]:
    from multiqpu.pipeline._execute import Execution, run_tasks

    out: list[tuple[Task, str, CircuitResult]] = []

    async def collect(batch: list[tuple[Task, str, CircuitResult]]) -> None:
        out.extend(batch)

    execution = Execution()
    report.executions.append(execution)
    await run_tasks(
        pool, tasks, collect, execution=execution, policy=policy, use_scheduler=use_scheduler,
        options=options,
    )  # fmt: skip
    # Results are weighed by their shots: a result with other shots than asked for (a
    # scheduler that batched circuits of different shots into one job) must not slip in.
    for task, dev, result in out:
        got = sum(result.counts.values())
        if task.shots is not None and got != task.shots:
            raise JobError(
                f"{dev} returned {got} shots for a circuit run with {task.shots}; mitigation "
                "weighs results by their shots and cannot use it"
            )
    return out


# ---------------------------------------------------------------------- the run
async def run_mitigated(
    pool: DevicePool,
    items: Sequence[Item],
    spec: MitigationSpec,
    *,
    policy: str = "balanced",
    use_scheduler: bool | None = None,
    options: Mapping[str, Any] | None = None,
    report: EngineReport | None = None,
    _depth: int = 0,
) -> tuple[list[Shard], EngineReport]:
    """Run ``items`` with the mitigation ``spec`` on ``pool``; shards in any order.
    ``options``: more scheduler options for every run (see :func:`~multiqpu.pipeline.
    _execute.run_tasks`)."""
    from multiqpu.pipeline._execute import Task

    report = report or EngineReport()
    t0 = time.perf_counter()
    devices: dict[str, Device] = {d.spec: d for d in pool}
    plans = {it.index: scale_shots(spec, it.shots) for it in items}
    by_index = {it.index: it for it in items}

    # 1. placement (scale 1, plain circuit): which device owns which circuit
    def first_shots(it: Item) -> int:
        plan = plans[it.index]
        return plan[1.0] if (1.0 in plan and spec.twirl is None) else it.shots

    tasks = [Task(it.index, it.circuit, first_shots(it)) for it in items]
    placed = await _run(pool, tasks, policy, report, use_scheduler, options)
    shards: dict[tuple[int, str], Shard] = {}
    meta: dict[tuple[int, str], Any] = {}
    for task, dev, result in placed:
        key = (task.index, dev)
        shard = shards.get(key)
        if shard is None:
            shard = shards[key] = Shard(task.index, dev, by_index[task.index].circuit.num_clbits)
            meta[key] = result.metadata
        _add(shard.raw, result.counts)
        got = sum(result.counts.values())
        shard.raw_shots += got
        report.shots_placement += got
        report.record(dev, 1, got)
    placed_total: dict[int, int] = {}
    for shard in shards.values():
        placed_total[shard.index] = placed_total.get(shard.index, 0) + shard.raw_shots

    # 2. per device: map, plan calibration and variants, run them on that device alone
    by_device: dict[str, list[Shard]] = {}
    for shard in shards.values():
        by_device.setdefault(shard.device, []).append(shard)

    async def per_device(spec_name: str, mine: list[Shard]) -> None:
        device = devices.get(spec_name)
        if device is None:
            raise InvalidInputError(f"the scheduler reported device {spec_name}, not in the pool")
        for shard in mine:
            await asyncio.to_thread(
                prepare,
                device,
                shard,
                by_index[shard.index].circuit,
                meta[(shard.index, spec_name)],
            )
            if not shard.noisy:
                for scale in plans[shard.index]:
                    shard.counts[scale] = dict(shard.raw)
                    shard.achieved[scale] = 1.0 if scale == 1.0 else scale
        noisy = [s for s in mine if s.noisy]
        if not noisy:
            return
        fingerprint = device.calibration().fingerprint()
        have: dict[tuple[int, ...], ReadoutCalibration] = {}
        cal_jobs: list[CalJob] = []
        if spec.readout is not None:
            have, cal_jobs = await asyncio.to_thread(
                plan_calibration, device, noisy, spec, fingerprint
            )
            for job in cal_jobs:
                for circ in job.circuits:
                    await asyncio.to_thread(adopt_one, device, circ)
        work: list[tuple[Shard, float, Any, int]] = []
        for shard in noisy:
            fraction = shard.raw_shots / max(1, placed_total[shard.index])
            made = await asyncio.to_thread(
                variants, device, shard, spec, plans[shard.index], fraction
            )
            work.extend((shard, scale, circ, n) for scale, circ, n in made)
            if 1.0 in plans[shard.index] and spec.twirl is None:
                shard.counts[1.0] = dict(shard.raw)
        tasks2: list[Task] = []
        where: list[tuple[str, Any, Any]] = []
        for job in cal_jobs:
            for j, circ in enumerate(job.circuits):
                where.append(("cal", job, j))
                tasks2.append(Task(len(tasks2), circ, job.shots))
        for shard, scale, circ, n in work:
            where.append(("data", shard, scale))
            tasks2.append(Task(len(tasks2), circ, n))
        if tasks2:
            results = await _run(
                pool.subset([device]), tasks2, policy, report, use_scheduler, options
            )
            for task, dev, result in results:
                kind, owner, extra = where[task.index]
                if dev != spec_name:
                    raise InvalidInputError(
                        f"a circuit pinned to {spec_name} came back from {dev}; mitigation "
                        "circuits must run on the device that ran the circuit"
                    )
                shots = int(task.shots or 0)
                report.record(dev, 1, shots)
                if kind == "cal":
                    while len(owner.counts) <= extra:
                        owner.counts.append({})
                    _add(owner.counts[extra], result.counts)
                    report.shots_calibration += shots
                else:
                    _add(owner.counts.setdefault(extra, {}), result.counts)
                    report.shots_mitigation += shots
        if spec.readout is not None:
            finish_calibration(device.spec, fingerprint, noisy, spec, have, cal_jobs, report)

    failed: dict[str, BaseException] = {}

    async def guarded(name: str, mine: list[Shard]) -> None:
        try:
            await per_device(name, mine)
        except (MultiQPUError, OSError) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            failed[name] = exc

    await asyncio.gather(*(guarded(n, m) for n, m in by_device.items()))
    done = [s for s in shards.values() if s.device not in failed]
    if failed:
        report.failed_devices.extend(failed)
        remaining = [d for d in devices.values() if d.spec not in failed]
        if _depth >= _MAX_RETRIES or not remaining:
            raise next(iter(failed.values()))
        retry = [
            Item(s.index, by_index[s.index].circuit, max(2, round(by_index[s.index].shots
                 * s.raw_shots / max(1, placed_total[s.index]))))
            for s in shards.values()
            if s.device in failed
        ]  # fmt: skip
        more, _ = await run_mitigated(
            pool.subset(remaining), retry, spec, policy=policy, use_scheduler=use_scheduler,
            options=options, report=report, _depth=_depth + 1,
        )  # fmt: skip
        done.extend(more)
    report.wall_s += time.perf_counter() - t0 if _depth == 0 else 0.0
    return done, report
