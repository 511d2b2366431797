"""Estimates whose shots ran on several devices: each device's value corrected on that device
first, then combined with inverse-variance weights, with the spread between devices reported.

Mixing counts from devices with different noise mixes their biases; averaging values after
each device's own mitigation does not. :func:`combine` takes one value and standard error per
device and returns the inverse-variance weighted mean ``sum(w_d v_d) / sum(w_d)`` with
``w_d = 1 / se_d**2`` and standard error ``1 / sqrt(sum(w_d))``, plus how well the devices
agree: Cochran's ``Q = sum(w_d (v_d - mean)**2)``, chi-square with ``k - 1`` degrees of
freedom when they measure the same value, its p-value, and the spread (weighted standard
deviation of the device values). When ``Q / (k - 1) > 1`` the devices disagree by more than
their errors allow and the standard error is multiplied by ``sqrt(Q / (k - 1))`` (the
Particle Data Group's scale factor), so a disagreement widens the error instead of hiding.

:func:`estimate_split` is ``fleet.estimate(..., split_shots=True)``: the shot budget (or the
precision target) is shared equally among the devices that hold the circuit uncut, every
device runs its share as its own estimate (mitigated there when ``mitigation`` is given),
concurrently, and the per-device values are combined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu._values import Values
from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.pool import DevicePool

__all__ = ["Combined", "DeviceEstimate", "SplitEstimate", "combine", "estimate_split"]


@dataclass(frozen=True)
class Combined:
    """One value combined over devices (see the module docstring)."""

    value: float
    std_error: float
    spread: float
    q: float
    dof: int
    p_value: float
    scale: float  # the factor applied to the standard error (1 when the devices agree)

    @property
    def consistent(self) -> bool:
        """The devices agree within their errors (p >= 0.001)."""
        return self.p_value >= 1e-3


def combine(values: Sequence[float], errors: Sequence[float]) -> Combined:
    """Inverse-variance weighted mean of per-device ``values`` with standard ``errors``. A
    zero error is taken as exact: the exact values alone are averaged."""
    from scipy.stats import chi2

    if len(values) != len(errors) or not values:
        raise InvalidInputError("combine needs one standard error per value, and a value")
    v = [float(x) for x in values]
    e = [float(x) for x in errors]
    if any(x == 0 for x in e):  # exact values: they alone count
        exact = [x for x, s in zip(v, e, strict=True) if s == 0]
        mean = sum(exact) / len(exact)
        spread = max(abs(x - mean) for x in exact)
        return Combined(mean, 0.0, spread, 0.0, 0, 1.0, 1.0)
    w = [1.0 / s**2 for s in e]
    total = sum(w)
    mean = sum(wi * x for wi, x in zip(w, v, strict=True)) / total
    se = 1.0 / math.sqrt(total)
    q = sum(wi * (x - mean) ** 2 for wi, x in zip(w, v, strict=True))
    dof = len(v) - 1
    spread = math.sqrt(q / total) if dof else 0.0
    p = float(chi2.sf(q, dof)) if dof else 1.0
    scale = max(1.0, math.sqrt(q / dof)) if dof else 1.0
    return Combined(mean, se * scale, spread, q, dof, p, scale)


@dataclass(frozen=True)
class DeviceEstimate:
    """One device's share: its shots and its own (mitigated, when asked) estimate."""

    device: str
    shots: int | None
    values: tuple[float, ...]
    std_errors: tuple[float, ...]
    result: Any  # EstimateResult or MitigatedEstimate


@dataclass(frozen=True)
class SplitEstimate(Values):
    """Expectation values combined over devices, with each device's own estimate.

    ``values``/``std_errors`` are the combined ones (inverse-variance weights, error scaled up
    where the devices disagree); ``combined[k]`` holds observable ``k``'s spread between
    devices and the consistency test; ``per_device`` each device's estimate."""

    values: tuple[float, ...]
    std_errors: tuple[float, ...]
    labels: tuple[str, ...]
    combined: tuple[Combined, ...]
    per_device: tuple[DeviceEstimate, ...]

    @property
    def spread(self) -> tuple[float, ...]:
        """Per observable: the weighted standard deviation of the device values."""
        return tuple(c.spread for c in self.combined)


async def estimate_split(
    pool: DevicePool,
    circuit: QuantumCircuit,
    observables: Any,
    *,
    shots: int | None,
    precision: float | None,
    seed: int | None,
    **kw: Any,
) -> SplitEstimate:
    """Share the shots over the devices that hold ``circuit`` uncut, estimate on each, combine."""
    from multiqpu._aio import gather_cancelling
    from multiqpu.pipeline._estimate import estimate

    if shots is None and precision is None:
        raise InvalidInputError(
            "split_shots=True shares a shot budget between devices; shots=None (exact) has "
            "none to share"
        )
    devices = [d for d in pool if d.num_qubits >= circuit.num_qubits]
    if not devices:
        raise InvalidInputError(
            f"split_shots=True runs the whole {circuit.num_qubits}-qubit circuit on each device; "
            "no device of the fleet holds it uncut (use split_shots=False to cut it)"
        )
    k = len(devices)
    if shots is not None and shots < 2 * k:
        devices, k = devices[: max(1, shots // 2)], max(1, shots // 2)
    share = None if shots is None else [shots // k + (i < shots % k) for i in range(k)]
    each = None if precision is None else precision * math.sqrt(k)

    results: list[Any] = [None] * k

    async def one(i: int) -> None:
        results[i] = await estimate(
            pool.subset([devices[i]]),
            circuit,
            observables,
            shots=None if share is None else share[i],
            precision=each,
            seed=None if seed is None else seed + i,
            cut="never",
            split_shots=False,
            **kw,
        )

    await gather_cancelling([one(i) for i in range(k)])
    per = tuple(
        DeviceEstimate(
            d.spec,
            None if share is None else share[i],
            tuple(r.values),
            tuple(r.std_errors),
            r,
        )
        for i, (d, r) in enumerate(zip(devices, results, strict=True))
    )
    combined = tuple(
        combine([p.values[j] for p in per], [p.std_errors[j] for p in per])
        for j in range(len(per[0].values))
    )
    return SplitEstimate(
        values=tuple(c.value for c in combined),
        std_errors=tuple(c.std_error for c in combined),
        labels=tuple(results[0].labels),
        combined=combined,
        per_device=per,
    )
