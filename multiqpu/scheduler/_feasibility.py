"""Fail fast, before anything is submitted, when some circuit has nowhere to run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from multiqpu.errors import CircuitTooLargeError, DeviceUnavailableError, InvalidInputError
from multiqpu.scheduler._policy import masks

if TYPE_CHECKING:
    from multiqpu.device import Device
    from multiqpu.scheduler._costmodel import Item
    from multiqpu.scheduler._options import Options
    from multiqpu.scheduler._tables import ClassTables

__all__ = ["check_feasible"]


def _name(item: Item, i: int) -> str:
    return f"circuit {i} ({item.circuit.name})"


def check_feasible(
    devices: Sequence[Device],
    items: Sequence[Item],
    tables: ClassTables,
    cls: np.ndarray,
    reasons: list[list[str | None]],
    alive: Sequence[bool],
    opts: Options,
    indices: np.ndarray | None = None,
) -> None:
    """Raise a clear error if any of ``indices`` (default all) cannot run anywhere, or the
    budget cannot cover them at the cheapest prices."""
    live = np.asarray(alive, dtype=bool)
    if not live.any():
        raise DeviceUnavailableError(
            "every device of the fleet is offline or in maintenance: "
            + ", ".join(d.spec for d in devices)
        )
    idx = np.arange(len(items)) if indices is None else np.asarray(indices, dtype=np.int64)
    if len(idx) == 0:
        return
    m = masks(
        opts.policy,
        fits=tables.fits,
        fidelity=tables.fidelity,
        price=tables.price,
        alive=live,
        floor=tables.floor,
        margin=opts.fidelity_margin,
    )
    present = np.unique(cls[idx])
    for c in present.tolist():
        if m.allowed[c].any():
            continue
        i = int(idx[np.flatnonzero(cls[idx] == c)[0]])
        item = items[i]
        widest = max(devices, key=lambda d: d.num_qubits)
        if item.circuit.num_qubits > widest.num_qubits:
            err = CircuitTooLargeError(widest.spec, item.circuit.num_qubits, widest.num_qubits)
            err.args = (
                f"{_name(item, i)} needs {item.circuit.num_qubits} qubits; the largest device "
                f"of the fleet, '{widest.spec}', has {widest.num_qubits}. Nothing was "
                "submitted. Add a larger device or let multiqpu cut the circuit "
                "(fleet.estimate)",
            )
            raise err
        why = []
        for d, device in enumerate(devices):
            if not live[d]:
                why.append(f"{device.spec}: offline")
            elif reasons[c][d] is not None:
                why.append(f"{device.spec}: {reasons[c][d]}")
            elif tables.fidelity[c, d] < tables.floor[c]:
                why.append(
                    f"{device.spec}: estimated fidelity {tables.fidelity[c, d]:.3f} is below "
                    f"fidelity_floor={tables.floor[c]:g}"
                )
        raise InvalidInputError(
            f"{_name(item, i)} cannot run on any device of the fleet; nothing was submitted. "
            + "; ".join(why)
        )
    if opts.budget_usd is not None:
        price = np.where(m.allowed, tables.price, np.inf).min(axis=1)
        need = float(price[cls[idx]].sum())
        if need > opts.budget_usd + 1e-9:
            raise InvalidInputError(
                f"budget_usd={opts.budget_usd:g} cannot cover these {len(idx)} circuits: they "
                f"cost at least ${need:.2f} at the cheapest allowed prices; nothing was submitted"
            )
