"""Per-circuit results: schedule and execute, then correct each result on its device.

With no mitigation this is the scheduler's ``sample`` (the identity stage adds nothing);
with mitigation the stage places the circuits through the scheduler, runs each device's
own mitigation circuits on that device and corrects every result there. Nothing is cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.pipeline._stages import stage_for
from multiqpu.pool import PoolLike, as_pool

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.mitigation._results import MitigatedSample
    from multiqpu.scheduler import SampleResult

__all__ = ["sample"]


async def sample(
    fleet: PoolLike,
    circuits: Sequence[QuantumCircuit],
    shots: int | Sequence[int | None] | None = 1024,
    policy: str = "balanced",
    *,
    mitigation: Any = None,
    **options: Any,
) -> SampleResult | MitigatedSample:
    """Run every circuit somewhere on ``fleet``: a :class:`~multiqpu.scheduler.SampleResult`
    without ``mitigation``, a :class:`~multiqpu.mitigation.MitigatedSample` with it (each
    circuit corrected on the device that produced it). ``options``: the scheduler's (see
    :class:`multiqpu.scheduler.Options`); a mitigated run refuses those that bound a
    single scheduler run (``budget_usd``, ``deadline_s``, ``run_id``, ``cache``).
    ``engine``: where the simulators' batches (and, with mitigation, the M3 solves) run
    (:mod:`multiqpu.engine`; default: ``$MULTIQPU_ENGINE``, the config file, in-process).
    ``placement``: a data placement rule (:class:`multiqpu.Placement` or a config rule's
    name): only the devices it allows ever receive the circuits (docs/trust.md)."""
    from multiqpu.engine import get_engine

    stage = stage_for(mitigation)
    engine = get_engine(options.pop("engine", None))
    pool = as_pool(fleet)
    rule = options.pop("placement", None)
    if rule is not None:  # data placement: only the allowed devices are ever seen
        from multiqpu.placement import resolve_placement

        placement = resolve_placement(rule)
        assert placement is not None
        pool = placement.restrict(pool, [c for c in circuits if hasattr(c, "num_qubits")])
    pool = engine.offload(pool)
    if mitigation is not None:
        options["engine"] = engine
    result: SampleResult | MitigatedSample = await stage.sample(
        pool, circuits, shots, policy, dict(options)
    )
    return result
