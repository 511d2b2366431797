"""The async scheduler: place circuits across a fleet by queue time, speed, noise and cost,
submit concurrently, and bring every result back exactly once.

Most people call it through the fleet::

    result = await fleet.sample(circuits, shots=4000)          # policy="balanced"
    result[0].counts, result[0].device, print(result.report)

The same placement core drives :func:`simulate`, a virtual-clock "what if" for simulated
fleets (``multiqpu simulate`` on the command line). See docs/scheduler.md.
"""

from __future__ import annotations

from multiqpu.scheduler._api import (
    JobRequest,
    resume,
    resume_sync,
    run,
    run_sync,
    sample,
    sample_sync,
)
from multiqpu.scheduler._demo import demo_batch, ghz_batch
from multiqpu.scheduler._fleets import random_fleet, reference_fleet
from multiqpu.scheduler._options import Options
from multiqpu.scheduler._policy import POLICIES
from multiqpu.scheduler._report import DeviceReport, RunReport, SampleResult, TaskResult
from multiqpu.scheduler._shots import Compatibility, ShotShare
from multiqpu.scheduler._simfleet import SimCircuit, SimDevice, Workload
from multiqpu.scheduler._timeline import JobSpan
from multiqpu.scheduler._whatif import SimulationResult, simulate

__all__ = [
    "POLICIES",
    "Compatibility",
    "DeviceReport",
    "JobRequest",
    "JobSpan",
    "Options",
    "RunReport",
    "SampleResult",
    "ShotShare",
    "SimCircuit",
    "SimDevice",
    "SimulationResult",
    "TaskResult",
    "Workload",
    "demo_batch",
    "ghz_batch",
    "random_fleet",
    "reference_fleet",
    "resume",
    "resume_sync",
    "run",
    "run_sync",
    "sample",
    "sample_sync",
    "simulate",
]
