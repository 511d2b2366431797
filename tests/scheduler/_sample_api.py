"""How the journal tests read the scheduler's result type (kept in one place)."""

from __future__ import annotations

from typing import Any

from multiqpu.device import CircuitResult


def per_circuit(result: Any) -> list[tuple[str, CircuitResult]]:
    """(device spec, result) per circuit, in the order the circuits were given."""
    raise NotImplementedError("waiting for the scheduler's SampleResult")


def sample_run_id(result: Any) -> str:
    return str(result.run_id)
