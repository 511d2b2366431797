"""Correcting sub-experiments per device and knitting them: the mitigation stage's side of
an estimate (the pipeline, :mod:`multiqpu.pipeline`, plans, runs and allocates shots).

    per (sub-experiment, device) shard: readout-corrected column means per noise scale,
    zero-noise fit -> shards of a sub-experiment averaged -> knit (cutting) -> values ±
    errors, for every stage of the correction ("unmitigated", "readout", "mitigated")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.mitigation._options import MitigationSpec

if TYPE_CHECKING:
    import numpy as np

    from multiqpu.cutting._experiments import CutProblem
    from multiqpu.mitigation._execute import EngineReport, Shard
    from multiqpu.mitigation._readout import ParamKey
    from multiqpu.mitigation._results import MitigatedEstimate
    from multiqpu.mitigation._uncertainty import ColumnStats

__all__ = ["StageStats", "corrected_stats", "engine_name", "knit_stages", "mitigated_result"]

#: Per stage name, per sub-experiment: its corrected column statistics.
StageStats = Mapping[str, Mapping[int, "ColumnStats"]]


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


def corrected_stats(
    problem: CutProblem, shards: Sequence[Shard], spec: MitigationSpec
) -> tuple[dict[str, dict[int, ColumnStats]], dict[ParamKey, float], int, int]:
    """Per stage, per sub-experiment: its shards' corrected column stats, averaged with
    their shots as weights; the calibration parameters' variances; fits; fit fallbacks."""
    from multiqpu.mitigation._uncertainty import combine

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
    out = {
        name: {
            i: combine([st[name] for _, st in parts], [s.raw_shots for s, _ in parts])
            for i, parts in per_index.items()
        }
        for name in names
    }
    return out, variances, fits, fallbacks


def knit_stages(
    problem: CutProblem,
    stages: Mapping[str, Mapping[int, ColumnStats]],
    variances: Mapping[ParamKey, float],
    replicates: int,
    seed: int,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Per stage: knitted values, data standard errors, calibration standard errors, shots."""
    from multiqpu.mitigation._uncertainty import knit

    out = {}
    for name, per_circuit in stages.items():
        use_var = variances if name != "unmitigated" else {}
        values, data_se, cal_se = knit(
            problem, per_circuit, use_var, replicates=replicates, seed=seed
        )
        shots = sum(int(st.shots) for st in per_circuit.values())
        out[name] = (values, data_se, cal_se, shots)
    return out


def mitigated_result(
    the_plan: Any,
    problem: CutProblem,
    shots_base: int,
    stages: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]],
    engine: EngineReport,
    spec: MitigationSpec,
    fits: int,
    fallbacks: int,
    wall_s: float,
    post_s: float,
    pilot_shots: int = 0,
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
        shots_base=shots_base,
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
        engine=engine_name(engine),
        sampling_overhead=overhead,
        plan=the_plan,
        pilot_shots=pilot_shots,
        scheduler_reports=tuple(r for ex in engine.executions for r in ex.reports if r is not None),
    )
    return MitigatedEstimate(
        values=final.values,
        std_errors=final.std_errors,
        labels=problem.observables.labels,
        report=report,
        stages=stage_objs,
    )


def engine_name(engine: EngineReport) -> str:
    names = {ex.engine for ex in engine.executions}
    return (
        "scheduler"
        if names == {"scheduler"}
        else ("stand-in" if "scheduler" not in names else "mixed")
    )
