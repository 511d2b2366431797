"""The async orchestration: plan, run the sub-experiments across the fleet, knit.

Shots follow the quasi-probability weights (qiskit-addon-cutting issue #532) and then the
variance. A pilot stage (a tenth of the budget, in proportion to each circuit's total
|coefficient|) measures, for every circuit, how much one of its shots moves the answer
(``g^T Cov g``: the gradient of the estimate times the circuit's covariance); the rest of
the budget is spread in proportion to its square root (Neyman allocation), which cuts the
variance several-fold against weights alone. The pilot's data only steer the allocation
and are left out of the estimate (sample splitting): reusing them would bias the pooled
means, because a circuit's own pilot would decide how many more shots it gets. With a
``precision`` target the pilot is small and the main stage is sized, and topped up, until
the standard error reaches it.

Everything CPU-heavy (cut finding, circuit generation, folding results, reconstruction)
runs in worker threads; results are folded in as each batch lands.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.cutting._experiments import allocate_shots
from multiqpu.cutting._observables import normalize_observables
from multiqpu.cutting._plan import CutLimits, CutPlan
from multiqpu.cutting._planner import CutMode, PlanOptions, make_plan, minimum_shots
from multiqpu.cutting._reconstruct import Stats, reconstruct_distribution, reconstruct_expectations
from multiqpu.cutting._results import CuttingReport, DeviceUsage, DistributionResult, EstimateResult
from multiqpu.cutting._runner import Execution, Task, run_tasks
from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

    from multiqpu.cutting._experiments import CutProblem
    from multiqpu.device import CircuitResult, Device

__all__ = ["DEFAULT_SHOTS", "distribution", "estimate", "plan", "plan_async"]

#: Total shots over all sub-experiments when the caller gives none.
DEFAULT_SHOTS = 100_000
_PILOT_FRACTION = 0.1
_PRECISION_PILOT_FRACTION = 0.01
_PILOT_MAX_FRACTION = 0.3
_PILOT_SHOTS_PER_CIRCUIT = 64
#: A pilot stage only pays off with at least this many shots per sub-experiment.
_STAGED_SHOTS_PER_CIRCUIT = 500
#: Share of the main stage that follows the prior weights whatever the pilot says.
_DEFENSIVE = 0.25
#: Aim this much below a precision target (the variances are themselves estimates).
_PRECISION_MARGIN = 1.05
_MAX_STAGES = 4
_QUEUE_TIMEOUT_S = 5.0


async def _waits(devices: Sequence[Device]) -> dict[str, float | None]:
    async def one(d: Device) -> float | None:
        try:
            q = await asyncio.wait_for(d.queue_estimate(), _QUEUE_TIMEOUT_S)
        except Exception:  # a queue report is a nicety for the time estimate
            return None
        return q.expected_wait_s

    values = await asyncio.gather(*(one(d) for d in devices))
    return {d.spec: v for d, v in zip(devices, values, strict=True)}


def _options(
    shots: int | None,
    precision: float | None,
    cut: CutMode,
    max_fragment_qubits: int | None,
    gate_cuts: bool,
    wire_cuts: bool,
    limits: CutLimits | None,
    seed: int | None,
) -> PlanOptions:
    if shots is None and precision is not None:
        raise InvalidInputError("precision applies to sampled runs; shots=None is already exact")
    return PlanOptions(
        shots=shots,
        precision=precision,
        cut=cut,
        max_fragment_qubits=max_fragment_qubits,
        gate_cuts=gate_cuts,
        wire_cuts=wire_cuts,
        seed=seed,
        limits=limits or CutLimits(),
    )


async def plan_async(
    fleet: Any,
    circuit: QuantumCircuit,
    observables: Any = None,
    *,
    shots: int | None = DEFAULT_SHOTS,
    precision: float | None = None,
    cut: CutMode = "auto",
    max_fragment_qubits: int | None = None,
    gate_cuts: bool = True,
    wire_cuts: bool = True,
    limits: CutLimits | None = None,
    seed: int | None = 0,
    measured_qubits: Sequence[int] | None = None,
) -> tuple[CutPlan, CutProblem | None]:
    """The plan and, unless refused, the problem to run (nothing is submitted)."""
    options = _options(shots, precision, cut, max_fragment_qubits, gate_cuts, wire_cuts, limits,
                       seed)  # fmt: skip
    devices = list(fleet)
    if not devices:
        raise InvalidInputError("the fleet has no devices")
    obs = None
    if observables is not None:
        obs = normalize_observables(observables, circuit.num_qubits)
    waits = await _waits(devices)
    return await asyncio.to_thread(
        make_plan, devices, waits, circuit, obs, options, measured_qubits=measured_qubits
    )


def plan(fleet: Any, circuit: QuantumCircuit, observables: Any = None, **options: Any) -> CutPlan:
    """Synchronous :func:`plan_async` returning only the :class:`CutPlan` (safe to call
    inside a running event loop: it then works in a helper thread)."""
    coro_factory = lambda: plan_async(fleet, circuit, observables, **options)  # noqa: E731
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())[0]
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["out"] = asyncio.run(coro_factory())[0]
        except BaseException as exc:  # re-raised in the caller's thread
            box["err"] = exc

    thread = threading.Thread(target=work, name="multiqpu-plan")
    thread.start()
    thread.join()
    if "err" in box:
        raise box["err"]
    return box["out"]


class _Run:
    """Stats of one run, folded from worker threads, with timing."""

    def __init__(self, problem: CutProblem) -> None:
        self.problem = problem
        self.stats = Stats.empty(problem)
        self.lock = threading.Lock()
        self.cpu_s = 0.0
        self.spent = 0

    def fold(self, batch: list[tuple[Task, str, CircuitResult]]) -> None:
        t0 = time.perf_counter()
        with self.lock:
            for task, _, result in batch:
                self.stats.add(self.problem, task.index, result)
                self.spent += task.shots or 0
            self.cpu_s += time.perf_counter() - t0

    async def on_results(self, batch: list[tuple[Task, str, CircuitResult]]) -> None:
        await asyncio.to_thread(self.fold, batch)


def _tasks(problem: CutProblem, indices: Sequence[int], shots: Sequence[int | None]) -> list[Task]:
    return [
        Task(i, problem.experiments[i].circuit, s)
        for i, s in zip(indices, shots, strict=True)
        if s is None or s > 0
    ]


async def _execute(
    fleet: Any,
    problem: CutProblem,
    the_plan: CutPlan,
    *,
    adaptive: bool,
    policy: str,
    use_scheduler: bool | None,
) -> tuple[_Run, Execution, int, int]:
    """Run the sub-experiments; returns the run whose statistics make the estimate, the
    execution record, the number of stages and the pilot's shots (0 without a pilot)."""
    import numpy as np

    run = _Run(problem)
    execution = Execution()
    idx = [i for i, e in enumerate(problem.experiments) if not e.trivial]
    if not idx:
        return run, execution, 0, 0

    async def go(into: _Run, shots: Sequence[int | None]) -> None:
        await run_tasks(
            fleet, _tasks(problem, idx, shots), into.on_results, execution=execution,
            policy=policy, use_scheduler=use_scheduler,
        )  # fmt: skip

    if the_plan.shots is None:
        await go(run, [None] * len(idx))
        return run, execution, 1, 0

    weights = np.array([problem.experiments[i].weight for i in idx])
    total = int(the_plan.shots)
    minimum = minimum_shots(total, len(idx))
    precision = the_plan.precision
    staged = (
        adaptive
        and problem.observables is not None
        and total >= _STAGED_SHOTS_PER_CIRCUIT * len(idx)
    )
    if not staged:
        await go(run, allocate_shots(weights, total, minimum=minimum).tolist())
        return run, execution, 1, 0

    # Pilot: shots in proportion to the weights; its data only steer the allocation.
    fraction = _PILOT_FRACTION if precision is None else _PRECISION_PILOT_FRACTION
    pilot_total = int(min(total * _PILOT_MAX_FRACTION,
                          max(_PILOT_SHOTS_PER_CIRCUIT * len(idx), total * fraction)))  # fmt: skip
    pilot = _Run(problem)
    await go(pilot, allocate_shots(weights, pilot_total, minimum=2).tolist())
    shape, per_shot = await asyncio.to_thread(_neyman, problem, pilot.stats, idx, weights)
    budget = total - pilot.spent
    if precision is None:
        main = budget
    else:
        # sum_c per_shot_c / n_c <= target^2 with n_c = N shape_c / sum(shape)
        target = precision / _PRECISION_MARGIN
        need = float(shape.sum() * np.sum(per_shot / shape)) / target**2
        main = int(min(budget, max(math.ceil(need), minimum * len(idx))))
    have = allocate_shots(shape, main, minimum=minimum)
    await go(run, have.tolist())
    stages = 2
    while precision is not None and stages < _MAX_STAGES and run.spent < budget:
        # Top up with the same (pilot-based) allocation until the error is reached.
        _, errors = await asyncio.to_thread(reconstruct_expectations, problem, run.stats)
        ratio = float(np.max(errors)) / precision
        if ratio <= 1.0:
            break
        more = min(budget - run.spent, math.ceil(run.spent * (ratio**2 * _PRECISION_MARGIN - 1)))
        extra = allocate_shots(shape, more, already=have)
        if extra.sum() == 0:
            break
        await go(run, extra.tolist())
        have = have + extra
        stages += 1
    return run, execution, stages, pilot.spent


def _neyman(
    problem: CutProblem, pilot: Stats, idx: Sequence[int], weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Allocation shape from the pilot and per-shot variances for sizing precision targets.

    The shape is a defensive mixture: ``1 - beta`` of the shots follow Neyman
    (sqrt(per-shot variance)), ``beta`` the prior weights, so a pilot that misjudged a
    circuit can cost at most a factor ``1/beta`` in its variance, never starve it."""
    import numpy as np

    per_shot = pilot.per_shot_variance(problem, smoothing=1.0)[list(idx)]
    spread = np.sqrt(per_shot)
    if spread.sum() <= 0:
        return weights, weights**2
    shape = (1 - _DEFENSIVE) * spread / spread.sum() + _DEFENSIVE * weights / weights.sum()
    return shape, per_shot


def _report(
    the_plan: CutPlan,
    run: _Run,
    execution: Execution,
    stages: int,
    pilot: int,
    wall: float,
    recon: float,
) -> CuttingReport:
    devices = tuple(
        DeviceUsage(device=d, circuits=row[0], shots=row[1], jobs=row[2])
        for d, row in sorted(execution.per_device.items())
        if row[0] or row[2]
    )
    return CuttingReport(
        plan=the_plan,
        devices=devices,
        shots=None if the_plan.shots is None else run.spent + pilot,
        pilot_shots=pilot,
        subexperiments=the_plan.subexperiments,
        stages=stages,
        wall_s=wall,
        execution_s=execution.wall_s,
        reconstruction_s=run.cpu_s + recon,
        engine=execution.engine,
        scheduler_reports=tuple(r for r in execution.reports if r is not None),
    )


async def estimate(
    fleet: Any,
    circuit: QuantumCircuit,
    observables: Any,
    *,
    shots: int | None = DEFAULT_SHOTS,
    precision: float | None = None,
    policy: str = "balanced",
    cut: CutMode = "auto",
    max_fragment_qubits: int | None = None,
    gate_cuts: bool = True,
    wire_cuts: bool = True,
    adaptive: bool = True,
    limits: CutLimits | None = None,
    seed: int | None = 0,
    use_scheduler: bool | None = None,
) -> EstimateResult:
    """Expectation values of ``observables`` on ``circuit``'s output state, each with a
    standard error, cutting the circuit when no device of ``fleet`` fits it.

    See :func:`multiqpu.Fleet.estimate` for the arguments.
    """
    t0 = time.perf_counter()
    the_plan, problem = await plan_async(
        fleet, circuit, observables, shots=shots, precision=precision, cut=cut,
        max_fragment_qubits=max_fragment_qubits, gate_cuts=gate_cuts, wire_cuts=wire_cuts,
        limits=limits, seed=seed,
    )  # fmt: skip
    the_plan.check()
    assert problem is not None and problem.observables is not None
    run, execution, stages, pilot = await _execute(
        fleet, problem, the_plan, adaptive=adaptive, policy=policy, use_scheduler=use_scheduler
    )
    t1 = time.perf_counter()
    values, errors = await asyncio.to_thread(reconstruct_expectations, problem, run.stats)
    recon = time.perf_counter() - t1
    report = _report(the_plan, run, execution, stages, pilot, time.perf_counter() - t0, recon)
    return EstimateResult(
        values=tuple(float(v) for v in values),
        std_errors=tuple(float(s) for s in errors),
        labels=problem.observables.labels,
        report=report,
    )


async def distribution(
    fleet: Any,
    circuit: QuantumCircuit,
    *,
    qubits: Sequence[int] | None = None,
    shots: int | None = DEFAULT_SHOTS,
    policy: str = "balanced",
    cut: CutMode = "auto",
    max_fragment_qubits: int | None = None,
    gate_cuts: bool = True,
    wire_cuts: bool = True,
    limits: CutLimits | None = None,
    seed: int | None = 0,
    use_scheduler: bool | None = None,
) -> DistributionResult:
    """The output distribution of ``circuit`` over ``qubits`` (default: the qubits it
    measures, or all), knitted from fragment distributions when the circuit is cut
    (CutQC's method, with the quasi-probability decomposition's terms), with a standard
    error per outcome. Meant for modest output widths (``CutLimits.max_output_qubits``)."""
    t0 = time.perf_counter()
    measured = _measured(circuit) if qubits is None else [int(q) for q in qubits]
    lim = limits or CutLimits()
    if len(measured) > lim.max_output_qubits:
        raise InvalidInputError(
            f"a distribution over {len(measured)} qubits has 2^{len(measured)} entries; the "
            f"bound is {lim.max_output_qubits} qubits (CutLimits(max_output_qubits=...)). "
            "Estimate expectation values instead, or pass fewer qubits"
        )
    if len(set(measured)) != len(measured) or any(
        q < 0 or q >= circuit.num_qubits for q in measured
    ):
        raise InvalidInputError(f"qubits must be distinct qubits of the circuit, got {measured}")
    the_plan, problem = await plan_async(
        fleet, circuit, None, shots=shots, cut=cut, max_fragment_qubits=max_fragment_qubits,
        gate_cuts=gate_cuts, wire_cuts=wire_cuts, limits=lim, seed=seed,
        measured_qubits=measured,
    )  # fmt: skip
    the_plan.check()
    assert problem is not None
    run, execution, stages, pilot = await _execute(
        fleet, problem, the_plan, adaptive=False, policy=policy, use_scheduler=use_scheduler
    )
    t1 = time.perf_counter()
    probs, errs = await asyncio.to_thread(reconstruct_distribution, problem, run.stats, measured)
    recon = time.perf_counter() - t1
    probs.setflags(write=False)
    errs.setflags(write=False)
    report = _report(the_plan, run, execution, stages, pilot, time.perf_counter() - t0, recon)
    return DistributionResult(tuple(measured), probs, errs, report)


def _measured(circuit: QuantumCircuit) -> list[int]:
    """Qubits the circuit measures (in classical-bit order), or all when it measures none."""
    pairs: dict[int, int] = {}
    for inst in circuit.data:
        if inst.operation.name == "measure":
            pairs[circuit.find_bit(inst.clbits[0]).index] = circuit.find_bit(inst.qubits[0]).index
    if not pairs:
        return list(range(circuit.num_qubits))
    return [pairs[c] for c in sorted(pairs)]
