"""Model parallelism: cut circuits too wide for any device, spread the fragments' sub-experiments
across the fleet, knit the results back together with standard errors.

Cut finding, the quasi-probability decompositions and sub-experiment circuits come from
qiskit-addon-cutting; multiqpu adds the multi-device part: cuts sized to the fleet's real
devices, plans with overhead/time/cost bounds before anything runs, de-duplicated
sub-experiments, shots allocated to the quasi-probability weights and then to the measured
variances, placement by the scheduler, and vectorised reconstruction (expectation values
and CutQC-style output distributions) off the event loop.

Entry points: :meth:`multiqpu.Fleet.estimate`, :meth:`multiqpu.Fleet.plan`, and here
:func:`estimate`, :func:`plan`, :func:`distribution` (which take a fleet or a list of devices).
"""

from __future__ import annotations

from multiqpu.cutting._estimate import DEFAULT_SHOTS, distribution, estimate, plan, plan_async
from multiqpu.cutting._plan import CutInfo, CutLimits, CutPlan, FragmentPlan
from multiqpu.cutting._results import CuttingReport, DeviceUsage, DistributionResult, EstimateResult

__all__ = [
    "DEFAULT_SHOTS",
    "CutInfo",
    "CutLimits",
    "CutPlan",
    "CuttingReport",
    "DeviceUsage",
    "DistributionResult",
    "EstimateResult",
    "FragmentPlan",
    "distribution",
    "estimate",
    "plan",
    "plan_async",
]
