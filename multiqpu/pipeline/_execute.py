"""The pipeline's schedule-and-execute step: run circuits (sub-experiments, shards,
mitigation circuits) on a device pool and hand each batch of results on as it lands.

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
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multiqpu._aio import gather_cancelling
from multiqpu.cutting._model import assign, device_model, mid_circuit, supports_mid_circuit
from multiqpu.errors import InvalidInputError
from multiqpu.pool import DevicePool
from multiqpu.scheduler._progress import Progress, progress_allowed

if TYPE_CHECKING:
    from multiqpu.device import CircuitResult, Device

__all__ = ["PER_RUN_OPTIONS", "Execution", "Task", "request_progress", "run_tasks"]

#: Scheduler options that hold for a whole request but would apply to each of the several
#: scheduler runs a request may make (pilot, main stage, each device's mitigation circuits).
PER_RUN_OPTIONS = frozenset({"budget_usd", "deadline_s", "run_id", "cache"})


#: The live display of the request being run, if any (see :func:`request_progress`).
_PROGRESS: ContextVar[Progress | None] = ContextVar("multiqpu_request_progress", default=None)


@contextlib.contextmanager
def request_progress(pool: DevicePool) -> Iterator[None]:
    """Per-device progress bars over a whole request (the pilot, the main stage, top-ups,
    mitigation circuits: every run of one estimate), drawn only where progress is allowed
    (a terminal, not ``MULTIQPU_PROGRESS=0``); the scheduler runs inside draw no bars of
    their own while it is on screen."""
    bar = Progress([d.spec for d in pool], 0, enabled=progress_allowed())
    token = _PROGRESS.set(bar if bar.enabled else None)
    try:
        yield
    finally:
        _PROGRESS.reset(token)
        bar.close()


def _tracked(on_results: OnResults, n: int, specs: Sequence[str]) -> OnResults:
    """``on_results`` that also advances the request's bars, if some are on screen."""
    bar = _PROGRESS.get()
    if bar is None:
        return on_results
    bar.expect(n)
    index = {spec: k for k, spec in enumerate(specs)}

    async def tracked(batch: list[tuple[Task, str, CircuitResult]]) -> None:
        per_device: dict[int, int] = {}
        for _, spec, _ in batch:
            if spec in index:
                per_device[index[spec]] = per_device.get(index[spec], 0) + 1
        for d, k in per_device.items():
            bar.submitted(d, k)
            bar.done(d, k)
        await on_results(batch)

    return tracked


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
    await gather_cancelling(jobs)


#: Seconds of estimated work a job holds at least (the scheduler's ``min_job_s``) unless
#: the caller says otherwise: each job costs the driver ~2-3 ms of bookkeeping (placement,
#: journal, submission, shipping), so jobs of one small sub-experiment each would make the
#: driver, not the devices, the bottleneck. A QPU's own per-job overhead (seconds) already
#: makes its jobs far larger; on simulators it groups sub-experiments of one shots value.
MIN_JOB_S = 0.05

#: Circuits per concurrent scheduler run (a large batch is split so that finished parts
#: are folded while the rest still runs); at most _MAX_STREAMS runs at once.
_STREAM_CHUNK = 48
_MAX_STREAMS = 4


async def _run_scheduler(
    pool: DevicePool,
    tasks: Sequence[Task],
    on_results: OnResults,
    execution: Execution,
    policy: str,
    options: Mapping[str, Any],
) -> None:
    from multiqpu.scheduler import JobRequest, run

    capable = [d.spec for d in pool if supports_mid_circuit(d)]
    restrict = capable if len(capable) < len(pool) else None  # None: any device
    defaults: dict[str, Any] = {"min_job_s": MIN_JOB_S}
    if not any(d.imitates_qpu for d in pool):
        # plain simulators have no queue to learn: no single-circuit probe jobs first
        # (each concurrent run would probe every device before batching anything)
        defaults["explore"] = False

    async def one(part: Sequence[Task]) -> None:
        jobs = [
            JobRequest(t.circuit, t.shots, devices=restrict if mid_circuit(t.circuit) else None)
            for t in part
        ]
        # Fresh draws only: a cached sampled result would repeat an earlier random draw.
        # One device per result: the stages correct (and fold) each result by its device.
        out = await run(pool, jobs, policy, cache=False, split_shots=False,
                        **{**defaults, **options})  # fmt: skip
        execution.engine = "scheduler"
        execution.reports.append(out.report)
        batch = []
        for t, item in zip(part, out.results, strict=True):
            execution.record(item.device, 1, t.shots or 0, 0)
            batch.append((t, item.device, item.result))
        for dev in out.report.devices:
            execution.record(dev.device, 0, 0, dev.jobs)
        await on_results(batch)

    # Parts placed concurrently; each part's results are folded (in a worker thread or an
    # engine task) as soon as it completes. The parts are bands of the shots (a job carries
    # one shots value: a part holding few values makes few, larger jobs), each a mix of
    # fragments; the order within a part is the input order.
    streams = max(1, min(_MAX_STREAMS, len(tasks) // _STREAM_CHUNK))
    order = sorted(range(len(tasks)), key=lambda k: (tasks[k].shots or 0, k))
    size = -(-len(order) // streams)
    bands = [sorted(order[k * size : (k + 1) * size]) for k in range(streams)]
    await gather_cancelling([one([tasks[k] for k in band]) for band in bands if band])


async def run_tasks(
    pool: DevicePool,
    tasks: Sequence[Task],
    on_results: OnResults,
    *,
    execution: Execution,
    policy: str = "balanced",
    use_scheduler: bool | None = None,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Run ``tasks`` on ``pool``, awaiting ``on_results`` for the results as they land (per
    job with the stand-in, per scheduler run). ``options``: more scheduler options (see
    :class:`multiqpu.scheduler.Options`; not ``cache``, and none with the stand-in)."""
    devices: list[Device] = list(pool)
    options = dict(options or {})
    if options.pop("split_shots", "auto") is True:
        raise InvalidInputError(
            "split_shots=True applies to fleet.sample without mitigation and to "
            "fleet.estimate; a mitigated sample corrects each circuit on the one device "
            "that ran it"
        )
    if options and use_scheduler is False:
        raise InvalidInputError(
            f"use_scheduler=False runs without the scheduler, which options "
            f"{', '.join(sorted(options))} configure; drop them or use the scheduler"
        )
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
    on_results = _tracked(on_results, len(tasks), pool.specs)
    start = time.perf_counter()
    try:
        if use_scheduler is None or use_scheduler:
            await _run_scheduler(pool, tasks, on_results, execution, policy, options)
        else:
            await _run_standin(eligible, tasks, on_results, execution)
    finally:
        execution.wall_s += time.perf_counter() - start
