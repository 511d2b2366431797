"""Shot-wise distribution: a circuit's shots split into parts before placement, merged after.

This layer sits above the placement core, which it leaves untouched: it expands every input
circuit whose shots must (or may) be split into *parts*, ordinary items the core places like
any batch, and merges the parts' results back into one result per input circuit.

When a circuit is split (``split_shots``, an option of ``fleet.sample`` / ``fleet.run``):

* ``False``: never over several devices. A circuit whose shots exceed every eligible device's
  cap (``DeviceLimits.max_shots``) runs as several parts pinned to one device, the one the
  policy prefers for it (``most_accurate``: the best estimated fidelity; ``cheapest``: the
  lowest price; otherwise the earliest expected finish among the policy's preferred devices).
  The parts go as several jobs, or as several copies of the circuit in one job where the
  device batches circuits (``max_circuits_per_job`` > 1). Merged counts are exact sums.
* ``"auto"`` (the default): as ``False``, except for a circuit of at least
  :data:`AUTO_MIN_SHOTS` shots that holds more than its share of the run (more than the run's
  shots divided by its eligible devices, so one device would be left with the tail while
  the others idle) when the user asked for speed (``policy="fastest"`` or a ``deadline_s``):
  that circuit is spread as with ``True``, with no part pinned.
* ``True``: the shots are cut into :data:`PARTS_PER_DEVICE` parts per eligible device (wide
  enough, and allowed by the request), each within the smallest eligible cap and at least
  :data:`MIN_PART_SHOTS` shots (:func:`spread_count`). One part is pinned to every device
  the policy prefers that is expected (learned queue wait, per-job overhead and speed) to
  finish one part no later than the best single device could finish the whole circuit,
  and at least to the two devices expected to finish a part first (the user asked for a
  spread, even where it does not pay); a device expected to be slower gets no pinned part
  (an earlier version pinned one to every eligible device: on busy queues the run then
  waited for the slowest queue of the fleet, see docs/shots.md). For speed, use
  ``"auto"`` with ``policy="fastest"``: the same parts, none pinned. The other
  parts are not pinned: the core places them like any batch, earliest expected finish
  first, several copies per job where a device batches circuits, and with that many parts
  its exploration applies (each device never used before gets a one-part probe job, hedged
  like any straggler if slow).
  Budgets count every part: each is priced (per-task fees included) and charged against
  ``budget_usd`` and the fidelity budget.

Parts on simulators are independent draws: every batch draws from its own child of the
device's ``SeedSequence`` and every circuit of a batch gets its own seed.

A merged result keeps its per-device shares (``TaskResult.parts``). When the parts ran on
several devices, a chi-square test of homogeneity (devices x outcomes, rare outcomes pooled)
asks whether the shares differ by more than shot noise; its outcome is
``TaskResult.compatibility``. Merged counts are offered only when the test passes
(p >= :data:`ALPHA`): otherwise ``TaskResult.counts`` raises
:class:`~multiqpu.errors.IncompatibleResultsError` and the per-device counts are the result.

The journal records the parts as the run's tasks, and the plan (which part belongs to which
circuit) with the run's options, so ``resume`` reruns only the parts that had not finished.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from multiqpu.errors import InvalidInputError
from multiqpu.scheduler._costmodel import Item

if TYPE_CHECKING:
    from multiqpu.device import Device
    from multiqpu.pool import DevicePool
    from multiqpu.scheduler._options import Options
    from multiqpu.scheduler._recorder import RunRecorder
    from multiqpu.scheduler._report import SampleResult

__all__ = [
    "ALPHA",
    "AUTO_MIN_SHOTS",
    "MIN_PART_SHOTS",
    "PARTS_PER_DEVICE",
    "PLAN_KEY",
    "Compatibility",
    "ShotPlan",
    "ShotShare",
    "SplitShots",
    "check_split",
    "eligible",
    "expand",
    "split_and_execute",
    "spread_count",
    "spread_pins",
    "homogeneity",
    "merge",
]

SplitShots = Literal["auto"] | bool
#: Significance level of the homogeneity test: below it, parts are not merged.
ALPHA = 1e-3
#: A part spread over devices has at least this many shots.
MIN_PART_SHOTS = 100
#: Parts per eligible device when a circuit is spread: enough that the core explores every
#: device (it probes when a run has at least 10 tasks per device) and can balance the tail.
PARTS_PER_DEVICE = 10
#: ``split_shots="auto"`` spreads only circuits with at least this many shots.
AUTO_MIN_SHOTS = 10_000
#: Where the plan is stored among the run's recorded options.
PLAN_KEY = "shot_plan"


def check_split(value: Any) -> SplitShots:
    if value == "auto" or value is True or value is False:
        return value
    raise InvalidInputError(f"split_shots must be 'auto', True or False, got {value!r}")


@dataclass(frozen=True)
class ShotPlan:
    """Which circuit each part belongs to: ``owner[p]`` is part ``p``'s input index."""

    n_items: int
    owner: tuple[int, ...]
    #: per part: the device it is pinned to (None: wherever the policy places it)
    pinned: tuple[str | None, ...] = ()

    @property
    def trivial(self) -> bool:
        """Every circuit is one part: nothing to merge."""
        return self.owner == tuple(range(self.n_items))

    def restrict(self, parts: Sequence[Item]) -> list[Item]:
        """``parts`` as loaded from the journal, pinned again where the plan pinned them."""
        return [
            replace(it, devices=frozenset({spec})) if spec is not None else it
            for it, spec in zip(parts, self.pinned or [None] * len(parts), strict=True)
        ]

    def to_json(self) -> dict[str, Any]:
        return {"n_items": self.n_items, "owner": list(self.owner), "pinned": list(self.pinned)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShotPlan:
        return cls(
            int(data["n_items"]),
            tuple(int(i) for i in data["owner"]),
            tuple(data.get("pinned") or ()),
        )


@dataclass(frozen=True)
class Compatibility:
    """The chi-square homogeneity test of a circuit's per-device shares.

    ``compatible`` is ``p_value >= alpha``: the shares differ by no more than shot noise
    would explain, and their sum is offered as the merged counts."""

    statistic: float
    dof: int
    p_value: float
    alpha: float = ALPHA
    test: str = "chi-square homogeneity (devices x outcomes, outcomes expected < 5 pooled)"

    @property
    def compatible(self) -> bool:
        return self.p_value >= self.alpha


@dataclass(frozen=True)
class ShotShare:
    """One device's share of a split circuit: its summed counts over its ``parts``."""

    device: str
    shots: int
    counts: Mapping[str, int]
    parts: int
    job_ids: tuple[str, ...]
    estimated_fidelity: float | None = None

    def distribution(self) -> dict[str, float]:
        return {k: v / self.shots for k, v in self.counts.items()} if self.shots else {}


# ---------------------------------------------------------------------- expand
#: most parts (jobs) one circuit's shots are split into
MAX_PARTS = 10_000


def _sizes(shots: int, n: int) -> list[int]:
    q, r = divmod(shots, n)
    return [q + 1] * r + [q] * (n - r)


def eligible(devices: Sequence[Device], item: Item, lost: Set[str] = frozenset()) -> list[int]:
    return [
        d
        for d, dev in enumerate(devices)
        if dev.num_qubits >= item.circuit.num_qubits
        and (item.devices is None or dev.spec in item.devices)
        and dev.spec not in lost
    ]


def spread_count(shots: int, caps: Sequence[int]) -> int:
    """How many parts a circuit of ``shots`` spread over devices with ``caps`` (one per
    eligible device) is cut into: :data:`PARTS_PER_DEVICE` per device, each within the
    smallest cap and of at least :data:`MIN_PART_SHOTS` shots (or one part)."""
    want = min(PARTS_PER_DEVICE * len(caps), shots // MIN_PART_SHOTS)
    return max(math.ceil(shots / min(caps)), want, 1)


def spread_pins(
    wait: np.ndarray,
    overhead: np.ndarray,
    run_s: np.ndarray,
    concurrency: np.ndarray,
    jobs: np.ndarray,
    parts: int,
    least: int = 2,
) -> np.ndarray:
    """Which devices (indices into the arrays) get one pinned part of a circuit spread
    into ``parts`` parts: those expected to finish a part (``wait + overhead + run_s /
    parts``) no later than the best device could finish the whole circuit alone (``wait +
    run_s / min(concurrency, jobs) + overhead x ceil(jobs / concurrency)``, ``jobs`` the
    parts it needs within its cap), and at least the ``least`` devices expected to finish
    a part first (the user asked for a spread). ``run_s``: the whole circuit's seconds."""
    alone = wait + run_s / np.minimum(concurrency, jobs) + overhead * np.ceil(jobs / concurrency)
    part = wait + overhead + run_s / parts
    order = np.argsort(part, kind="stable")
    keep = part[order] <= alone.min(initial=np.inf)
    keep[:least] = True
    return np.sort(order[keep])


def _spreads(mode: SplitShots, opts: Options, shots: int, total: int, devices: int) -> bool:
    if mode == "auto":
        hurry = opts.policy == "fastest" or opts.deadline_s is not None
        return hurry and shots >= AUTO_MIN_SHOTS and shots * devices > total
    return bool(mode)


async def _choose(
    pool: DevicePool,
    items: Sequence[Item],
    need: Sequence[int],
    opts: Options,
    spread: Mapping[int, int],
) -> tuple[dict[int, int], dict[int, list[int]]]:
    """From one probe of the devices: the device each of ``need`` (indices of items too
    large for one job) is pinned to, and for each item of ``spread`` (index -> parts) the
    devices given one part each (``split_shots=True``, see the module docstring)."""
    from multiqpu.scheduler._policy import masks
    from multiqpu.scheduler._probing import probe

    devices = list(pool)
    caps = [dev.limits.max_shots for dev in devices]
    reps: list[Item] = []
    for it in items:
        elig = eligible(devices, it)
        small = min((caps[d] for d in elig), default=1)
        reps.append(replace(it, shots=min(it.shots, small)) if it.shots is not None else it)
    idx = np.asarray(sorted({*need, *spread}), dtype=np.int64)
    p = await probe(pool, reps, opts, idx)
    t = p.tables
    m = masks(
        opts.policy,
        fits=t.fits,
        fidelity=t.fidelity,
        price=t.price,
        alive=p.alive,
        floor=t.floor,
        margin=opts.fidelity_margin,
    )
    wait, speed, over = p.learner.wait(), p.learner.speed(), p.learner.overhead()
    out, pins = {}, {}
    for i in idx.tolist():
        c, shots, rep = int(p.cls[i]), int(items[i].shots or 0), int(reps[i].shots or 1)
        cand = np.flatnonzero(m.preferred[c] & t.fits[c])
        if len(cand) == 0:
            cand = np.flatnonzero(m.allowed[c])
        n = np.array([math.ceil(shots / caps[d]) for d in cand])
        conc = np.array([max(p.concurrency[d], 1) for d in cand])
        run_s = t.raw_s[c, cand] * speed[cand] * shots / rep
        alone = wait[cand] + run_s / np.minimum(conc, n) + over[cand] * np.ceil(n / conc)
        if i in spread:
            pins[i] = [int(cand[k]) for k in spread_pins(wait[cand], over[cand], run_s, conc, n,
                                                          spread[i])]  # fmt: skip
            continue
        if opts.policy == "most_accurate":
            key = -t.fidelity[c, cand]
        elif opts.policy == "cheapest":
            key = np.nan_to_num(t.price[c, cand], nan=np.inf) * shots / rep
        else:
            key = alone
        out[i] = int(cand[int(np.argmin(key))])
    return out, pins


async def expand(
    pool: DevicePool,
    items: Sequence[Item],
    opts: Options,
    mode: SplitShots,
    lost: Set[str] = frozenset(),
) -> tuple[list[Item], ShotPlan]:
    """The parts to place instead of ``items``, and the plan to merge them back; devices in
    ``lost`` (specs) are given no part."""
    devices = list(pool)
    total = sum(it.shots or 0 for it in items)
    counts: list[int] = []
    pinned: list[int] = []
    spread: dict[int, int] = {}  # split_shots=True: parts of each spread circuit
    for i, it in enumerate(items):
        elig = eligible(devices, it, lost)
        if it.shots is None or not elig:
            counts.append(1)
            continue
        caps = [devices[d].limits.max_shots for d in elig]
        if len(elig) > 1 and _spreads(mode, opts, it.shots, total, len(elig)):
            counts.append(spread_count(it.shots, caps))
            if mode is True:
                spread[i] = counts[-1]
        elif it.shots > max(caps):
            counts.append(0)  # sized once its device is chosen
            pinned.append(i)
        else:
            counts.append(1)
    where, first = (
        await _choose(pool, items, pinned, opts, spread) if pinned or spread else ({}, {})
    )
    parts: list[Item] = []
    owner: list[int] = []
    pins: list[str | None] = []
    for i, it in enumerate(items):
        if i in where:
            dev = devices[where[i]]
            n = math.ceil(int(it.shots or 0) / dev.limits.max_shots)
            allowed: frozenset[str] | None = frozenset({dev.spec})
        else:
            n, allowed = counts[i], it.devices
        if n > MAX_PARTS:  # refused before anything is submitted (or a list of n parts built)
            raise InvalidInputError(
                f"shots={it.shots} for circuit {i} would take {n} jobs at the devices' "
                f"max_shots; at most {MAX_PARTS} parts per circuit"
            )
        if n == 1:
            parts.append(it)
            owner.append(i)
            pins.append(None)
            continue
        mine = [devices[d].spec for d in first.get(i, [])]
        for k, s in enumerate(_sizes(int(it.shots or 0), n)):
            pin = devices[where[i]].spec if i in where else mine[k] if k < len(mine) else None
            parts.append(replace(it, shots=s, devices=frozenset({pin}) if pin else allowed))
            owner.append(i)
            pins.append(pin)
    return parts, ShotPlan(len(items), tuple(owner), tuple(pins))


# ---------------------------------------------------------------------- merge
def homogeneity(shares: Sequence[Mapping[str, int]]) -> Compatibility:
    """Chi-square test that ``shares`` (counts per device) come from one distribution."""
    from scipy.stats import chi2

    keys = sorted({k for s in shares for k in s})
    table = np.array([[s.get(k, 0) for k in keys] for s in shares], dtype=float)
    rows = table.sum(axis=1, keepdims=True)
    cols = table.sum(axis=0, keepdims=True)
    expected = rows @ cols / table.sum()
    rare = expected.min(axis=0) < 5
    if rare.any():
        pooled = table[:, rare].sum(axis=1, keepdims=True)
        table = np.hstack([table[:, ~rare], pooled])
        table = table[:, table.sum(axis=0) > 0]
        cols = table.sum(axis=0, keepdims=True)
        expected = rows @ cols / table.sum()
    dof = (table.shape[0] - 1) * (table.shape[1] - 1)
    if dof == 0:
        return Compatibility(0.0, 0, 1.0)
    stat = float(((table - expected) ** 2 / expected).sum())
    return Compatibility(stat, dof, float(chi2.sf(stat, dof)))


def _add(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for k, v in counts.items():
        into[k] = into.get(k, 0) + int(v)


def merge(out: SampleResult, plan: ShotPlan) -> SampleResult:
    """One result per input circuit from the parts' results (see the module docstring)."""
    from multiqpu.device import CircuitResult
    from multiqpu.scheduler._report import SampleResult, TaskResult

    groups: list[list[TaskResult]] = [[] for _ in range(plan.n_items)]
    for part, owner in zip(out.results, plan.owner, strict=True):
        groups[owner].append(part)
    results: list[TaskResult] = []
    split = 0
    for i, group in enumerate(groups):
        if len(group) == 1:
            results.append(replace(group[0], index=i))
            continue
        split += 1
        per: dict[str, list[TaskResult]] = {}
        for r in group:
            per.setdefault(r.device, []).append(r)
        shares = []
        for spec, rs in per.items():
            counts: dict[str, int] = {}
            for r in rs:
                _add(counts, r.counts)
            fids = [r.estimated_fidelity for r in rs if r.estimated_fidelity is not None]
            shares.append(
                ShotShare(
                    spec,
                    sum(int(r.shots or 0) for r in rs),
                    counts,
                    len(rs),
                    tuple(dict.fromkeys(r.job_id for r in rs)),
                    float(np.mean(fids)) if fids else None,
                )
            )
        merged: dict[str, int] = {}
        for s in shares:
            _add(merged, s.counts)
        total = sum(s.shots for s in shares)
        compat = homogeneity([s.counts for s in shares]) if len(shares) > 1 else None
        fid = [(s.estimated_fidelity, s.shots) for s in shares if s.estimated_fidelity is not None]
        sources = {r.source for r in group}
        results.append(
            TaskResult(
                index=i,
                device=shares[0].device if len(shares) == 1 else "+".join(per),
                job_id=",".join(dict.fromkeys(j for s in shares for j in s.job_ids)),
                result=CircuitResult(
                    merged,
                    total,
                    metadata={"shot_parts": len(group), "devices": [s.device for s in shares]},
                ),
                estimated_fidelity=(sum(f * n for f, n in fid) / sum(n for _, n in fid))
                if fid
                else None,
                source=sources.pop() if len(sources) == 1 else "run",
                parts=tuple(shares),
                compatibility=compat,
            )
        )
    report = replace(
        out.report,
        circuits=plan.n_items,
        extra={**dict(out.report.extra), "shot_parts": len(plan.owner), "split_circuits": split},
    )
    return SampleResult(tuple(results), report)


# ---------------------------------------------------------------------- run
async def split_and_execute(
    pool: DevicePool, items: Sequence[Item], opts: Options, *, journal: RunRecorder | None
) -> SampleResult:
    """Expand ``items`` into parts, run them with the executor (re-planning the parts a lost
    device leaves behind, see :mod:`multiqpu.scheduler._shotrun`), merge the parts back."""
    from multiqpu.scheduler._executor import execute
    from multiqpu.scheduler._shotrun import run_parts

    parts, plan = await expand(pool, items, opts, check_split(opts.split_shots))
    if plan.trivial:
        return await execute(pool, items, opts, journal=journal)
    return await run_parts(pool, items, parts, plan, opts, journal=journal)
