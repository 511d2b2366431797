"""Mitigated runs for the primitives and the PennyLane device.

The batch goes through :func:`multiqpu.mitigation.sample`: every circuit is placed by the
scheduler and corrected on the device that ran it (readout with that device's calibration,
zero-noise extrapolation fitted per device) before anything is combined. Callers then read
Z-parities off each :class:`~multiqpu.mitigation.MitigatedCircuit` with
:meth:`~multiqpu.mitigation.MitigatedCircuit.expectation`, which propagates the shot noise,
the calibration's error and the extrapolation into a standard error.

Sums of parities (several terms of one observable) add their values. Their standard errors
are added linearly, ``sum_k |c_k| se_k``: the terms share shots and, on one device, one
readout calibration, so they are correlated in ways a per-term error does not reveal, and
the linear sum is an upper bound whatever the correlations (the standard deviation of a sum
never exceeds the sum of the standard deviations). It equals the exact error for one term.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.mitigation import MitigatedCircuit, MitigatedSample, MitigationSpec
    from multiqpu.pool import DevicePool

__all__ = ["check_spec", "parity_sum", "run_mitigated", "shots_needed"]


def check_spec(mitigation: Any) -> MitigationSpec | None:
    """The resolved options, or None when nothing is asked for (validates early)."""
    from multiqpu.mitigation import resolve

    spec = resolve(mitigation)
    if spec.zne is not None and spec.zne.make_extrapolator().coefficients(spec.zne.scales) is None:
        raise InvalidInputError(
            f"per-circuit mitigation extrapolates with fixed linear weights (richardson, linear, "
            f"quadratic); {spec.zne.extrapolator!r} is not linear. Use "
            "fleet.estimate(circuit, observables, mitigation=...) for it"
        )
    return None if spec.empty else spec


def shots_needed(shots: Sequence[int | None], where: str) -> list[int]:
    """Mitigation corrects sampled results: refuse exact (``None``) shot counts."""
    if any(s is None for s in shots):
        raise InvalidInputError(
            f"mitigation= corrects sampled results from noisy devices; {where} asks for exact "
            "values, which have nothing to mitigate. Ask for shots, or drop mitigation="
        )
    return [int(s) for s in shots if s is not None]


async def run_mitigated(
    pool: DevicePool,
    circuits: Sequence[QuantumCircuit],
    shots: Sequence[int],
    spec: MitigationSpec,
    policy: str,
) -> MitigatedSample:
    """All circuits in one mitigated batch on ``pool``, results in input order."""
    from multiqpu.mitigation import sample

    return await sample(pool, list(circuits), mitigation=spec, shots=list(shots), policy=policy)


def parity_sum(
    item: MitigatedCircuit, terms: Sequence[tuple[int, float]], offset: int = 0
) -> tuple[float, float]:
    """``sum_k c_k <Z-parity(mask_k)>`` and its standard error (linear sum, see above).

    ``terms``: (bit mask over the measured positions, coefficient); ``offset``: the classical
    bit that holds measured position 0."""
    value = se = 0.0
    for mask, coeff in terms:
        if mask == 0:
            value += coeff
            continue
        v, s = item.expectation(int(mask) << offset)
        value += coeff * v
        se += abs(coeff) * s
    return value, se
