"""Mitigation as a stage of the pipeline (:mod:`multiqpu.pipeline`).

The pipeline plans the request and allocates its shots; this stage runs each batch:

* schedule and execute: the circuits are placed through the scheduler at noise scale 1
  (:func:`~multiqpu.mitigation._execute.run_mitigated`); the device that ran a circuit owns
  it from then on;
* extra circuits per device (:mod:`._extra`): that device's readout calibration circuits
  and each circuit's folded / twirled variants, run on ``pool.subset([device])``;
* correction per device (:mod:`._postprocess` for estimates, :mod:`._sample` for
  per-circuit results): readout-corrected column means per noise scale, one zero-noise fit
  per (circuit, device), then shards averaged and knitted, errors propagated.

For the pipeline's shot allocation (pilot, Neyman shares, precision top-ups) a batch's
corrected statistics are handed over in base-shot units: a sub-experiment that got ``n``
base shots and whose corrected means have covariance ``Sigma`` counts as ``n`` shots of
per-shot covariance ``n Sigma``, so mitigation's extra variance (ZNE's amplification, the
readout inverse) steers the allocation and the sizing of precision targets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError
from multiqpu.mitigation._options import MitigationSpec, resolve

if TYPE_CHECKING:
    import numpy as np

    from multiqpu.cutting._reconstruct import Stats
    from multiqpu.mitigation._execute import Shard
    from multiqpu.mitigation._results import MitigatedEstimate, MitigatedSample
    from multiqpu.pipeline._execute import Task
    from multiqpu.pipeline._stages import Accumulator, RunContext
    from multiqpu.pool import DevicePool

__all__ = ["MitigationStage"]

#: Readout inversion's variance bound for precision budgets: each bit's corrected value is
#: divided by 1 - p10 - p01, about 0.9 on today's devices, for a parity of several bits.
_READOUT_FACTOR = 4.0

#: Why a mitigated sample refuses a scheduler option that a plain one takes.
_PER_RUN = (
    "applies to one scheduler run, and a mitigated run makes several (placement, then each "
    "device's calibration and folded circuits); run without mitigation, or drop it"
)


class _Shards:
    """The shards of the batches run into this accumulator, corrected on demand."""

    def __init__(self, run: _MitigatedRun) -> None:
        self.run_ = run
        self.shards: list[Shard] = []
        self.spent = 0

    async def run(self, tasks: Sequence[Task]) -> None:
        from multiqpu.mitigation._execute import Item, run_mitigated

        ctx = self.run_.ctx
        items = [Item(t.index, t.circuit, int(t.shots or 0)) for t in tasks]
        shards, _ = await run_mitigated(
            ctx.pool, items, self.run_.spec, policy=ctx.policy,
            use_scheduler=ctx.use_scheduler, report=self.run_.engine, options=ctx.options,
        )  # fmt: skip
        self.shards.extend(shards)
        self.spent += sum(it.shots for it in items)

    def _mitigated(self) -> tuple[dict[int, Any], dict[Any, float]]:
        from multiqpu.mitigation._postprocess import corrected_stats

        stages, variances, _, _ = corrected_stats(self.run_.ctx.problem, self.shards,
                                                  self.run_.spec)  # fmt: skip
        return stages["mitigated"], variances

    def stats(self) -> Stats:
        from multiqpu.mitigation._uncertainty import cutting_stats

        per_circuit, _ = self._mitigated()
        base: dict[int, int] = {}
        for s in self.shards:
            base[s.index] = base.get(s.index, 0) + s.raw_shots
        return cutting_stats(self.run_.ctx.problem, per_circuit, shots=base)

    def errors(self) -> np.ndarray:
        import numpy as np

        from multiqpu.mitigation._uncertainty import knit

        ctx = self.run_.ctx
        per_circuit, variances = self._mitigated()
        _, data_se, cal_se = knit(ctx.problem, per_circuit, variances,
                                  replicates=ctx.replicates, seed=ctx.seed)  # fmt: skip
        return np.sqrt(np.square(data_se) + np.square(cal_se))


class _MitigatedRun:
    def __init__(self, ctx: RunContext, spec: MitigationSpec) -> None:
        from multiqpu.mitigation._execute import EngineReport

        self.ctx = ctx
        self.spec = spec
        self.engine = EngineReport()

    def accumulator(self) -> _Shards:
        return _Shards(self)

    async def finish(
        self, main: Accumulator, *, stages: int, pilot_shots: int
    ) -> MitigatedEstimate:
        from multiqpu.mitigation._postprocess import (
            corrected_stats,
            knit_stages,
            mitigated_result,
        )

        assert isinstance(main, _Shards)
        ctx, spec = self.ctx, self.spec

        def post() -> tuple[Any, int, int]:
            per_stage, variances, fits, fallbacks = corrected_stats(ctx.problem, main.shards,
                                                                    spec)  # fmt: skip
            knitted = knit_stages(ctx.problem, per_stage, variances, ctx.replicates, ctx.seed)
            return knitted, fits, fallbacks

        t1 = time.perf_counter()
        knitted, fits, fallbacks = await asyncio.to_thread(post)
        post_s = time.perf_counter() - t1
        return mitigated_result(
            ctx.plan, ctx.problem, main.spent + pilot_shots, knitted, self.engine, spec, fits,
            fallbacks, time.perf_counter() - ctx.started, post_s, pilot_shots,
        )  # fmt: skip


@dataclass(frozen=True)
class MitigationStage:
    """Per-device mitigation (readout, ZNE, twirling) as a pipeline stage."""

    spec: MitigationSpec
    name: str = "mitigation"

    @property
    def variance_factor(self) -> float:
        """Bound on the variance per base shot against a raw outcome's: readout inversion
        (``_READOUT_FACTOR``) times ZNE's extrapolation with its shot split."""
        factor = _READOUT_FACTOR if self.spec.readout is not None else 1.0
        zne = self.spec.zne
        if zne is None:
            return factor
        gamma = zne.make_extrapolator().coefficients(zne.scales)
        if gamma is None:  # non-linear fits: as a polynomial through every point
            from multiqpu.mitigation._zne import extrapolator_for

            gamma = extrapolator_for("richardson", len(zne.scales)).coefficients(zne.scales)
        g = [abs(float(x)) for x in (gamma if gamma is not None else [1.0])]
        if zne.allocation == "equal":  # every scale gets the base shots
            return factor * sum(x * x for x in g)
        # n_j = N S |g_j| / sum|g|: sum g_j^2 / n_j = (sum|g|)^2 / (N S)
        return factor * sum(g) ** 2 / len(g)

    @classmethod
    def of(cls, mitigation: Any) -> MitigationStage:
        """The stage for a ``mitigation=`` argument (an option, a list, a spec)."""
        return cls(resolve(mitigation))

    def check(
        self, *, shots: int | None, precision: float | None, distribution: bool = False
    ) -> None:
        if shots is None:
            raise InvalidInputError(
                "mitigation corrects sampled results from noisy devices; shots=None (exact) "
                "has nothing to mitigate"
            )
        if distribution:
            raise InvalidInputError(
                "knitted output distributions of cut circuits are not mitigated: the "
                "knitting needs raw fragment distributions. Estimate expectation values "
                "with mitigation=..., or sample an uncut circuit with fleet.sample(..., "
                "mitigation=...) for its corrected quasi-distribution"
            )

    def estimate_run(self, ctx: RunContext) -> _MitigatedRun:
        return _MitigatedRun(ctx, self.spec)

    async def sample(
        self, pool: DevicePool, circuits: Any, shots: Any, policy: str, options: dict[str, Any]
    ) -> MitigatedSample:
        """Run ``circuits`` across ``pool`` and correct each on its own device."""
        from multiqpu.mitigation._execute import Item, run_mitigated
        from multiqpu.mitigation._sample import assemble, assemble_on, check_request, finish
        from multiqpu.pipeline._execute import PER_RUN_OPTIONS

        use_scheduler = options.pop("use_scheduler", None)
        engine_ = options.pop("engine", None)  # set by multiqpu.pipeline.sample
        for name in sorted(PER_RUN_OPTIONS & set(options)):
            raise InvalidInputError(f"{name}= {_PER_RUN}")
        circuits, per = check_request(self.spec, circuits, shots)
        t0 = time.perf_counter()
        items = [Item(i, c, s) for i, (c, s) in enumerate(zip(circuits, per, strict=True))]
        shards, engine = await run_mitigated(
            pool, items, self.spec, policy=policy, use_scheduler=use_scheduler, options=options
        )
        t1 = time.perf_counter()
        if engine_ is not None and engine_.remote:  # M3 solves in chunks, as engine tasks
            out = await assemble_on(engine_, len(circuits), shards, self.spec)
        else:
            out = await asyncio.to_thread(assemble, len(circuits), shards, self.spec)
        return finish(out, items, engine, self.spec, time.perf_counter() - t0,
                      time.perf_counter() - t1)  # fmt: skip
