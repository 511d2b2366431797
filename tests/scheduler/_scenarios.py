"""One family scenario run under ``balanced`` and ``fastest`` on the same queues, for the
tests that pin a scenario read in docs/scheduler.md ("Families of fleets")."""

from __future__ import annotations

from multiqpu.scheduler import simulate
from multiqpu.scheduler._families import family_scenario
from multiqpu.scheduler._whatif import SimulationResult

__all__ = ["balanced_and_fastest"]


def balanced_and_fastest(seed: int) -> tuple[SimulationResult, SimulationResult]:
    """``(balanced, fastest)`` of family scenario ``seed`` (queue seed ``seed``), after
    checking that ``balanced`` delivered every circuit."""
    sc = family_scenario(seed)
    fleet = list(sc.fleet)
    b = simulate(fleet, sc.workload, policy="balanced", seed=seed)
    f = simulate(fleet, sc.workload, policy="fastest", seed=seed)
    assert sum(int(d["circuits"]) for d in b.per_device) == sc.workload.n
    return b, f
