"""Running a batch of circuits on a device pool, for the primitives, PennyLane and the QNN.

Everything above the pool in this package (the Qiskit primitives, the PennyLane device, the
QNN trainer) hands its circuits to :func:`sample`: by default the scheduler
(:func:`multiqpu.scheduler.sample` on the pool) places, batches, retries and hedges, and
learns on the pool's shared knowledge; ``use_scheduler=False`` selects a small stand-in that
splits the batch over the devices that fit, in proportion to each device's concurrency, and
runs every device's share at once with ``device.run``. Shot counts above a device's
``max_shots`` are split into parts (by the scheduler's shots layer, or here for the stand-in)
and merged per device, so callers never see the limit; a circuit whose parts ran on several
devices keeps each device's share in ``Sampled.parts`` (docs/shots.md).

What a user passes as ``fleet=`` becomes a pool with :func:`multiqpu.pool.as_pool`; the
synchronous faces run their coroutines with :func:`multiqpu._sync.run_sync`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu._aio import gather_cancelling
from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult, Device
    from multiqpu.pool import DevicePool
    from multiqpu.scheduler import Compatibility

__all__ = ["Sampled", "eligible", "sample"]


@dataclass(frozen=True)
class Sampled:
    """One circuit's outcome and the device spec that produced it. When its shots ran on
    several devices, ``parts`` holds each device's share and ``compatibility`` the test of
    the shares against shot noise (docs/shots.md): ``result`` is their sum, to be used as
    counts only when :attr:`merged` (:meth:`counts` checks it); an estimate combines the
    shares per device instead."""

    device: str
    result: CircuitResult
    parts: tuple[Sampled, ...] = ()
    compatibility: Compatibility | None = None

    @property
    def merged(self) -> bool:
        """Whether ``result``'s counts may be used: one device, or compatible shares."""
        return self.compatibility is None or self.compatibility.compatible

    def counts(self, what: str = "counts") -> Mapping[str, int]:
        """The merged counts; :class:`~multiqpu.errors.IncompatibleResultsError` (naming
        ``what`` was asked for) when the devices' shares are not compatible."""
        if not self.merged:
            from multiqpu.errors import IncompatibleResultsError

            c = self.compatibility
            assert c is not None
            shares = ", ".join(f"{p.device}: {p.result.shots} shots" for p in self.parts)
            raise IncompatibleResultsError(
                f"{what}: the circuit's shots ran on several devices ({shares}) whose counts "
                f"differ by more than shot noise (chi-square {c.statistic:.1f} on {c.dof} "
                f"degrees of freedom, p={c.p_value:.2g} < {c.alpha:g}); they are not merged. "
                "Use fleet.sample(...) for each device's counts (result[i].parts), "
                "split_shots=False, or expectation values (combined per device)"
            )
        return self.result.counts

    def split_info(self) -> dict[str, Any]:
        """Each device's share and the compatibility test, as plain data (for metadata)."""
        c = self.compatibility
        return {
            "devices": [p.device for p in self.parts],
            "shots": [p.result.shots for p in self.parts],
            "counts": [dict(p.result.counts) for p in self.parts],
            "p_value": None if c is None else c.p_value,
            "compatible": self.merged,
        }


def eligible(pool: Iterable[Device], num_qubits: int, exact: bool) -> list[Device]:
    """Devices of ``pool`` wide enough (and exact, when asked for exact results)."""
    return [d for d in pool if d.num_qubits >= num_qubits and (d.exact or not exact)]


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
    pool: DevicePool,
    circuits: Sequence[QuantumCircuit],
    shots: int | Sequence[int | None] | None,
    *,
    policy: str = "balanced",
    use_scheduler: bool = True,
    split_shots: Any = "auto",
) -> list[Sampled]:
    """Run ``circuits`` on ``pool`` and return one :class:`Sampled` per circuit, in order.

    ``shots`` is one value for all circuits or one per circuit; ``None`` asks for exact
    probabilities, which only exact simulators give (an error names the fix when the pool
    has none). ``split_shots`` is the scheduler's option (docs/shots.md); the stand-in
    (which spreads a circuit's parts over the devices that fit) takes only ``"auto"``.
    """
    n = len(circuits)
    if n == 0:
        return []
    per = list(shots) if isinstance(shots, Sequence) else [shots] * n
    if len(per) != n:
        raise InvalidInputError(f"{n} circuits but {len(per)} shot counts")
    width = max(c.num_qubits for c in circuits)
    if any(s is None for s in per) and not eligible(pool, width, exact=True):
        raise InvalidInputError(
            "exact results (shots=None) need an exact simulator in the fleet, such as "
            "'local:ideal'; this fleet has "
            + (", ".join(d.spec for d in pool) or "no devices")
            + ". Pass a shot count, or add 'local:ideal' to the fleet"
        )
    if not eligible(pool, width, exact=False):
        raise InvalidInputError(
            f"no device of the fleet has the {width} qubits these circuits need"
        )
    if not use_scheduler and split_shots != "auto":
        raise InvalidInputError("split_shots is an option of the scheduler (use_scheduler=True)")
    if use_scheduler:  # the scheduler splits shots above a device's cap itself
        return await _with_scheduler(pool, list(circuits), per, policy, split_shots)
    limit = min(d.limits.max_shots for d in pool)
    # Split shot counts above the smallest device limit, run, and merge back per device.
    pieces: list[tuple[int, int | None]] = []
    for i, s in enumerate(per):
        pieces.extend((i, part) for part in _split_shots(s, limit))
    circs = [circuits[i] for i, _ in pieces]
    piece_shots = [s for _, s in pieces]
    items = await _standin(pool, circs, piece_shots)
    grouped: list[list[Sampled]] = [[] for _ in range(n)]
    for (i, _), item in zip(pieces, items, strict=True):
        grouped[i].append(item)
    return [_merged(g) for g in grouped]


def _merged(group: Sequence[Sampled]) -> Sampled:
    per: dict[str, list[CircuitResult]] = {}
    for s in group:
        per.setdefault(s.device, []).append(s.result)
    from multiqpu.scheduler._shots import homogeneity

    shares = tuple(Sampled(d, _merge(rs)) for d, rs in per.items())
    if len(shares) == 1:
        return shares[0]
    merged = _merge([s.result for s in shares])
    if any(s.result.shots is None for s in shares):  # exact probabilities: no shot noise
        return Sampled("+".join(per), merged, shares)
    test = homogeneity([s.result.counts for s in shares])
    return Sampled("+".join(per), merged, shares, test)


async def _with_scheduler(
    pool: DevicePool,
    circuits: list[QuantumCircuit],
    shots: list[int | None],
    policy: str,
    split_shots: Any = "auto",
) -> list[Sampled]:
    from multiqpu.scheduler import sample as scheduled

    out = await scheduled(pool, circuits, shots, policy, progress=False, split_shots=split_shots)
    return _items(out)


def _items(out: Any) -> list[Sampled]:
    """(device spec, CircuitResult) per circuit from what the scheduler returns."""
    items = []
    for row in getattr(out, "results", out):
        if isinstance(row, tuple):
            device, result = row[0], row[1]
        else:
            device, result = getattr(row, "device", "?"), getattr(row, "result", row)
        shares = getattr(row, "parts", ())
        parts = (
            tuple(_share(sh) for sh in shares) if len(shares) > 1 else ()
        )  # one device: its counts are an exact sum, nothing to combine
        test = getattr(row, "compatibility", None) if parts else None
        items.append(Sampled(str(getattr(device, "spec", device)), result, parts, test))
    return items


def _share(share: Any) -> Sampled:
    from multiqpu.device import CircuitResult

    return Sampled(share.device, CircuitResult(dict(share.counts), share.shots))


async def _standin(
    pool: DevicePool, circuits: list[QuantumCircuit], shots: list[int | None]
) -> list[Sampled]:
    """Split each shots-group over the devices that fit, weighted by concurrency."""
    out: list[Sampled | None] = [None] * len(circuits)
    groups: dict[tuple[int | None, int], list[int]] = {}
    for i, (c, s) in enumerate(zip(circuits, shots, strict=True)):
        groups.setdefault((s, c.num_qubits), []).append(i)
    limits = {d.spec: asyncio.Semaphore(max(1, d.limits.max_concurrent_jobs)) for d in pool}

    async def run(device: Device, idx: list[int], s: int | None) -> None:
        async with limits[device.spec]:
            result = await device.run([circuits[i] for i in idx], s)
        for i, r in zip(idx, result.results, strict=True):
            out[i] = Sampled(device.spec, r)

    jobs: list[Awaitable[None]] = []
    for (s, width), idx in groups.items():
        devices = eligible(pool, width, exact=s is None)
        weights = [max(1, d.limits.max_concurrent_jobs) for d in devices]
        total = sum(weights)
        start = 0
        for k, (device, w) in enumerate(zip(devices, weights, strict=True)):
            stop = len(idx) if k == len(devices) - 1 else start + round(len(idx) * w / total)
            share = idx[start:stop]
            start = stop
            size = max(1, device.limits.max_circuits_per_job)
            jobs.extend(run(device, share[j : j + size], s) for j in range(0, len(share), size))
    await gather_cancelling(jobs)
    return [o for o in out if o is not None]
