"""Model parallelism: cut circuits too wide for any device, spread the fragments' sub-experiments
across the fleet, knit the results back together with standard errors.

Cut finding, the quasi-probability decompositions and sub-experiment circuits come from
qiskit-addon-cutting; multiqpu adds the multi-device part: cuts sized to the fleet's real
devices, plans with overhead/time/cost bounds before anything runs, de-duplicated
sub-experiments, shots allocated to the quasi-probability weights and then to the measured
variances, placement by the scheduler, and vectorised reconstruction (expectation values
and CutQC-style output distributions) off the event loop.

Running a plan is the pipeline's job (:mod:`multiqpu.pipeline`: one loop for every
estimate, mitigated or not); this package plans (cuts, sub-experiments, shots) and knits.

Entry points: :meth:`multiqpu.Fleet.estimate`, :meth:`multiqpu.Fleet.plan`, and here
:func:`estimate`, :func:`plan`, :func:`distribution` (which take a device pool, a fleet or a
list of devices).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multiqpu.cutting._plan import CutInfo, CutLimits, CutPlan, FragmentPlan
from multiqpu.cutting._planning import DEFAULT_SHOTS, plan, plan_async
from multiqpu.cutting._results import CuttingReport, DeviceUsage, DistributionResult, EstimateResult

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.pool import PoolLike

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


async def estimate(
    fleet: PoolLike, circuit: QuantumCircuit, observables: Any, **options: Any
) -> EstimateResult:
    """Expectation values with standard errors, cutting ``circuit`` when no device fits it
    (see :func:`multiqpu.pipeline.estimate` and :meth:`multiqpu.Fleet.estimate`)."""
    from multiqpu.pipeline import estimate as run

    return await run(fleet, circuit, observables, **options)  # type: ignore[return-value]


async def distribution(
    fleet: PoolLike, circuit: QuantumCircuit, **options: Any
) -> DistributionResult:
    """The output distribution of ``circuit``, knitted when it is cut (see
    :func:`multiqpu.pipeline.distribution`)."""
    from multiqpu.pipeline import distribution as run

    return await run(fleet, circuit, **options)
