"""Mitigated expectation values, for whole circuits and cut ones alike.

The cutting layer plans the work (no cut when a device fits the circuit: one fragment
whose sub-experiments are the observables' measurement groups) and knits the results;
in between, every sub-experiment is corrected on the device that ran it:

    plan (cutting) -> place + run (scheduler) -> per device: readout calibration, folded /
    twirled circuits -> per (circuit, device): readout-corrected column means per scale,
    zero-noise fit -> shards of a circuit averaged -> knit (cutting) -> values ± errors
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError
from multiqpu.mitigation._options import MitigationSpec, resolve

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

    from multiqpu.cutting._experiments import CutProblem
    from multiqpu.mitigation._execute import EngineReport, Item, Shard
    from multiqpu.mitigation._readout import ParamKey
    from multiqpu.mitigation._results import MitigatedEstimate
    from multiqpu.mitigation._uncertainty import ColumnStats

__all__ = ["estimate"]

DEFAULT_SHOTS = 100_000


async def estimate(
    fleet: Any,
    circuit: QuantumCircuit,
    observables: Any,
    *,
    mitigation: Any,
    shots: int | None = DEFAULT_SHOTS,
    precision: float | None = None,
    policy: str = "balanced",
    cut: str = "auto",
    max_fragment_qubits: int | None = None,
    gate_cuts: bool = True,
    wire_cuts: bool = True,
    adaptive: bool = True,
    limits: Any = None,
    seed: int | None = 0,
    use_scheduler: bool | None = None,
    replicates: int = 200,
) -> MitigatedEstimate:
    """Expectation values of ``observables`` on ``circuit`` with every result corrected on
    the device that produced it (see :meth:`multiqpu.Fleet.estimate`). ``shots`` is what
    the unmitigated run would spend; mitigation adds to it (see the report).
    ``replicates``: parametric-bootstrap draws for the readout calibration's error."""
    from multiqpu.cutting import plan_async
    from multiqpu.cutting._experiments import allocate_shots
    from multiqpu.cutting._planner import minimum_shots
    from multiqpu.mitigation._execute import Item, run_mitigated

    spec = resolve(mitigation)
    if shots is None:
        raise InvalidInputError(
            "mitigation corrects sampled results from noisy devices; shots=None (exact) has "
            "nothing to mitigate"
        )
    if precision is not None:
        raise InvalidInputError(
            "precision targets are not supported with mitigation yet; pass shots (the report "
            "says the standard error reached and the shots mitigation added)"
        )
    t0 = time.perf_counter()
    the_plan, problem = await plan_async(
        fleet, circuit, observables, shots=shots, cut=cut,  # type: ignore[arg-type]
        max_fragment_qubits=max_fragment_qubits, gate_cuts=gate_cuts, wire_cuts=wire_cuts,
        limits=limits, seed=seed,
    )  # fmt: skip
    the_plan.check()
    assert problem is not None and problem.observables is not None
    idx = [i for i, e in enumerate(problem.experiments) if not e.trivial]
    weights = [problem.experiments[i].weight for i in idx]
    import numpy as np

    alloc = allocate_shots(np.asarray(weights), shots, minimum=minimum_shots(shots, len(idx)))
    items = [
        Item(i, problem.experiments[i].circuit, int(n))
        for i, n in zip(idx, alloc, strict=True)
        if n > 0
    ]
    shards, engine = await run_mitigated(
        fleet, items, spec, policy=policy, use_scheduler=use_scheduler
    )
    t1 = time.perf_counter()
    stages, fits, fallbacks = await asyncio.to_thread(
        _postprocess, problem, shards, spec, replicates, seed or 0
    )
    post_s = time.perf_counter() - t1
    return _result(
        the_plan, problem, items, stages, engine, spec, fits, fallbacks,
        time.perf_counter() - t0, post_s,
    )  # fmt: skip


# ---------------------------------------------------------------------- post-processing
def _shard_stats(
    problem: CutProblem, shard: Shard, spec: MitigationSpec
) -> tuple[dict[str, ColumnStats], dict[ParamKey, float], int]:
    """Per stage, this shard's column stats; calibration variances; fit fallbacks."""
    from multiqpu.mitigation._readout import BitModel, bit_model
    from multiqpu.mitigation._uncertainty import column_stats, extrapolated
    from multiqpu.mitigation._zne import DeviceFit

    masks = problem.experiments[shard.index].column_masks
    width = shard.width
    identity = BitModel.identity(width)
    out = {"unmitigated": column_stats(shard.raw, width, masks, identity)}
    if not shard.noisy:
        out["readout"] = out["mitigated"] = out["unmitigated"]
        return out, {}, 0
    model = identity
    if spec.readout is not None and shard.calibration is not None:
        model = bit_model(shard.calibration, shard.clbit_qubits)
    scale1 = shard.counts.get(1.0) or shard.raw
    out["readout"] = column_stats(scale1, width, masks, model)
    fallbacks = 0
    if spec.zne is None:
        out["mitigated"] = out["readout"]
    else:
        fit = DeviceFit(shard.device, spec.zne.make_extrapolator())
        per_scale = {}
        for nominal, counts in shard.counts.items():
            st = column_stats(counts, width, masks, model)
            achieved = shard.achieved.get(nominal, nominal)
            per_scale[achieved] = st
            fit.add(shard.device, achieved, st.mean, st.cov)
        res = fit.result()
        fallbacks = res.fallbacks
        out["mitigated"] = extrapolated(res, [per_scale[s] for s in res.scales])
    return out, dict(model.variances), fallbacks


def _postprocess(
    problem: CutProblem, shards: Sequence[Shard], spec: MitigationSpec, replicates: int, seed: int
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]], int, int]:
    """Per stage: knitted values, data standard errors, calibration standard errors, shots."""
    from multiqpu.mitigation._uncertainty import combine, knit

    variances: dict[ParamKey, float] = {}
    per_index: dict[int, list[tuple[Shard, dict[str, ColumnStats]]]] = {}
    fits = fallbacks = 0
    for shard in shards:
        stats, var, fb = _shard_stats(problem, shard, spec)
        variances.update(var)
        fallbacks += fb
        fits += int(spec.zne is not None and shard.noisy)
        per_index.setdefault(shard.index, []).append((shard, stats))
    names = ["unmitigated", "mitigated"]
    if spec.readout is not None and spec.zne is not None:
        names.insert(1, "readout")
    out = {}
    for name in names:
        per_circuit = {
            i: combine([st[name] for _, st in parts], [s.raw_shots for s, _ in parts])
            for i, parts in per_index.items()
        }
        use_var = variances if name != "unmitigated" else {}
        values, data_se, cal_se = knit(
            problem, per_circuit, use_var, replicates=replicates, seed=seed
        )
        shots = sum(int(st.shots) for st in per_circuit.values())
        out[name] = (values, data_se, cal_se, shots)
    return out, fits, fallbacks


def _result(
    the_plan: Any,
    problem: CutProblem,
    items: Sequence[Item],
    stages: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]],
    engine: EngineReport,
    spec: MitigationSpec,
    fits: int,
    fallbacks: int,
    wall_s: float,
    post_s: float,
) -> MitigatedEstimate:
    from multiqpu.mitigation._results import MitigatedEstimate, MitigationReport, Stage

    assert problem.observables is not None
    stage_objs = {}
    for name, (values, data_se, cal_se, shots) in stages.items():
        se = [
            math.sqrt(float(a) ** 2 + float(b) ** 2) for a, b in zip(data_se, cal_se, strict=True)
        ]
        stage_objs[name] = Stage(
            tuple(float(v) for v in values),
            tuple(se),
            shots,
            tuple(float(v) for v in data_se),
            tuple(float(v) for v in cal_se),
        )
    final, raw = stage_objs["mitigated"], stage_objs["unmitigated"]
    total = engine.shots_placement + engine.shots_mitigation + engine.shots_calibration
    overhead = tuple(
        (m**2 * total) / (r**2 * engine.shots_placement) if r > 0 else float("nan")
        for m, r in zip(final.std_errors, raw.std_errors, strict=True)
    )
    report = MitigationReport(
        mitigation=spec.describe(),
        shots_base=sum(it.shots for it in items),
        shots_placement=engine.shots_placement,
        shots_mitigation=engine.shots_mitigation,
        shots_calibration=engine.shots_calibration,
        calibrations=tuple(engine.calibrations),
        devices={d: (c, s) for d, (c, s) in sorted(engine.per_device.items())},
        fits=fits,
        extrapolation_fallbacks=fallbacks,
        failed_devices=tuple(engine.failed_devices),
        wall_s=wall_s,
        postprocess_s=post_s,
        engine=_engine_name(engine),
        sampling_overhead=overhead,
        plan=the_plan,
        scheduler_reports=tuple(r for ex in engine.executions for r in ex.reports if r is not None),
    )
    return MitigatedEstimate(
        values=final.values,
        std_errors=final.std_errors,
        labels=problem.observables.labels,
        report=report,
        stages=stage_objs,
    )


def _engine_name(engine: EngineReport) -> str:
    names = {ex.engine for ex in engine.executions}
    return (
        "scheduler"
        if names == {"scheduler"}
        else ("stand-in" if "scheduler" not in names else "mixed")
    )
