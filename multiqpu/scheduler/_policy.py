"""Placement policies as eligibility masks over (circuit class, device).

Every policy reduces to two boolean masks of shape (classes, devices):

* ``preferred``: where the policy wants a circuit of that class to run; the scheduler picks,
  among these, the device with the earliest expected completion;
* ``allowed``: where it may run if no preferred device can meet the ``deadline_s`` option.

``balanced`` (default)
    devices whose estimated fidelity is within ``fidelity_margin`` (relative, default 2 %) of
    the best device for that circuit; earliest completion among them. The best device is
    looked for among those that could finish a circuit of the class within ``max_slowdown``
    (default 2) times the fastest one, or times what the whole remaining work needs on the
    fleet, or ``patience_s`` (default 60 s): a device with a three-hour queue does not get
    every circuit it is 1 % better at, while a wait of seconds is always worth it.
    ``allowed`` is the same set: a deadline never buys speed with fidelity beyond the margin.
``fastest``
    every device that fits (and passes ``fidelity_floor``); earliest completion.
``most_accurate``
    the device(s) with the highest estimated fidelity; with a deadline, any device that fits.
``cheapest``
    the device(s) with the lowest price for the circuit; with a deadline, any device that fits.

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
    completion: np.ndarray | None = None,
    max_slowdown: float = 2.0,
    min_threshold: float | None = None,
) -> Masks:
    """The policy's masks. ``floor`` is per class (0 where none); ``alive`` per device;
    ``completion`` (C, D) the expected completion time of a lone circuit (balanced only)."""
    eligible = fits & alive[None, :] & (fidelity >= floor[:, None])
    fid = np.where(eligible, fidelity, -np.inf)
    best = fid.max(axis=1, initial=-np.inf)[:, None]
    if policy == "balanced":
        if completion is not None:
            t = np.where(eligible, completion, np.inf)
            fastest = t.min(axis=1, initial=np.inf)[:, None]
            limit = np.maximum(max_slowdown * fastest, min_threshold or 0.0)
            reference = eligible & (t <= limit + 1e-9)
            best = np.where(reference, fidelity, -np.inf).max(axis=1, initial=-np.inf)[:, None]
        preferred = eligible & (fid >= best * (1.0 - margin) - 1e-12)
        return Masks(preferred, preferred)
    if policy == "fastest":
        return Masks(eligible, eligible)
    if policy == "most_accurate":
        preferred = eligible & (fid >= best * (1.0 - _TIE) - 1e-12)
        return Masks(preferred, eligible)
    if policy == "cheapest":
        cost = np.where(eligible, price, np.inf)
        cheapest = cost.min(axis=1, initial=np.inf)[:, None]
        preferred = eligible & (cost <= cheapest * (1.0 + _TIE) + 1e-12)
        return Masks(preferred, eligible)
    raise ValueError(f"unknown policy {policy!r}")
