"""Correction stages: what the pipeline does between execution and recombination.

Every job goes ``request -> plan -> schedule and execute -> per-device correction ->
recombine``. The correction is a :class:`CorrectionStage`: :class:`IdentityStage` when no
mitigation is asked for (results are folded as they land, exactly as they came), the
mitigation stage (:class:`multiqpu.mitigation.MitigationStage`) otherwise, which adds its
own circuits per device (readout calibration, folded and twirled copies) after the
placement run and corrects every result on the device that produced it.

The pipeline drives a stage through three small objects:

* :class:`RunContext`: the request as planned (pool, plan, problem, policy, ...);
* an :class:`EstimateRun` (``stage.estimate_run(ctx)``): makes :class:`Accumulator` s and
  builds the result from the one that holds the estimate;
* an :class:`Accumulator`: runs batches of sub-experiments (``await acc.run(tasks)``) and
  holds their corrected statistics (``acc.stats()``, the cutting layer's sufficient
  statistics, for allocation and knitting; ``acc.errors()``, the standard errors now).

A pilot stage runs into its own accumulator (its data only steer the allocation), the main
stage and its top-ups into another; the same loop serves every stage.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from multiqpu.errors import InvalidInputError
from multiqpu.pipeline._execute import Execution, Task, run_tasks

if TYPE_CHECKING:
    import numpy as np

    from multiqpu.cutting._experiments import CutProblem
    from multiqpu.cutting._plan import CutPlan
    from multiqpu.cutting._reconstruct import Stats
    from multiqpu.cutting._results import CuttingReport, ErrorShare, EstimateResult
    from multiqpu.device import CircuitResult
    from multiqpu.engine import Engine
    from multiqpu.pool import DevicePool

__all__ = [
    "Accumulator",
    "CorrectionStage",
    "EstimateRun",
    "IdentityStage",
    "RunContext",
    "stage_for",
]


@dataclass
class RunContext:
    """One planned estimate: what every stage needs to run and report it."""

    pool: DevicePool
    plan: CutPlan
    problem: CutProblem
    policy: str = "balanced"
    use_scheduler: bool | None = None
    seed: int = 0
    replicates: int = 200  # bootstrap draws for calibration errors (mitigation)
    started: float = field(default_factory=time.perf_counter)
    #: where folding and reconstruction run (multiqpu.engine; ``pool``'s simulators are
    #: already offloaded to it); None: in-process
    engine: Engine | None = None
    #: more scheduler options for every run (e.g. ``trust``; see multiqpu.scheduler.Options)
    options: Mapping[str, Any] = field(default_factory=dict)


class Accumulator(Protocol):
    """Corrected statistics of the sub-experiments run into it so far."""

    #: base shots run so far (what an unmitigated run would have spent on them)
    spent: int

    async def run(self, tasks: Sequence[Task]) -> None: ...

    def stats(self) -> Stats: ...

    def errors(self) -> np.ndarray: ...


class EstimateRun(Protocol):
    """A stage's side of one estimate."""

    def accumulator(self) -> Accumulator: ...

    async def finish(self, main: Accumulator, *, stages: int, pilot_shots: int) -> Any: ...


class CorrectionStage(Protocol):
    """Per-device correction between execution and recombination."""

    @property
    def name(self) -> str: ...

    @property
    def variance_factor(self) -> float:
        """A generous bound on how many times the stage multiplies a shot's variance (it
        sizes a precision target's shot budget; the run itself measures the variances)."""
        ...

    def check(
        self, *, shots: int | None, precision: float | None, distribution: bool = False
    ) -> None:
        """Refuse, up front and saying why, a request the stage cannot serve."""
        ...

    def estimate_run(self, ctx: RunContext) -> EstimateRun: ...

    async def sample(
        self, pool: DevicePool, circuits: Any, shots: Any, policy: str, options: dict[str, Any]
    ) -> Any: ...


# ---------------------------------------------------------------------- identity
class _Folded:
    """Raw results folded into sufficient statistics from worker threads, as they land."""

    def __init__(self, run: _IdentityRun) -> None:
        from multiqpu.cutting._reconstruct import Stats

        self.run_ = run
        self.problem = run.ctx.problem
        self._stats = Stats.empty(self.problem)
        self.lock = threading.Lock()
        self.cpu_s = 0.0
        self.spent = 0
        #: sub-experiment -> device -> shots it ran there (for the error budget)
        self.device_shots: dict[int, dict[str, float]] = {}

    def fold(self, batch: list[tuple[Task, str, CircuitResult]]) -> None:
        t0 = time.perf_counter()
        with self.lock:
            for task, device, result in batch:
                self._stats.add(self.problem, task.index, result)
                self.spent += task.shots or 0
                where = self.device_shots.setdefault(task.index, {})
                n = float("inf") if task.shots is None else float(task.shots)
                where[device] = where.get(device, 0.0) + n
            self.cpu_s += time.perf_counter() - t0

    async def on_results(self, batch: list[tuple[Task, str, CircuitResult]]) -> None:
        engine = self.run_.ctx.engine
        if engine is None or not engine.remote:
            await asyncio.to_thread(self.fold, batch)
            return
        # A reconstruction chunk as an engine task; the merge is cheap and stays here.
        from multiqpu.cutting._reconstruct import partials

        t0 = time.perf_counter()
        parts = await engine.call(
            partials, self.run_.fold_table(), [(t.index, r) for t, _, r in batch]
        )
        with self.lock:
            for (index, part), (task, _, _) in zip(parts, batch, strict=True):
                if part is not None:
                    self._stats.merge(self.problem, index, part)
                self.spent += task.shots or 0
            self.cpu_s += time.perf_counter() - t0

    async def run(self, tasks: Sequence[Task]) -> None:
        ctx = self.run_.ctx
        await run_tasks(
            ctx.pool, tasks, self.on_results, execution=self.run_.execution,
            policy=ctx.policy, use_scheduler=ctx.use_scheduler, options=ctx.options,
        )  # fmt: skip

    def stats(self) -> Stats:
        return self._stats

    def errors(self) -> np.ndarray:
        from multiqpu.cutting._reconstruct import reconstruct_expectations

        return reconstruct_expectations(self.problem, self._stats)[1]


class _IdentityRun:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.execution = Execution()
        self._problem: Any = None

    def fold_table(self) -> Any:
        """What folding needs of the problem, shipped to the engine once (an object-store
        handle on Ray)."""
        if self._problem is None:
            from multiqpu.cutting._reconstruct import FoldTable

            assert self.ctx.engine is not None
            self._problem = self.ctx.engine.put(FoldTable.of(self.ctx.problem))
        return self._problem

    def accumulator(self) -> _Folded:
        return _Folded(self)

    def report(self, main: _Folded, stages: int, pilot_shots: int, recon_s: float) -> CuttingReport:
        from multiqpu.cutting._results import CuttingReport, DeviceUsage

        plan, execution = self.ctx.plan, self.execution
        devices = tuple(
            DeviceUsage(device=d, circuits=row[0], shots=row[1], jobs=row[2])
            for d, row in sorted(execution.per_device.items())
            if row[0] or row[2]
        )
        return CuttingReport(
            plan=plan,
            devices=devices,
            shots=None if plan.shots is None else main.spent + pilot_shots,
            pilot_shots=pilot_shots,
            subexperiments=plan.subexperiments,
            stages=stages,
            wall_s=time.perf_counter() - self.ctx.started,
            execution_s=execution.wall_s,
            reconstruction_s=main.cpu_s + recon_s,
            engine=execution.engine,
            scheduler_reports=tuple(r for r in execution.reports if r is not None),
        )

    async def finish(self, main: Accumulator, *, stages: int, pilot_shots: int) -> EstimateResult:
        from multiqpu.cutting._reconstruct import reconstruct_expectations
        from multiqpu.cutting._results import EstimateResult

        assert isinstance(main, _Folded)
        problem = self.ctx.problem
        assert problem.observables is not None
        t1 = time.perf_counter()
        # On the driver: one call on the folded statistics (BLAS in a Ray worker runs on
        # one thread and may sum in another order: the last bits of the value would differ).
        values, errors = await asyncio.to_thread(reconstruct_expectations, problem, main.stats())
        budget = await asyncio.to_thread(_budget, problem, main)
        report = replace(
            self.report(main, stages, pilot_shots, time.perf_counter() - t1), error_budget=budget
        )
        return EstimateResult(
            values=tuple(float(v) for v in values),
            std_errors=tuple(float(s) for s in errors),
            labels=problem.observables.labels,
            report=report,
        )


def _budget(problem: CutProblem, main: _Folded) -> tuple[ErrorShare, ...]:
    from multiqpu.cutting._reconstruct import error_budget
    from multiqpu.cutting._results import ErrorShare

    rows = error_budget(problem, main.stats(), main.device_shots)
    return tuple(ErrorShare(f, d, tuple(float(x) for x in v)) for f, d, v in rows)


@dataclass(frozen=True)
class IdentityStage:
    """No mitigation: results are used as they came (folded as they land)."""

    name: str = "identity"
    variance_factor: float = 1.0

    def check(
        self, *, shots: int | None, precision: float | None, distribution: bool = False
    ) -> None:
        return None

    def estimate_run(self, ctx: RunContext) -> _IdentityRun:
        return _IdentityRun(ctx)

    async def sample(
        self, pool: DevicePool, circuits: Any, shots: Any, policy: str, options: dict[str, Any]
    ) -> Any:
        from multiqpu.scheduler import sample

        if "use_scheduler" in options:
            raise InvalidInputError(
                "use_scheduler applies to estimates and mitigated runs; fleet.sample always "
                "uses the scheduler"
            )
        return await sample(pool, circuits, shots, policy, **options)


def stage_for(mitigation: Any) -> CorrectionStage:
    """The stage for a ``mitigation=`` argument: None is the identity; anything else
    (an option, a list of them, even an empty list) the mitigation stage."""
    if mitigation is None:
        return IdentityStage()
    from multiqpu.mitigation._stage import MitigationStage

    return MitigationStage.of(mitigation)
