"""Placement policies as eligibility masks over (circuit class, device).

Every policy reduces to two boolean masks of shape (classes, devices):

* ``preferred``: where the policy wants a circuit of that class to run; the scheduler picks,
  among these, the device with the earliest expected completion;
* ``allowed``: where it may run if no preferred device can meet the ``deadline_s`` option.

``balanced`` (default)
    a *fidelity budget* for the whole run: the run's mean estimated fidelity stays within
    ``fidelity_margin`` (relative, default 2 %) of what ``most_accurate`` would reach (every
    circuit on its most accurate device). The budget is ``fidelity_margin`` x the sum, over
    the circuits, of their best device's estimated fidelity; a placement spends what the
    circuit loses against that device. The placement core plans with it (``planned``): the
    fluid plan (``_bounds.fluid_plan``) of the work not yet submitted, on the estimated waits
    and speeds, that finishes earliest within (1 - ``PLAN_RESERVE``) of the budget left.
    Small circuits, nearly as good everywhere, go anywhere; wide ones go where they lose
    least, or wait for the best devices when that is worth it. A class may use every device
    at least as accurate as the least accurate one the plan gives it; the core trims
    placements (and steals and hedges) so that what a class loses stays within its share of
    the plan, and re-plans as estimates move (``_budget.budget_plan``). A per-circuit
    floor applies on top: no device more than ``FLOOR_MARGINS`` x ``fidelity_margin``
    (relative) below the circuit's best device is ever used for it.

    Without a plan (``masks`` called on its own: the fail-fast check and the result cache),
    the per-circuit rule: devices within ``fidelity_margin`` of the class's most accurate
    device.
    ``allowed`` is the same set: a deadline never buys speed with fidelity beyond the budget.
``fastest``
    every device that fits (and passes ``fidelity_floor``); earliest completion.
``most_accurate``
    the device(s) with the highest estimated fidelity; with a deadline, any device that fits.
``cheapest``
    the device(s) with the lowest price for the circuit; with a deadline, any device that fits.
    A device that cannot price the circuit (price NaN: unknown) ranks after every priced one:
    it is preferred only when no device that fits can price the circuit.

``fidelity_floor`` removes devices below it for every policy; ``budget_usd`` is enforced by
the placement core on top of these masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["POLICIES", "Masks", "PolicyName", "masks"]

PolicyName = Literal["balanced", "fastest", "most_accurate", "cheapest"]
POLICIES: tuple[PolicyName, ...] = ("balanced", "fastest", "most_accurate", "cheapest")

_TIE = 1e-9  # relative tolerance for "as accurate" / "as cheap"
FLOOR_MARGINS = 5.0  # balanced: per-circuit floor, in fidelity margins below the best device


@dataclass(frozen=True)
class Masks:
    preferred: np.ndarray  # (C, D) bool
    allowed: np.ndarray  # (C, D) bool


def masks(
    policy: PolicyName,
    *,
    fits: np.ndarray,
    fidelity: np.ndarray,
    price: np.ndarray,
    alive: np.ndarray,
    floor: np.ndarray,
    margin: float,
    planned: np.ndarray | None = None,
) -> Masks:
    """The policy's masks. ``floor`` is per class (0 where none); ``alive`` per device;
    ``price`` (C, D) NaN where unknown; ``planned`` (C, D) where the fidelity budget's plan
    runs each class (balanced only)."""
    eligible = fits & alive[None, :] & (fidelity >= floor[:, None])
    fid = np.where(eligible, fidelity, -np.inf)
    best = fid.max(axis=1, initial=-np.inf)[:, None]
    if policy == "balanced":
        if planned is None:
            per_circuit = eligible & (fid >= best * (1.0 - margin) - 1e-12)
            return Masks(per_circuit, per_circuit)
        # the plan already keeps to the per-circuit floor unless max_slowdown bound it;
        # a deadline the user set may use any device that fits
        preferred = eligible & planned
        return Masks(preferred, eligible)
    if policy == "fastest":
        return Masks(eligible, eligible)
    if policy == "most_accurate":
        preferred = eligible & (fid >= best * (1.0 - _TIE) - 1e-12)
        return Masks(preferred, eligible)
    if policy == "cheapest":
        priced = eligible & ~np.isnan(price)
        cost = np.where(priced, price, np.inf)
        cheapest = cost.min(axis=1, initial=np.inf)[:, None]
        preferred = priced & (cost <= cheapest * (1.0 + _TIE) + 1e-12)
        # a class no eligible device can price: the unknown prices tie
        unpriced = ~priced.any(axis=1)
        preferred[unpriced] = eligible[unpriced]
        return Masks(preferred, eligible)
    raise ValueError(f"unknown policy {policy!r}")
