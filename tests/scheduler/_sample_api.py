"""How the journal tests read the scheduler's result type (kept in one place)."""

from __future__ import annotations

from multiqpu.device import CircuitResult
from multiqpu.scheduler import SampleResult


def per_circuit(result: SampleResult) -> list[tuple[str, CircuitResult]]:
    """(device spec, result) per circuit, in the order the circuits were given."""
    return [(r.device, r.result) for r in result.results]


def sample_run_id(result: SampleResult) -> str:
    return result.run_id
