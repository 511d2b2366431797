"""Running sub-experiments on the fleet and handing each batch of results on as it lands.

The scheduler (:func:`multiqpu.scheduler.run`, what ``fleet.run`` calls) places the
circuits, batches them, retries, hedges and reports (a large batch goes as a few
interleaved concurrent runs, so that the results of one are folded while the others still
execute); a sub-experiment with mid-circuit
measurements (a cut gate measures one of its qubits and carries on) is restricted to the
devices that support them. ``use_scheduler=False`` selects a small stand-in instead: it
places circuits with the plan's execution model (earliest expected finish on a device wide
enough) and runs every device's share concurrently with ``device.run``, handing each job's
results on as it lands so that folding them overlaps with execution.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multiqpu.cutting._model import assign, device_model
from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult, Device

__all__ = ["Execution", "Task", "run_tasks"]


@dataclass(frozen=True)
class Task:
    """Run ``circuit`` (sub-experiment ``index``) for ``shots`` (None: exactly)."""

    index: int
    circuit: Any  # QuantumCircuit
    shots: int | None


OnResults = Callable[[list[tuple[Task, str, "CircuitResult"]]], Awaitable[None]]


@dataclass
class Execution:
    """What running cost: per device (circuits, shots, jobs), and wall time."""

    #: device spec -> [circuits, shots, jobs]
    per_device: dict[str, list[int]] = field(default_factory=dict)
    wall_s: float = 0.0
    engine: str = "stand-in"
    reports: list[Any] = field(default_factory=list)  # scheduler run reports, when used

    def record(self, device: str, circuits: int, shots: int, jobs: int = 1) -> None:
        row = self.per_device.setdefault(device, [0, 0, 0])
        row[0] += circuits
        row[1] += shots
        row[2] += jobs


def _split_large(tasks: Sequence[Task], max_shots: int) -> list[Task]:
    out: list[Task] = []
    for t in tasks:
        if t.shots is None or t.shots <= max_shots:
            out.append(t)
            continue
        left = t.shots
        while left > 0:
            take = min(left, max_shots)
            out.append(Task(t.index, t.circuit, take))
            left -= take
    return out


async def _run_standin(
    devices: Sequence[Device], tasks: Sequence[Task], on_results: OnResults, execution: Execution
) -> None:
    waits = {d.spec: 0.0 for d in devices}
    models = [device_model(d, waits[d.spec]) for d in devices]
    gates = [(len(t.circuit.data), 0) for t in tasks]
    placement = assign(
        models,
        [t.circuit.num_qubits for t in tasks],
        [t.shots for t in tasks],
        gates,
        needs_mid=[mid_circuit(t.circuit) for t in tasks],
    )
    per_device: dict[int, list[Task]] = {}
    for t, d in zip(tasks, placement.device_of, strict=True):
        if d < 0:
            kind = "an exact simulator" if t.shots is None else "a device"
            raise InvalidInputError(
                f"sub-experiment {t.index} needs {t.circuit.num_qubits} qubits and {kind}; "
                "no device of the fleet fits it"
            )
        per_device.setdefault(d, []).append(t)

    limit = {d.spec: asyncio.Semaphore(max(1, d.limits.max_concurrent_jobs)) for d in devices}

    async def run_batch(device: Device, batch: list[Task], shots: int | None) -> None:
        async with limit[device.spec]:
            result = await device.run([t.circuit for t in batch], shots)
        execution.record(device.spec, len(batch), sum(t.shots or 0 for t in batch))
        await on_results([(t, device.spec, r) for t, r in zip(batch, result.results, strict=True)])

    jobs: list[Awaitable[None]] = []
    for d, mine in per_device.items():
        device = devices[d]
        by_shots: dict[int | None, list[Task]] = {}
        for t in mine:
            by_shots.setdefault(t.shots, []).append(t)
        # A few jobs per device (each within its batch limit) so results stream in.
        size = max(1, min(device.limits.max_circuits_per_job, -(-len(mine) // 4)))
        for shots, group in by_shots.items():
            for start in range(0, len(group), size):
                jobs.append(run_batch(device, group[start : start + size], shots))
    await _gather_cancelling(jobs)


async def _gather_cancelling(coros: Sequence[Awaitable[None]]) -> None:
    """Run all; on the first failure (or cancellation) cancel the rest and re-raise."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


#: Circuits per concurrent scheduler run (a large batch is split so that finished parts
#: are folded while the rest still runs); at most _MAX_STREAMS runs at once.
_STREAM_CHUNK = 48
_MAX_STREAMS = 4


async def _run_scheduler(
    devices: Sequence[Device],
    fleet: Any,
    tasks: Sequence[Task],
    on_results: OnResults,
    execution: Execution,
    policy: str,
) -> None:
    from multiqpu.scheduler import JobRequest, run

    capable = [d.spec for d in devices if supports_mid_circuit(d)]
    restrict = capable if len(capable) < len(devices) else None  # None: any device

    async def one(part: Sequence[Task]) -> None:
        jobs = [
            JobRequest(t.circuit, t.shots, devices=restrict if mid_circuit(t.circuit) else None)
            for t in part
        ]
        # Fresh draws only: a cached sampled result would repeat an earlier random draw.
        out = await run(fleet, jobs, policy, cache=False)
        execution.engine = "scheduler"
        execution.reports.append(out.report)
        batch = []
        for t, item in zip(part, out.results, strict=True):
            execution.record(item.device, 1, t.shots or 0, 0)
            batch.append((t, item.device, item.result))
        for dev in out.report.devices:
            execution.record(dev.device, 0, 0, dev.jobs)
        await on_results(batch)

    # Interleaved parts (each a mix of fragments and sizes), placed concurrently; each part's
    # results are folded in a worker thread as soon as it completes.
    streams = max(1, min(_MAX_STREAMS, len(tasks) // _STREAM_CHUNK))
    await _gather_cancelling([one(tasks[k::streams]) for k in range(streams)])


def mid_circuit(circuit: QuantumCircuit) -> bool:
    """Does a gate act on a qubit after it was measured or reset?"""
    done: set[object] = set()
    for inst in circuit.data:
        name = inst.operation.name
        if name in ("measure", "reset"):
            done.update(inst.qubits)
        elif name not in ("barrier", "delay") and done.intersection(inst.qubits):
            return True
    return False


def supports_mid_circuit(device: Device) -> bool:
    """Whether ``device`` runs circuits that keep going after a measurement
    (:attr:`multiqpu.Device.mid_circuit_measurement`)."""
    return bool(device.mid_circuit_measurement)


async def run_tasks(
    fleet: Any,
    tasks: Sequence[Task],
    on_results: OnResults,
    *,
    execution: Execution,
    policy: str = "balanced",
    use_scheduler: bool | None = None,
) -> None:
    """Run ``tasks`` on ``fleet`` (a Fleet or a list of devices), awaiting ``on_results``
    for the results as they land (per job with the stand-in, per scheduler run)."""
    devices: list[Device] = list(fleet)
    exact = any(t.shots is None for t in tasks)
    eligible = [d for d in devices if d.exact or not exact]
    if any(mid_circuit(t.circuit) for t in tasks) and not any(
        supports_mid_circuit(d) for d in eligible
    ):
        raise InvalidInputError(
            "the sub-experiments of gate cuts measure a qubit mid-circuit, which no device "
            f"of the fleet supports ({', '.join(d.spec for d in eligible)}); add a device "
            "that does (IBM, local) or cut wires only (gate_cuts=False)"
        )
    max_shots = min((d.limits.max_shots for d in eligible), default=1)
    tasks = _split_large(tasks, max_shots)
    start = time.perf_counter()
    try:
        if use_scheduler is None or use_scheduler:
            await _run_scheduler(devices, fleet, tasks, on_results, execution, policy)
        else:
            await _run_standin(eligible, tasks, on_results, execution)
    finally:
        execution.wall_s += time.perf_counter() - start
