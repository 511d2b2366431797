"""Planning a request for the fleet: the cutting plan (cuts, fragments, sub-experiments,
overhead, shots, expected time and cost, devices) and, unless refused, the problem to run.

Nothing is submitted here; :mod:`multiqpu.pipeline` runs the problem.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu._sync import run_sync
from multiqpu.cutting._observables import normalize_observables
from multiqpu.cutting._plan import CutLimits, CutPlan
from multiqpu.cutting._planner import CutMode, PlanOptions, make_plan
from multiqpu.errors import InvalidInputError
from multiqpu.pool import PoolLike, as_pool

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.cutting._experiments import CutProblem
    from multiqpu.device import Device

__all__ = ["DEFAULT_SHOTS", "plan", "plan_async"]

#: Total shots over all sub-experiments when the caller gives none.
DEFAULT_SHOTS = 100_000
_QUEUE_TIMEOUT_S = 5.0


async def _waits(devices: Sequence[Device]) -> dict[str, float | None]:
    async def one(d: Device) -> float | None:
        try:
            q = await asyncio.wait_for(d.queue_estimate(), _QUEUE_TIMEOUT_S)
        except Exception:  # a queue report is a nicety for the time estimate
            return None
        return q.expected_wait_s

    values = await asyncio.gather(*(one(d) for d in devices))
    return {d.spec: v for d, v in zip(devices, values, strict=True)}


def _options(
    shots: int | None,
    precision: float | None,
    cut: CutMode,
    max_fragment_qubits: int | None,
    gate_cuts: bool,
    wire_cuts: bool,
    limits: CutLimits | None,
    seed: int | None,
    variance_factor: float,
) -> PlanOptions:
    if shots is None and precision is not None:
        raise InvalidInputError("precision applies to sampled runs; shots=None is already exact")
    return PlanOptions(
        shots=shots,
        precision=precision,
        cut=cut,
        max_fragment_qubits=max_fragment_qubits,
        gate_cuts=gate_cuts,
        wire_cuts=wire_cuts,
        seed=seed,
        limits=limits or CutLimits(),
        variance_factor=variance_factor,
    )


async def plan_async(
    fleet: PoolLike,
    circuit: QuantumCircuit,
    observables: Any = None,
    *,
    shots: int | None = DEFAULT_SHOTS,
    precision: float | None = None,
    cut: CutMode = "auto",
    max_fragment_qubits: int | None = None,
    gate_cuts: bool = True,
    wire_cuts: bool = True,
    limits: CutLimits | None = None,
    seed: int | None = 0,
    measured_qubits: Sequence[int] | None = None,
    variance_factor: float = 1.0,
) -> tuple[CutPlan, CutProblem | None]:
    """The plan and, unless refused, the problem to run (nothing is submitted).
    ``variance_factor``: the correction stage's amplification of a shot's variance
    (:attr:`multiqpu.pipeline.CorrectionStage.variance_factor`), for precision targets."""
    options = _options(shots, precision, cut, max_fragment_qubits, gate_cuts, wire_cuts, limits,
                       seed, variance_factor)  # fmt: skip
    devices = list(as_pool(fleet))
    if not devices:
        raise InvalidInputError("the fleet has no devices")
    obs = None
    if observables is not None:
        obs = normalize_observables(observables, circuit.num_qubits)
    waits = await _waits(devices)
    return await asyncio.to_thread(
        make_plan, devices, waits, circuit, obs, options, measured_qubits=measured_qubits
    )


def plan(
    fleet: PoolLike, circuit: QuantumCircuit, observables: Any = None, **options: Any
) -> CutPlan:
    """Synchronous :func:`plan_async` returning only the :class:`CutPlan` (safe to call
    inside a running event loop: it runs on multiqpu's background loop)."""
    return run_sync(plan_async(fleet, circuit, observables, **options))[0]
