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
  that circuit is spread as with ``True``.
* ``True``: the shots are cut into at least two parts per eligible device (each within the
  smallest eligible cap, at least :data:`MIN_PART_SHOTS` each); every eligible device (wide
  enough, and allowed by the request) is given one part, so the run really spreads, and the
  core places the rest over the devices the policy allows, like any batch. Budgets count
  every part: each is priced (per-task fees included) and charged against ``budget_usd``
  and the fidelity budget.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from multiqpu.errors import InvalidInputError
from multiqpu.scheduler._costmodel import Item

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult, Device, JobTimings
    from multiqpu.pool import DevicePool
    from multiqpu.scheduler._options import Options
    from multiqpu.scheduler._recorder import RunRecorder, RunState
    from multiqpu.scheduler._report import SampleResult

__all__ = [
    "ALPHA",
    "AUTO_MIN_SHOTS",
    "MIN_PART_SHOTS",
    "PLAN_KEY",
    "Compatibility",
    "PlanRecorder",
    "ShotPlan",
    "ShotShare",
    "SplitShots",
    "check_split",
    "expand",
    "split_and_execute",
    "homogeneity",
    "merge",
]

SplitShots = Literal["auto"] | bool
#: Significance level of the homogeneity test: below it, parts are not merged.
ALPHA = 1e-3
#: A part spread over devices has at least this many shots.
MIN_PART_SHOTS = 100
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


def _eligible(devices: Sequence[Device], item: Item) -> list[int]:
    return [
        d
        for d, dev in enumerate(devices)
        if dev.num_qubits >= item.circuit.num_qubits
        and (item.devices is None or dev.spec in item.devices)
    ]


def _spreads(mode: SplitShots, opts: Options, shots: int, total: int, devices: int) -> bool:
    if mode == "auto":
        hurry = opts.policy == "fastest" or opts.deadline_s is not None
        return hurry and shots >= AUTO_MIN_SHOTS and shots * devices > total
    return bool(mode)


async def _choose(
    pool: DevicePool, items: Sequence[Item], need: Sequence[int], opts: Options
) -> dict[int, int]:
    """The device each of ``need`` (indices of items too large for one job) is pinned to."""
    from multiqpu.scheduler._policy import masks
    from multiqpu.scheduler._probing import probe

    devices = list(pool)
    caps = [dev.limits.max_shots for dev in devices]
    reps: list[Item] = []
    for it in items:
        elig = _eligible(devices, it)
        small = min((caps[d] for d in elig), default=1)
        reps.append(replace(it, shots=min(it.shots, small)) if it.shots is not None else it)
    p = await probe(pool, reps, opts, np.asarray(need, dtype=np.int64))
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
    out = {}
    for i in need:
        c, shots, rep = int(p.cls[i]), int(items[i].shots or 0), int(reps[i].shots or 1)
        cand = np.flatnonzero(m.preferred[c] & t.fits[c])
        if len(cand) == 0:
            cand = np.flatnonzero(m.allowed[c])
        n = np.array([math.ceil(shots / caps[d]) for d in cand])
        if opts.policy == "most_accurate":
            key = -t.fidelity[c, cand]
        elif opts.policy == "cheapest":
            price = np.nan_to_num(t.price[c, cand], nan=np.inf)
            key = price * shots / rep + n * 0.0
        else:
            conc = np.array([max(p.concurrency[d], 1) for d in cand])
            run_s = t.raw_s[c, cand] * speed[cand] * shots / rep
            key = wait[cand] + run_s / np.minimum(conc, n) + over[cand] * np.ceil(n / conc)
        out[i] = int(cand[int(np.argmin(key))])
    return out


async def expand(
    pool: DevicePool, items: Sequence[Item], opts: Options, mode: SplitShots
) -> tuple[list[Item], ShotPlan]:
    """The parts to place instead of ``items``, and the plan to merge them back."""
    devices = list(pool)
    total = sum(it.shots or 0 for it in items)
    counts: list[int] = []
    pinned: list[int] = []
    spread: dict[int, list[str]] = {}  # split_shots=True: one part on each eligible device
    for i, it in enumerate(items):
        elig = _eligible(devices, it)
        if it.shots is None or not elig:
            counts.append(1)
            continue
        caps = [devices[d].limits.max_shots for d in elig]
        if len(elig) > 1 and _spreads(mode, opts, it.shots, total, len(elig)):
            n = max(math.ceil(it.shots / min(caps)), min(2 * len(elig), it.shots // MIN_PART_SHOTS))
            counts.append(max(n, 1))
            if mode is True:
                spread[i] = [devices[d].spec for d in elig]
        elif it.shots > max(caps):
            counts.append(0)  # sized once its device is chosen
            pinned.append(i)
        else:
            counts.append(1)
    where = await _choose(pool, items, pinned, opts) if pinned else {}
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
        first = spread.get(i, [])
        for k, s in enumerate(_sizes(int(it.shots or 0), n)):
            pin = first[k] if k < len(first) else devices[where[i]].spec if i in where else None
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


# ---------------------------------------------------------------------- journal
class PlanRecorder:
    """A :class:`~multiqpu.scheduler._recorder.RunRecorder` that records the shot plan with
    the run's options (under :data:`PLAN_KEY`) and passes everything else on."""

    def __init__(self, inner: RunRecorder, plan: ShotPlan) -> None:
        self.inner = inner
        self.plan = plan

    def start_run(
        self,
        run_id: str,
        *,
        circuits: Sequence[QuantumCircuit],
        shots: Sequence[int | None],
        options: Mapping[str, Any],
    ) -> None:
        options = {**options, PLAN_KEY: self.plan.to_json()}
        self.inner.start_run(run_id, circuits=circuits, shots=shots, options=options)

    def job_submitting(
        self, run_id: str, *, device: str, task_indices: Sequence[int], shots: int | None
    ) -> int:
        return self.inner.job_submitting(
            run_id, device=device, task_indices=task_indices, shots=shots
        )

    def job_submitted(self, job_row: int, provider_job_id: str) -> None:
        self.inner.job_submitted(job_row, provider_job_id)

    def job_done(
        self,
        job_row: int,
        results: Sequence[CircuitResult],
        *,
        calibration_fingerprint: str | None,
        timings: JobTimings | None,
    ) -> None:
        self.inner.job_done(
            job_row, results, calibration_fingerprint=calibration_fingerprint, timings=timings
        )

    def job_failed(self, job_row: int, error: str, *, final: bool) -> None:
        self.inner.job_failed(job_row, error, final=final)

    def job_cancelled(self, job_row: int) -> None:
        self.inner.job_cancelled(job_row)

    def results_quarantined(
        self, run_id: str, device: str, indices: Sequence[int], reason: str
    ) -> None:
        forward = getattr(self.inner, "results_quarantined", None)  # optional for old recorders
        if forward is not None:
            forward(run_id, device, indices, reason)

    def finish_run(self, run_id: str, state: RunState) -> None:
        self.inner.finish_run(run_id, state)

    def cached_result(
        self, circuit: QuantumCircuit, shots: int | None, candidates: Sequence[tuple[str, str]]
    ) -> tuple[int, CircuitResult] | None:
        return self.inner.cached_result(circuit, shots, candidates)


async def split_and_execute(
    pool: DevicePool, items: Sequence[Item], opts: Options, *, journal: RunRecorder | None
) -> SampleResult:
    """Expand ``items`` into parts, run them with the executor, merge the parts back."""
    from multiqpu.scheduler._executor import execute
    from multiqpu.scheduler._recorder import recorder_for

    parts, plan = await expand(pool, items, opts, check_split(opts.split_shots))
    if plan.trivial:
        return await execute(pool, items, opts, journal=journal)
    # equal parts are separate draws: a cached result would repeat one draw for all of them
    opts = replace(opts, cache=False)
    out = await execute(pool, parts, opts, journal=PlanRecorder(recorder_for(journal), plan))
    return merge(out, plan)
