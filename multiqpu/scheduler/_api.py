"""The scheduler's entry points: ``sample``, ``run``, ``resume`` (async) and sync faces."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu._sync import run_sync as _in_thread
from multiqpu.errors import InvalidInputError, JobError
from multiqpu.pool import DevicePool, PoolLike, as_pool
from multiqpu.scheduler._costmodel import Item
from multiqpu.scheduler._executor import Attached, execute
from multiqpu.scheduler._options import Options, parse_options
from multiqpu.scheduler._report import SampleResult
from multiqpu.scheduler._shots import PLAN_KEY, ShotPlan, merge, split_and_execute

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import Device
    from multiqpu.journal import Journal
    from multiqpu.placement import Placement

__all__ = ["JobRequest", "resume", "resume_sync", "run", "run_sync", "sample", "sample_sync"]

Shots = int | None


@dataclass(frozen=True)
class JobRequest:
    """One circuit for :func:`run`, with per-circuit options.

    ``devices`` restricts it to some devices (specs or names); ``placement`` (a
    :class:`multiqpu.Placement` or a config rule's name) too, as a data placement rule;
    ``fidelity_floor`` overrides the run's floor for it.
    """

    circuit: QuantumCircuit
    shots: int | None = 1024
    devices: Sequence[str] | None = None
    fidelity_floor: float | None = None
    placement: Placement | str | None = None


def _pool_of(fleet: PoolLike) -> DevicePool:
    if fleet is None or (isinstance(fleet, list | tuple) and not fleet):
        raise InvalidInputError("pass a multiqpu.Fleet or a non-empty list of multiqpu devices")
    return as_pool(fleet)


def _check_circuit(i: int, circuit: Any) -> None:
    from qiskit import QuantumCircuit

    if not isinstance(circuit, QuantumCircuit):
        raise InvalidInputError(
            f"circuit {i} is a {type(circuit).__name__}, expected qiskit.QuantumCircuit"
        )
    if circuit.num_clbits == 0:
        raise InvalidInputError(
            f"circuit {i} ({circuit.name}) has no classical bits to read; add measurements "
            "(e.g. circuit.measure_all())"
        )
    if circuit.num_parameters:
        raise InvalidInputError(
            f"circuit {i} ({circuit.name}) has unbound parameters "
            f"{sorted(p.name for p in circuit.parameters)}; bind them first"
        )


def _check_shots(i: int, shots: Any) -> int | None:
    if shots is None:
        return None
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise InvalidInputError(
            f"shots for circuit {i} must be a positive integer or None, got {shots!r}"
        )
    return shots


def _resolve(devices: list[Device], names: Sequence[str] | None) -> frozenset[str] | None:
    if names is None:
        return None
    specs = set()
    for name in names:
        match = [d.spec for d in devices if name in (d.spec, d.name)]
        if not match:
            raise InvalidInputError(
                f"device {name!r} is not in this fleet; it has: "
                + ", ".join(d.spec for d in devices)
            )
        specs.update(match)
    return frozenset(specs)


def _placed(
    devices: list[Device], rule: Any, allowed: frozenset[str] | None, i: int, circuit: Any
) -> frozenset[str]:
    """Circuit ``i``'s allowed specs under its placement rule (refused when none)."""
    from multiqpu.placement import PlacementError, check_width, resolve_placement

    placement = resolve_placement(rule)
    assert placement is not None
    ok = placement.allowed_specs(devices) & (
        allowed if allowed is not None else frozenset(d.spec for d in devices)
    )
    if not ok:
        raise PlacementError(
            f"{placement}: circuit {i} ({getattr(circuit, 'name', '?')}) may run on no device "
            f"of this fleet ({', '.join(d.spec for d in devices)}); nothing was submitted"
        )
    check_width(placement, [d for d in devices if d.spec in ok], [circuit], first=i)
    return ok


def _placed_pool(pool: DevicePool, rule: Any, circuits: Sequence[Any]) -> DevicePool:
    """The run-wide placement rule applied: the pool of allowed devices."""
    from multiqpu.placement import resolve_placement

    placement = resolve_placement(rule)
    if placement is None:
        return pool
    return placement.restrict(pool, [c for c in circuits if hasattr(c, "num_qubits")])


def _items(
    devices: list[Device], jobs: Sequence[Any], default_shots: Shots, floor: float | None
) -> list[Item]:
    from qiskit import QuantumCircuit

    if isinstance(jobs, QuantumCircuit):
        raise InvalidInputError("pass a list of circuits, not a single QuantumCircuit")
    jobs = list(jobs)
    if not jobs:
        raise InvalidInputError("no circuits to run")
    items = []
    for i, job in enumerate(jobs):
        if isinstance(job, JobRequest):
            circuit, shots = job.circuit, job.shots
            allowed = _resolve(devices, job.devices)
            if job.placement is not None:
                allowed = _placed(devices, job.placement, allowed, i, job.circuit)
            item_floor = job.fidelity_floor if job.fidelity_floor is not None else floor
        elif isinstance(job, tuple) and len(job) == 2:
            (circuit, shots), allowed, item_floor = job, None, floor
        else:
            circuit, shots, allowed, item_floor = job, default_shots, None, floor
        _check_circuit(i, circuit)
        items.append(Item(circuit, _check_shots(i, shots), allowed, item_floor))
    return items


def _journal(option: Any) -> tuple[Journal | None, bool]:
    """The journal to use and whether we opened it (and must close it)."""
    if option is None or option is False:
        return None, False
    from multiqpu.journal import Journal

    if isinstance(option, Journal):
        return option, False
    if option is True:
        return Journal(), True
    if isinstance(option, str | os.PathLike):
        return Journal(option), True
    raise InvalidInputError(
        f"journal must be a path, a multiqpu.journal.Journal, True or None, got {option!r}"
    )


async def _execute(pool: DevicePool, items: list[Item], opts: Options, **kw: Any) -> SampleResult:
    journal, owned = _journal(opts.journal)
    try:
        return await split_and_execute(pool, items, opts, journal=journal)
    finally:
        if owned and journal is not None:
            journal.close()


async def sample(
    fleet: PoolLike,
    circuits: Sequence[QuantumCircuit],
    shots: Shots | Sequence[Shots] = 1024,
    policy: str = "balanced",
    *,
    placement: Placement | str | None = None,
    **options: Any,
) -> SampleResult:
    """Run every circuit somewhere on ``fleet`` and return one result per circuit, in input
    order, with the device that produced it and a run report. ``shots`` is one number for
    all, None (exact probabilities, ideal simulators only) or one per circuit.
    ``placement``: a data placement rule for every circuit (:class:`multiqpu.Placement`
    or a config rule's name; see docs/trust.md). Options: see
    :class:`multiqpu.scheduler.Options`."""
    opts = parse_options(policy, **options)
    from qiskit import QuantumCircuit

    if isinstance(circuits, QuantumCircuit):
        raise InvalidInputError("pass a list of circuits, not a single QuantumCircuit")
    if isinstance(circuits, str | bytes) or not isinstance(circuits, Iterable):
        raise InvalidInputError(
            f"circuits must be a list of QuantumCircuits, got {type(circuits).__name__}"
        )
    circuits = list(circuits)
    if isinstance(shots, Sequence):
        if len(shots) != len(circuits):
            raise InvalidInputError(f"got {len(shots)} shot counts for {len(circuits)} circuits")
        jobs: list[Any] = list(zip(circuits, shots, strict=True))
    else:
        jobs = [(c, shots) for c in circuits]
    pool = _placed_pool(_pool_of(fleet), placement, circuits)
    return await _execute(pool, _items(list(pool), jobs, None, opts.fidelity_floor), opts)


async def run(
    fleet: PoolLike,
    jobs: Sequence[JobRequest | tuple[QuantumCircuit, Shots] | QuantumCircuit],
    policy: str = "balanced",
    *,
    shots: Shots = 1024,
    placement: Placement | str | None = None,
    **options: Any,
) -> SampleResult:
    """The general case of :func:`sample`: each entry is a :class:`JobRequest` (per-circuit
    shots, allowed devices, placement rule, fidelity floor), a ``(circuit, shots)`` pair, or
    a circuit (run with ``shots``). ``placement``: a rule for every circuit."""
    opts = parse_options(policy, **options)
    if isinstance(jobs, Sequence) and not isinstance(jobs, str):
        circuits = [j.circuit if isinstance(j, JobRequest) else j[0] if isinstance(j, tuple)
                    else j for j in jobs]  # fmt: skip
    else:
        circuits = []
    pool = _placed_pool(_pool_of(fleet), placement, circuits)
    return await _execute(pool, _items(list(pool), jobs, shots, opts.fidelity_floor), opts)


async def resume(
    fleet: PoolLike,
    run_id: str,
    *,
    journal: str | os.PathLike[str] | Journal | bool = True,
    **options: Any,
) -> SampleResult:
    """Finish an interrupted run from the journal: recorded results are kept, jobs still
    open at their providers are re-attached by id, and only work that was really lost is
    submitted again. Options default to those the run was started with."""
    jr, owned = _journal(journal)
    if jr is None:
        raise InvalidInputError("resume needs the journal the run was recorded in")
    try:
        info = jr.run_info(run_id)  # raises JobError for an unknown run id
        # options this version no longer has (patience_s) are dropped, so an
        # older run resumes; an option passed here is still checked by parse_options
        stored = {k: v for k, v in dict(info.options).items() if k in Options.__dataclass_fields__}
        stored.pop("journal", None)
        if "rate_limits" in stored:
            stored["rate_limits"] = {k: tuple(v) for k, v in stored["rate_limits"].items()}
        merged = {**stored, **options, "journal": jr}
        policy = merged.pop("policy", "balanced")
        merged.pop("run_id", None)
        opts = parse_options(policy, **merged)
        pool = _pool_of(fleet)
        devices = list(pool)
        loaded = jr.load_circuits(run_id)
        # placement and per-circuit device restrictions recorded with the run are kept
        allowed = info.options.get("allowed_devices") or [None] * len(loaded)
        items = [
            Item(c, s, None if a is None else frozenset(a), opts.fidelity_floor)
            for (c, s), a in zip(loaded, allowed, strict=True)
        ]
        plan = info.options.get(PLAN_KEY)  # a run whose shots were split: parts, pinned again
        if plan:
            items = ShotPlan.from_json(plan).restrict(items)
        done = jr.done_results(run_id)
        attached: list[Attached] = []
        by_spec = {d.spec: k for k, d in enumerate(devices)}
        for open_job in jr.open_jobs(run_id):
            todo = [i for i in open_job.task_indices if i not in done]
            d = by_spec.get(open_job.device)
            if not todo:
                jr.job_cancelled(open_job.job_row)
                continue
            if open_job.provider_job_id is None or d is None:
                jr.job_failed(open_job.job_row, "lost: not re-attachable on resume", final=False)
                continue
            try:
                job = await devices[d].retrieve(open_job.provider_job_id)
            except JobError as exc:
                jr.job_failed(open_job.job_row, f"not re-attachable: {exc}", final=False)
                continue
            if todo != list(open_job.task_indices):
                jr.job_failed(open_job.job_row, "partly done: resubmitting the rest", final=False)
                continue
            attached.append(Attached(d, list(open_job.task_indices), job, open_job.job_row))
        out = await execute(pool, items, opts, journal=jr, resume=(run_id, done, attached))
        return merge(out, ShotPlan.from_json(plan)) if plan else out
    finally:
        if owned:
            jr.close()


def sample_sync(
    fleet: PoolLike,
    circuits: Sequence[QuantumCircuit],
    shots: Shots | Sequence[Shots] = 1024,
    policy: str = "balanced",
    **options: Any,
) -> SampleResult:
    """:func:`sample` from synchronous code (scripts, notebooks with a running loop)."""
    return _in_thread(sample(fleet, circuits, shots, policy, **options))


def run_sync(
    fleet: PoolLike, jobs: Sequence[Any], policy: str = "balanced", **options: Any
) -> SampleResult:
    """:func:`run` from synchronous code."""
    return _in_thread(run(fleet, jobs, policy, **options))


def resume_sync(fleet: PoolLike, run_id: str, **options: Any) -> SampleResult:
    """:func:`resume` from synchronous code."""
    return _in_thread(resume(fleet, run_id, **options))
