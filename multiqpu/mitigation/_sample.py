"""Correcting per-circuit results (data shards, QNN batches, anything ``fleet.sample``
runs): the mitigation stage's side of a sample.

Each circuit is placed by the scheduler and corrected on the device that ran it: the
readout-corrected quasi-distribution comes from M3 with that device's calibration of the
qubits it measured; with ZNE, the per-scale quasi-distributions of that device are
extrapolated point by point with the extrapolator's fixed linear weights (a linear map of
the distribution, so every expectation value computed from it is the extrapolated one).
``MitigatedCircuit.expectation`` computes a Z-parity with its standard error the same way
estimates do (per-shot readout correction, per-device fit, calibration error included).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError
from multiqpu.mitigation._options import MitigationSpec

if TYPE_CHECKING:
    from multiqpu.device import CircuitResult
    from multiqpu.engine import Engine
    from multiqpu.mitigation._execute import EngineReport, Shard
    from multiqpu.mitigation._results import MitigatedCircuit, MitigatedSample

__all__ = ["assemble", "assemble_chunk", "assemble_on", "check_request", "finish"]


def check_request(spec: MitigationSpec, circuits: Any, shots: Any) -> tuple[list[Any], list[int]]:
    """The circuits and per-circuit shots of a mitigated sample, or an error saying why not."""
    from qiskit import QuantumCircuit

    if isinstance(circuits, QuantumCircuit):
        raise InvalidInputError("pass a list of circuits, not a single QuantumCircuit")
    circuits = list(circuits)
    if not circuits:
        raise InvalidInputError("no circuits to run")
    if shots is None or (not isinstance(shots, int) and any(s is None for s in shots)):
        raise InvalidInputError(
            "mitigation corrects sampled results; shots=None has nothing to mitigate"
        )
    per = [int(shots)] * len(circuits) if isinstance(shots, int) else [int(s) for s in shots]
    if len(per) != len(circuits):
        raise InvalidInputError(f"{len(per)} shots values for {len(circuits)} circuits")
    if any(s < 2 for s in per):
        raise InvalidInputError("mitigated runs need at least 2 shots per circuit")
    if spec.zne is not None and spec.zne.make_extrapolator().coefficients(spec.zne.scales) is None:
        raise InvalidInputError(
            f"extrapolating distributions needs a linear extrapolator (richardson, linear, "
            f"quadratic); {spec.zne.extrapolator!r} is not. Use fleet.estimate for it"
        )
    return circuits, per


def _quasi(
    shard: Shard, counts: dict[str, int], spec: MitigationSpec
) -> tuple[dict[str, float], float]:
    from multiqpu.mitigation._readout import m3_quasi

    if spec.readout is None or not shard.noisy or shard.calibration is None:
        total = sum(counts.values())
        return {k: v / total for k, v in counts.items()}, 1.0
    return m3_quasi(counts, shard.calibration, shard.clbit_qubits, distance=spec.readout.distance)


def _shard_quasi(shard: Shard, spec: MitigationSpec) -> tuple[dict[str, float], float]:
    import numpy as np

    if spec.zne is None or not shard.noisy:
        return _quasi(shard, shard.counts.get(1.0) or shard.raw, spec)
    scales = sorted(shard.counts, key=lambda s: shard.achieved.get(s, s))
    achieved = [shard.achieved.get(s, s) for s in scales]
    gamma = spec.zne.make_extrapolator().coefficients(achieved)
    assert gamma is not None
    out: dict[str, float] = {}
    readout_overhead = 1.0
    shots = np.array([sum(shard.counts[s].values()) for s in scales], dtype=float)
    for g, s in zip(gamma, scales, strict=True):
        q, over = _quasi(shard, shard.counts[s], spec)
        if s == scales[0]:
            readout_overhead = over
        for k, v in q.items():
            out[k] = out.get(k, 0.0) + float(g) * v
    # variance of sum_j g_j q_j relative to one run with all the shots: sum g_j^2 N / n_j
    zne_factor = float(np.sum(np.asarray(gamma) ** 2 * shots.sum() / shots))
    return out, readout_overhead * zne_factor


def _expectation(shards: list[Shard], spec: MitigationSpec) -> Any:
    def estimator(observable: str | int) -> tuple[float, float]:
        from multiqpu.mitigation._readout import BitModel, bit_model
        from multiqpu.mitigation._uncertainty import (
            calibration_variance,
            column_stats,
            combine,
            extrapolated,
        )
        from multiqpu.mitigation._zne import DeviceFit

        width = shards[0].width
        mask = _mask(observable, width)
        parts = []
        variances: dict[Any, float] = {}
        for shard in shards:
            model = BitModel.identity(width)
            if spec.readout is not None and shard.noisy and shard.calibration is not None:
                model = bit_model(shard.calibration, shard.clbit_qubits)
                variances.update(model.variances)
            if spec.zne is None or not shard.noisy:
                parts.append(column_stats(shard.counts.get(1.0) or shard.raw, width, [mask], model))
                continue
            fit = DeviceFit(shard.device, spec.zne.make_extrapolator())
            per_scale = {}
            for nominal, counts in shard.counts.items():
                st = column_stats(counts, width, [mask], model)
                a = shard.achieved.get(nominal, nominal)
                per_scale[a] = st
                fit.add(shard.device, a, st.mean, st.cov)
            res = fit.result()
            parts.append(extrapolated(res, [per_scale[s] for s in res.scales]))
        st = combine(parts, [s.raw_shots for s in shards])
        var = float(st.cov[0, 0] + calibration_variance(st, variances)[0])
        return float(st.mean[0]), math.sqrt(max(var, 0.0))

    return estimator


def _mask(observable: str | int, width: int) -> int:
    if isinstance(observable, int) and not isinstance(observable, bool):
        if observable < 0 or observable >= 1 << width:
            raise InvalidInputError(f"mask {observable} does not fit {width} classical bits")
        return observable
    if not isinstance(observable, str) or len(observable) != width or set(observable) - {"Z", "I"}:
        raise InvalidInputError(
            f"observable must be a string of {width} 'Z'/'I' characters (bit 0 rightmost) or "
            f"an integer bit mask, got {observable!r}"
        )
    return sum(1 << i for i, ch in enumerate(reversed(observable)) if ch == "Z")


def assemble(
    n: int, shards: Sequence[Shard], spec: MitigationSpec
) -> list[tuple[list[Shard], dict[str, float], float]]:
    return assemble_chunk(_by_circuit(n, shards), spec)


def _by_circuit(n: int, shards: Sequence[Shard]) -> list[list[Shard]]:
    by_index: dict[int, list[Shard]] = {}
    for s in shards:
        by_index.setdefault(s.index, []).append(s)
    out = []
    for i in range(n):
        mine = by_index.get(i)
        if not mine:
            raise RuntimeError(f"no result for circuit {i}")
        out.append(mine)
    return out


def assemble_chunk(
    groups: Sequence[list[Shard]], spec: MitigationSpec
) -> list[tuple[list[Shard], dict[str, float], float]]:
    """The corrected quasi-distributions (M3 solves) of a chunk of circuits, each given by
    its shards: one engine task (multiqpu.engine) or the whole run in-process."""
    out = []
    for mine in groups:
        total = sum(s.raw_shots for s in mine)
        quasi: dict[str, float] = {}
        overhead = 0.0
        for s in mine:
            q, over = _shard_quasi(s, spec)
            w = s.raw_shots / total
            overhead += w * over
            for k, v in q.items():
                quasi[k] = quasi.get(k, 0.0) + w * v
        out.append((mine, quasi, overhead))
    return out


async def assemble_on(
    engine: Engine, n: int, shards: Sequence[Shard], spec: MitigationSpec
) -> list[tuple[list[Shard], dict[str, float], float]]:
    """:func:`assemble` with the M3 solves in chunks, as tasks of ``engine``."""
    groups = _by_circuit(n, shards)
    size = max(1, -(-len(groups) // (2 * engine.workers)))
    spec_ref = engine.put(spec)
    parts = await asyncio.gather(
        *(engine.call(assemble_chunk, groups[k : k + size], spec_ref)
          for k in range(0, len(groups), size))
    )  # fmt: skip
    return [row for part in parts for row in part]


def finish(
    assembled: list[tuple[list[Shard], dict[str, float], float]],
    items: Sequence[Any],
    engine: EngineReport,
    spec: MitigationSpec,
    wall_s: float,
    post_s: float,
) -> MitigatedSample:
    from multiqpu.device import CircuitResult
    from multiqpu.mitigation._postprocess import engine_name
    from multiqpu.mitigation._results import MitigatedCircuit, MitigatedSample, MitigationReport

    circuits: list[MitigatedCircuit] = []
    for shards, quasi, overhead in assembled:
        main = max(shards, key=lambda s: s.raw_shots)
        raw: dict[str, int] = {}
        for s in shards:
            for k, v in s.raw.items():
                raw[k] = raw.get(k, 0) + v
        result: CircuitResult = CircuitResult(
            counts=raw,
            shots=sum(s.raw_shots for s in shards),
            metadata={
                "devices": tuple(s.device for s in shards),
                "physical_qubits": main.measured,
                "clbit_qubits": main.clbit_qubits,
            },
        )
        circuits.append(
            MitigatedCircuit(main.device, result, quasi, overhead, _expectation(shards, spec))
        )
    report = MitigationReport(
        mitigation=spec.describe(),
        shots_base=sum(it.shots for it in items),
        shots_placement=engine.shots_placement,
        shots_mitigation=engine.shots_mitigation,
        shots_calibration=engine.shots_calibration,
        calibrations=tuple(engine.calibrations),
        devices={d: (c, s) for d, (c, s) in sorted(engine.per_device.items())},
        fits=sum(1 for sh, _, _ in assembled for s in sh if spec.zne is not None and s.noisy),
        extrapolation_fallbacks=0,
        failed_devices=tuple(engine.failed_devices),
        wall_s=wall_s,
        postprocess_s=post_s,
        engine=engine_name(engine),
        scheduler_reports=tuple(r for ex in engine.executions for r in ex.reports if r is not None),
    )
    return MitigatedSample(tuple(circuits), report)
