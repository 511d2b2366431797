"""Per-sample data placement in QNN training: which devices may receive each sample.

``Trainer.fit(X, y, placement=rules)`` (and ``predict``/``score``/``aevaluate``) take one
rule for the whole call or one per sample (a :class:`multiqpu.Placement`, a config rule's
name, or None for "any device of the trainer"). :func:`allowed_mask` turns them into a
boolean matrix (samples x devices) before anything is submitted, refusing with a
:class:`multiqpu.PlacementError` that names the rule and the first sample when a rule
allows no device of the trainer. :func:`assign` then splits every batch over the devices
so that a sample only ever goes to a device its rule allows, keeping each device's share
(its throughput share of the batch) as far as the rules let it.

A sample's circuits (its forward circuit and all its parameter-shift circuits) carry its
features as gate angles, and a shard runs on exactly one device: so a rule on the sample is
a rule on every circuit that carries its features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from multiqpu.errors import InvalidInputError
from multiqpu.placement import Placement, PlacementError, resolve_placement

if TYPE_CHECKING:
    from multiqpu.qnn._executor import Executor

__all__ = ["allowed_mask", "assign", "device_mask"]


def device_mask(executor: Executor, rule: Placement) -> np.ndarray:
    """Which of the executor's devices ``rule`` allows (by device spec and name)."""
    devices = getattr(executor, "devices", None)
    if devices is not None:
        return np.array([rule.allows(d) for d in devices], dtype=bool)
    return np.array([rule.allows(n) for n in executor.names], dtype=bool)


def allowed_mask(
    executor: Executor, rules: Any, n: int, aggregation: str = "sync"
) -> np.ndarray | None:
    """The (n, devices) mask of ``rules`` (one rule, or one per sample); None when nothing
    is restricted. :class:`PlacementError` when a rule allows no device of the trainer;
    training with rules needs ``aggregation="sync"`` (whose batches :func:`assign` splits)."""
    if rules is None:
        return None
    if aggregation != "sync":
        raise InvalidInputError(
            "fit(placement=...) splits each synchronous batch by the samples' rules; "
            f"aggregation={aggregation!r} hands samples to whichever device asks: use "
            "aggregation='sync', or Trainer(placement=...) for one rule over the whole dataset"
        )
    per: Sequence[Any]
    if isinstance(rules, (Placement, str)):
        per = [rules] * n
    else:
        per = list(rules)
        if len(per) != n:
            raise InvalidInputError(f"{n} samples but {len(per)} placement rules")
    from multiqpu.qnn._cut import CutExecutor

    if isinstance(executor, CutExecutor) and any(r is not None for r in per):
        raise InvalidInputError(
            "per-sample placement rules need devices that hold the model; this model is "
            "trained through cutting over the whole pool: give Trainer(placement=...) instead"
        )
    mask = np.ones((n, len(executor.names)), dtype=bool)
    cache: dict[int, np.ndarray] = {}
    for i, r in enumerate(per):
        if r is None:
            continue
        rule = resolve_placement(r)
        assert rule is not None
        row = cache.get(id(r))
        if row is None:
            row = cache[id(r)] = device_mask(executor, rule)
        if not row.any():
            raise PlacementError(
                f"{rule} (sample {i}) allows no device of this trainer "
                f"({', '.join(executor.names)}); nothing was submitted"
            )
        mask[i] = row
    return None if mask.all() else mask


def assign(
    batch: np.ndarray, shares: np.ndarray, mask: np.ndarray | None, usable: np.ndarray
) -> list[np.ndarray]:
    """Split ``batch`` (sample indexes) over the devices: ``shares[d]`` samples to device
    ``d`` (contiguous slices) when nothing is restricted; with a ``mask``, every sample goes
    to an allowed device, the most restricted samples first, each to the allowed device
    with the most room left in its share (``usable`` devices, e.g. not quarantined, first;
    a sample whose allowed devices are all unusable still goes to one of them: the rule is
    never broken)."""
    count = len(shares)
    if mask is None:
        out, at = [], 0
        for k in shares:
            out.append(batch[at : at + k])
            at += k
        return out
    room = np.asarray(shares, dtype=float).copy()
    parts: list[list[int]] = [[] for _ in range(count)]
    rows = mask[batch]
    for j in np.argsort(rows.sum(axis=1), kind="stable"):
        allowed = rows[j]
        pick = allowed & usable & (room > 0)
        if not pick.any():
            pick = allowed & usable if (allowed & usable).any() else allowed
        d = int(np.argmax(np.where(pick, room, -np.inf)))
        parts[d].append(int(j))
        room[d] -= 1
    return [np.asarray(batch)[np.sort(np.array(p, dtype=int))] for p in parts]
