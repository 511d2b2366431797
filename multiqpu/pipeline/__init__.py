"""One pipeline for every job: request -> plan (cuts, shards, shots) -> schedule and execute
-> per-device correction -> recombine.

``sample`` and ``estimate``, mitigated or not, go through it. Correction is a stage
(:class:`CorrectionStage`): :class:`IdentityStage` without mitigation, the mitigation stage
(:class:`multiqpu.mitigation.MitigationStage`) with it. Planning and knitting come from
:mod:`multiqpu.cutting`, placement and execution from :mod:`multiqpu.scheduler`, the
correction from :mod:`multiqpu.mitigation`; every entry point takes a device pool (or
anything :func:`multiqpu.pool.as_pool` accepts).

Entry points: :func:`estimate`, :func:`sample`, :func:`distribution`, :func:`plan`;
``multiqpu.Fleet`` calls them.
"""

from __future__ import annotations

from multiqpu.pipeline._combine import Combined, DeviceEstimate, SplitEstimate, combine
from multiqpu.pipeline._estimate import distribution, estimate, plan
from multiqpu.pipeline._sample import sample
from multiqpu.pipeline._stages import (
    Accumulator,
    CorrectionStage,
    EstimateRun,
    IdentityStage,
    RunContext,
    stage_for,
)

__all__ = [
    "Accumulator",
    "Combined",
    "CorrectionStage",
    "DeviceEstimate",
    "EstimateRun",
    "IdentityStage",
    "RunContext",
    "SplitEstimate",
    "combine",
    "distribution",
    "estimate",
    "plan",
    "sample",
    "stage_for",
]
