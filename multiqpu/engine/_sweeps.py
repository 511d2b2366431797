"""Sweeps over an engine: many independent scenarios, one task each, results in order.

``multiqpu simulate --seeds K --engine ray`` and the scheduler's family benchmark run their
scenarios through :func:`simulate_many`; any other sweep maps its own module-level function
with ``get_engine(...).map(fn, items)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiqpu.engine._base import Engine

__all__ = ["simulate_many", "simulate_scenario"]


def simulate_scenario(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``multiqpu.scheduler.simulate(**arguments).to_dict()`` (one task of a sweep)."""
    from multiqpu.scheduler import simulate

    return simulate(**dict(arguments)).to_dict()


def simulate_many(
    scenarios: Sequence[Mapping[str, Any]], *, engine: Engine | str | None = None
) -> list[dict[str, Any]]:
    """:func:`multiqpu.scheduler.simulate` for each scenario (its keyword arguments), as
    tasks of ``engine`` (see :func:`multiqpu.engine.get_engine`); the results'
    ``to_dict()`` in order. The virtual clock makes each result independent of where it ran."""
    from multiqpu.engine._select import get_engine

    return get_engine(engine).map(simulate_scenario, [dict(s) for s in scenarios])
