"""Estimates and distributions: plan, run the sub-experiments across the pool, correct
them per device (the stage), knit. One loop for every stage, mitigated or not.

Shots follow the quasi-probability weights (qiskit-addon-cutting issue #532) and then the
variance. A pilot stage (a tenth of the budget, in proportion to each circuit's total
|coefficient|) measures, for every circuit, how much one of its shots moves the answer
(``g^T Cov g``: the gradient of the estimate times the circuit's covariance, after the
stage's correction); the rest of the budget is spread in proportion to its square root
(Neyman allocation), which cuts the variance several-fold against weights alone. The
pilot's data only steer the allocation and are left out of the estimate (sample
splitting): reusing them would bias the pooled means, because a circuit's own pilot would
decide how many more shots it gets. With a ``precision`` target the pilot is small and the
main stage is sized, and topped up, until the standard error reaches it.

Shots are counted in *base* shots, what an unmitigated run spends: a mitigation stage
multiplies them (noise scales, calibration) and its per-shot variances are per base shot,
so the same allocation and sizing serve both.

Everything CPU-heavy (cut finding, circuit generation, folding results, reconstruction)
runs in worker threads; results are folded in as each batch lands.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.cutting._experiments import allocate_shots
from multiqpu.cutting._ladder import on_ladder
from multiqpu.cutting._planner import CutMode, minimum_shots
from multiqpu.cutting._planning import DEFAULT_SHOTS, plan_async
from multiqpu.errors import InvalidInputError
from multiqpu.pipeline._execute import Task, request_progress
from multiqpu.pipeline._stages import (
    Accumulator,
    EstimateRun,
    IdentityStage,
    RunContext,
    stage_for,
)
from multiqpu.pool import PoolLike, as_pool

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

    from multiqpu.cutting._experiments import CutProblem
    from multiqpu.cutting._plan import CutLimits, CutPlan
    from multiqpu.cutting._reconstruct import Stats
    from multiqpu.cutting._results import DistributionResult, EstimateResult
    from multiqpu.engine import Engine
    from multiqpu.mitigation._results import MitigatedEstimate
    from multiqpu.pipeline._combine import SplitEstimate
    from multiqpu.pool import DevicePool
    from multiqpu.trust import Trust

__all__ = ["distribution", "estimate", "plan"]

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


def _tasks(problem: CutProblem, indices: Sequence[int], shots: Sequence[int | None]) -> list[Task]:
    return [
        Task(i, problem.experiments[i].circuit, s)
        for i, s in zip(indices, shots, strict=True)
        if s is None or s > 0
    ]


async def _execute(
    ctx: RunContext, stage_run: EstimateRun, *, adaptive: bool
) -> tuple[Accumulator, int, int]:
    """Run the sub-experiments; returns the accumulator whose statistics make the estimate,
    the number of stages and the pilot's shots (0 without a pilot)."""
    import numpy as np

    problem, the_plan = ctx.problem, ctx.plan
    run = stage_run.accumulator()
    idx = [i for i, e in enumerate(problem.experiments) if not e.trivial]
    if not idx:
        return run, 0, 0

    async def go(into: Accumulator, shots: Sequence[int | None]) -> None:
        await into.run(_tasks(problem, idx, shots))

    if the_plan.shots is None:
        await go(run, [None] * len(idx))
        return run, 1, 0

    weights = np.array([problem.experiments[i].weight for i in idx])
    total = int(the_plan.shots)
    minimum = minimum_shots(total, len(idx))
    precision = the_plan.precision
    # A pilot steers the allocation over the sub-experiments and sizes a precision target;
    # one sub-experiment and no target leave it nothing to do but discard shots.
    staged = (
        adaptive
        and problem.observables is not None
        and total >= _STAGED_SHOTS_PER_CIRCUIT * len(idx)
        and (len(idx) > 1 or precision is not None)
    )
    if not staged:
        await go(run, allocate_shots(weights, total, minimum=minimum).tolist())
        return run, 1, 0

    # Pilot: shots in proportion to the weights; its data only steer the allocation.
    fraction = _PILOT_FRACTION if precision is None else _PRECISION_PILOT_FRACTION
    pilot_total = int(min(total * _PILOT_MAX_FRACTION,
                          max(_PILOT_SHOTS_PER_CIRCUIT * len(idx), total * fraction)))  # fmt: skip
    pilot = stage_run.accumulator()
    await go(pilot, allocate_shots(weights, pilot_total, minimum=2).tolist())
    shape, per_shot = await asyncio.to_thread(_neyman, problem, pilot.stats(), idx, weights)
    budget = total - pilot.spent
    if precision is None:
        main = budget
    else:
        # sum_c per_shot_c / n_c <= target^2 with n_c = N shape_c / sum(shape)
        target = precision / _PRECISION_MARGIN
        need = float(shape.sum() * np.sum(per_shot / shape)) / target**2
        main = int(min(budget, max(math.ceil(need), minimum * len(idx))))
    # on a ladder of counts: sub-experiments sharing a count share jobs (multiqpu.cutting._ladder)
    have = on_ladder(allocate_shots(shape, main, minimum=minimum), minimum=minimum)
    await go(run, have.tolist())
    stages = 2
    while precision is not None and stages < _MAX_STAGES and run.spent < budget:
        # Top up with the same (pilot-based) allocation until the error is reached.
        errors = await asyncio.to_thread(run.errors)
        ratio = float(np.max(errors)) / precision
        if ratio <= 1.0:
            break
        more = min(budget - run.spent, math.ceil(run.spent * (ratio**2 * _PRECISION_MARGIN - 1)))
        extra = on_ladder(allocate_shots(shape, more, already=have))
        if extra.sum() == 0:
            break
        await go(run, extra.tolist())
        have = have + extra
        stages += 1
    return run, stages, pilot.spent


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


def plan(
    fleet: PoolLike,
    circuit: QuantumCircuit,
    observables: Any = None,
    *,
    mitigation: Any = None,
    **options: Any,
) -> CutPlan:
    """What :func:`estimate` would do with these arguments, without submitting anything
    (see :func:`multiqpu.cutting.plan`); with ``mitigation`` a precision target's shot
    bound allows for the stage's extra variance, as :func:`estimate` does."""
    from multiqpu.cutting._planning import plan as cut_plan

    stage = stage_for(mitigation)
    stage.check(shots=options.get("shots", DEFAULT_SHOTS), precision=options.get("precision"))
    for name in ("policy", "adaptive", "use_scheduler", "replicates", "engine"):
        options.pop(name, None)  # run-time options: the plan is the same whatever they are
    rule = options.pop("placement", None)
    if rule is not None:  # planned on the devices the rule allows, as estimate runs
        fleet = _restricted(as_pool(fleet), rule)
    return cut_plan(fleet, circuit, observables, variance_factor=stage.variance_factor,
                    **options)  # fmt: skip


async def estimate(
    fleet: PoolLike,
    circuit: QuantumCircuit,
    observables: Any,
    *,
    mitigation: Any = None,
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
    replicates: int = 200,
    split_shots: bool | str = "auto",
    engine: Engine | str | None = None,
    placement: Any = None,
    trust: Trust | bool | None = None,
) -> EstimateResult | MitigatedEstimate | SplitEstimate:
    """Expectation values of ``observables`` on ``circuit``'s output state, each with a
    standard error, cutting the circuit when no device of ``fleet`` fits it, every result
    corrected on the device that produced it when ``mitigation`` is given (a
    :class:`~multiqpu.mitigation.MitigatedEstimate` then, else an
    :class:`~multiqpu.cutting.EstimateResult`).

    See :meth:`multiqpu.Fleet.estimate` for the arguments; ``replicates``: parametric
    bootstrap draws for the readout calibration's error (mitigation only). ``split_shots``:
    True shares the shots among the devices that hold the circuit uncut, estimates on each
    (mitigated there) and combines the values with inverse-variance weights (a
    :class:`~multiqpu.pipeline.SplitEstimate`, see docs/shots.md); "auto" does so when
    ``policy="fastest"`` and two or more devices hold the circuit uncut. ``engine``:
    where simulation, folding and reconstruction run (:mod:`multiqpu.engine`; default:
    ``$MULTIQPU_ENGINE``, the config file, else in-process). ``placement``: a data
    placement rule (:class:`multiqpu.Placement` or a config rule's name): fragments,
    calibrations and split shots go only to the devices it allows (docs/trust.md).
    ``trust``: canary checks and quarantine in every scheduler run (:class:`multiqpu.Trust`,
    True for the defaults; not with ``split_shots``; see docs/trust.md)."""
    from multiqpu.engine import get_engine

    stage = stage_for(mitigation)
    the_engine = get_engine(engine)
    stage.check(shots=shots, precision=precision)
    if observables is None:
        raise InvalidInputError("estimate needs observables (Pauli strings or a SparsePauliOp)")
    pool = as_pool(fleet)
    if placement is not None:
        pool = _restricted(pool, placement)
    if _splits(split_shots, pool, circuit, policy, shots, precision, cut):
        if trust:
            raise InvalidInputError("trust= does not apply to split_shots estimates yet")
        from multiqpu.pipeline._combine import estimate_split

        return await estimate_split(
            pool, circuit, observables, shots=shots, precision=precision, seed=seed,
            mitigation=mitigation, policy=policy, max_fragment_qubits=max_fragment_qubits,
            gate_cuts=gate_cuts, wire_cuts=wire_cuts, adaptive=adaptive, limits=limits,
            use_scheduler=use_scheduler, replicates=replicates, engine=the_engine,
        )  # fmt: skip
    t0 = time.perf_counter()
    the_plan, problem = await plan_async(
        pool, circuit, observables, shots=shots, precision=precision, cut=cut,
        max_fragment_qubits=max_fragment_qubits, gate_cuts=gate_cuts, wire_cuts=wire_cuts,
        limits=limits, seed=seed, variance_factor=stage.variance_factor,
    )  # fmt: skip
    the_plan.check()
    assert problem is not None and problem.observables is not None
    # Planned on the pool as given; run with its simulators offloaded to the engine.
    ctx = RunContext(the_engine.offload(pool), the_plan, problem, policy, use_scheduler,
                     seed or 0, replicates, t0, engine=the_engine,
                     options={} if not trust else {"trust": trust})  # fmt: skip
    stage_run = stage.estimate_run(ctx)
    with request_progress(pool):
        main, stages, pilot = await _execute(ctx, stage_run, adaptive=adaptive)
    result: EstimateResult | MitigatedEstimate = await stage_run.finish(
        main, stages=stages, pilot_shots=pilot
    )
    return result


def _restricted(pool: DevicePool, rule: Any) -> DevicePool:
    """The devices a placement rule (or a config rule's name) allows (docs/trust.md)."""
    from multiqpu.placement import resolve_placement

    placement = resolve_placement(rule)
    assert placement is not None
    return placement.restrict(pool)


def _splits(
    split: Any,
    pool: DevicePool,
    circuit: QuantumCircuit,
    policy: str,
    shots: int | None,
    precision: float | None,
    cut: Any,
) -> bool:
    """Whether an estimate shares its shots among devices (``split_shots``)."""
    from multiqpu.scheduler._shots import check_split

    mode = check_split(split)
    if mode is False:
        return False
    if mode is True:
        return True
    uncut = sum(d.num_qubits >= circuit.num_qubits for d in pool)
    sampled = shots is not None or precision is not None
    return policy == "fastest" and uncut >= 2 and sampled and cut in ("auto", "never")


async def distribution(
    fleet: PoolLike,
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
    mitigation: Any = None,
    engine: Engine | str | None = None,
    placement: Any = None,
) -> DistributionResult:
    """The output distribution of ``circuit`` over ``qubits`` (default: the qubits it
    measures, or all), knitted from fragment distributions when the circuit is cut
    (CutQC's method, with the quasi-probability decomposition's terms), with a standard
    error per outcome. Meant for modest output widths (``CutLimits.max_output_qubits``).
    ``placement``: a data placement rule, as for :func:`estimate`."""
    from multiqpu.cutting._plan import CutLimits
    from multiqpu.cutting._reconstruct import reconstruct_distribution
    from multiqpu.cutting._results import DistributionResult
    from multiqpu.engine import get_engine

    # Knitted distributions are built from raw counts: only the identity stage serves them.
    stage_for(mitigation).check(shots=shots, precision=None, distribution=True)
    pool = as_pool(fleet)
    if placement is not None:
        pool = _restricted(pool, placement)
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
        pool, circuit, None, shots=shots, cut=cut, max_fragment_qubits=max_fragment_qubits,
        gate_cuts=gate_cuts, wire_cuts=wire_cuts, limits=lim, seed=seed,
        measured_qubits=measured,
    )  # fmt: skip
    the_plan.check()
    assert problem is not None
    the_engine = get_engine(engine)
    ctx = RunContext(the_engine.offload(pool), the_plan, problem, policy, use_scheduler,
                     seed or 0, started=t0, engine=the_engine)  # fmt: skip
    stage_run = IdentityStage().estimate_run(ctx)
    with request_progress(pool):
        run, stages, pilot = await _execute(ctx, stage_run, adaptive=False)
    t1 = time.perf_counter()
    probs, errs = await asyncio.to_thread(reconstruct_distribution, problem, run.stats(), measured)
    recon = time.perf_counter() - t1
    probs.setflags(write=False)
    errs.setflags(write=False)
    report = stage_run.report(run, stages, pilot, recon)  # type: ignore[arg-type]
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
