"""Running a batch of circuits on a fleet, from async and from sync code.

Everything above the fleet in this package (the Qiskit primitives, the PennyLane device, the
QNN trainer) hands its circuits to :func:`sample`: with the scheduler installed
(``fleet.sample``) placement, batching, retries and hedging are the scheduler's; otherwise a
small stand-in splits the batch over the devices that fit, in proportion to each device's
concurrency, and runs every device's share at once with ``device.run``. Shot counts above a
device's ``max_shots`` are split into several runs and merged here, so callers never see the
limit.

:func:`run_sync` runs a coroutine from synchronous code (PennyLane's ``execute``, a primitive
job, a notebook cell with a loop already running) on one event loop kept in a daemon thread,
the way Cirq's ``asyncio_executor`` does: never ``asyncio.run`` inside a running loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from multiqpu._sync import run_sync
from multiqpu.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult, Device
    from multiqpu.fleet import Fleet

__all__ = ["FleetLike", "Sampled", "as_fleet", "ideal_fleet", "run_sync", "sample"]

T = TypeVar("T")

#: What every ``fleet=`` argument in this package accepts.
FleetLike = Any  # Fleet | Device | str | Sequence[Device | str] | None

#: Device specs of the noiseless, exact-capable simulators, in order of preference.
IDEAL_SPECS = ("local:ideal", "braket:sv")


@dataclass(frozen=True)
class Sampled:
    """One circuit's outcome and the device spec that produced it."""

    device: str
    result: CircuitResult


# ---------------------------------------------------------------------------- fleets
def ideal_fleet() -> Fleet:
    """Every installed noiseless exact simulator (``local:ideal``, ``braket:sv``)."""
    from multiqpu.fleet import Fleet, device

    devices: list[Device] = []
    for spec in IDEAL_SPECS:
        try:
            devices.append(device(spec))
        except ConfigError:  # that provider's extra is not installed
            continue
    if not devices:
        raise ConfigError("no ideal simulator is installed; run: pip install 'multiqpu[local]'")
    return Fleet(devices)


def as_fleet(fleet: FleetLike, *, default: str = "ideal") -> Fleet:
    """A :class:`~multiqpu.Fleet` from what a user passed as ``fleet=``.

    Accepted: a Fleet; one Device; a list of Devices or specs; a string naming a preset
    (``"ideal"``: the noiseless exact simulators, ``"default"``: the configured fleet or the
    embedded default fleet, ``"local"``: the embedded default fleet) or comma-separated
    specs (``"local:ideal,ibm:fake_manila"``); ``None`` means the preset named by ``default``.
    """
    from multiqpu.device import Device
    from multiqpu.fleet import Fleet, device

    if fleet is None:
        fleet = default
    if isinstance(fleet, Fleet):
        return fleet
    if isinstance(fleet, Device):
        return Fleet([fleet])
    if isinstance(fleet, str):
        name = fleet.strip()
        if name == "ideal":
            return ideal_fleet()
        if name in ("default", "config"):
            return Fleet.from_config()
        if name == "local":
            return Fleet.local()
        return Fleet([device(s.strip()) for s in name.split(",") if s.strip()])
    if isinstance(fleet, Iterable):
        return Fleet([d if isinstance(d, Device) else device(str(d)) for d in fleet])
    raise ConfigError(
        f"fleet= takes a multiqpu.Fleet, a Device, a list of devices or specs, or one of "
        f"'ideal', 'default', 'local'; got {type(fleet).__name__}"
    )


def eligible(fleet: Fleet, num_qubits: int, exact: bool) -> list[Device]:
    """Devices of ``fleet`` wide enough (and exact, when asked for exact results)."""
    return [d for d in fleet if d.num_qubits >= num_qubits and (d.exact or not exact)]


# ---------------------------------------------------------------------------- sampling
def _split_shots(shots: int | None, limit: int) -> list[int | None]:
    if shots is None or shots <= limit:
        return [shots]
    parts = [limit] * (shots // limit)
    if shots % limit:
        parts.append(shots % limit)
    return list(parts)


def _merge(results: Sequence[CircuitResult]) -> CircuitResult:
    from multiqpu.device import CircuitResult

    if len(results) == 1:
        return results[0]
    counts: dict[str, int] = {}
    for r in results:
        for key, n in r.counts.items():
            counts[key] = counts.get(key, 0) + n
    total = sum(r.shots or 0 for r in results)
    return CircuitResult(counts=counts, shots=total, metadata=dict(results[0].metadata))


async def sample(
    fleet: Fleet,
    circuits: Sequence[QuantumCircuit],
    shots: int | Sequence[int | None] | None,
    *,
    policy: str = "balanced",
    use_scheduler: bool | None = None,
) -> list[Sampled]:
    """Run ``circuits`` on ``fleet`` and return one :class:`Sampled` per circuit, in order.

    ``shots`` is one value for all circuits or one per circuit; ``None`` asks for exact
    probabilities, which only exact simulators give (an error names the fix when the fleet
    has none).
    """
    n = len(circuits)
    if n == 0:
        return []
    per = list(shots) if isinstance(shots, Sequence) else [shots] * n
    if len(per) != n:
        raise InvalidInputError(f"{n} circuits but {len(per)} shot counts")
    width = max(c.num_qubits for c in circuits)
    if any(s is None for s in per) and not eligible(fleet, width, exact=True):
        raise InvalidInputError(
            "exact results (shots=None) need an exact simulator in the fleet, such as "
            "'local:ideal'; this fleet has "
            + (", ".join(d.spec for d in fleet) or "no devices")
            + ". Pass a shot count, or add 'local:ideal' to the fleet"
        )
    if not eligible(fleet, width, exact=False):
        raise InvalidInputError(
            f"no device of the fleet has the {width} qubits these circuits need"
        )
    limit = min(d.limits.max_shots for d in fleet)
    # Split shot counts above the smallest device limit, run, and merge back.
    pieces: list[tuple[int, int | None]] = []
    for i, s in enumerate(per):
        pieces.extend((i, part) for part in _split_shots(s, limit))
    circs = [circuits[i] for i, _ in pieces]
    piece_shots = [s for _, s in pieces]
    scheduler = hasattr(fleet, "sample") if use_scheduler is None else use_scheduler
    if scheduler:
        items = await _with_scheduler(fleet, circs, piece_shots, policy)
    else:
        items = await _standin(fleet, circs, piece_shots)
    grouped: list[list[Sampled]] = [[] for _ in range(n)]
    for (i, _), item in zip(pieces, items, strict=True):
        grouped[i].append(item)
    return [Sampled(g[0].device, _merge([s.result for s in g])) for g in grouped]


async def _with_scheduler(
    fleet: Fleet, circuits: list[QuantumCircuit], shots: list[int | None], policy: str
) -> list[Sampled]:
    out = await fleet.sample(circuits, shots=shots, policy=policy, progress=False)
    return _items(out)


def _items(out: Any) -> list[Sampled]:
    """(device spec, CircuitResult) per circuit from whatever ``fleet.sample`` returns."""
    items = []
    for row in getattr(out, "results", out):
        if isinstance(row, tuple):
            device, result = row[0], row[1]
        else:
            device, result = getattr(row, "device", "?"), getattr(row, "result", row)
        items.append(Sampled(str(getattr(device, "spec", device)), result))
    return items


async def _standin(
    fleet: Fleet, circuits: list[QuantumCircuit], shots: list[int | None]
) -> list[Sampled]:
    """Split each shots-group over the devices that fit, weighted by concurrency."""
    out: list[Sampled | None] = [None] * len(circuits)
    groups: dict[tuple[int | None, int], list[int]] = {}
    for i, (c, s) in enumerate(zip(circuits, shots, strict=True)):
        groups.setdefault((s, c.num_qubits), []).append(i)
    limits = {d.spec: asyncio.Semaphore(max(1, d.limits.max_concurrent_jobs)) for d in fleet}

    async def run(device: Device, idx: list[int], s: int | None) -> None:
        async with limits[device.spec]:
            result = await device.run([circuits[i] for i in idx], s)
        for i, r in zip(idx, result.results, strict=True):
            out[i] = Sampled(device.spec, r)

    jobs: list[Awaitable[None]] = []
    for (s, width), idx in groups.items():
        devices = eligible(fleet, width, exact=s is None)
        weights = [max(1, d.limits.max_concurrent_jobs) for d in devices]
        total = sum(weights)
        start = 0
        for k, (device, w) in enumerate(zip(devices, weights, strict=True)):
            stop = len(idx) if k == len(devices) - 1 else start + round(len(idx) * w / total)
            share = idx[start:stop]
            start = stop
            size = max(1, device.limits.max_circuits_per_job)
            jobs.extend(run(device, share[j : j + size], s) for j in range(0, len(share), size))
    await _gather_cancelling(jobs)
    return [o for o in out if o is not None]


async def _gather_cancelling(coros: Sequence[Awaitable[None]]) -> None:
    """Run all; on the first failure (or cancellation) cancel the rest and re-raise."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
