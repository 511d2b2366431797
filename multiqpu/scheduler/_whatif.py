"""``simulate``: ask "what if" of the scheduler on a simulated fleet, in virtual time."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from multiqpu.errors import InvalidInputError
from multiqpu.scheduler._core import CoreConfig
from multiqpu.scheduler._fleets import random_fleet, reference_fleet
from multiqpu.scheduler._learning import DeviceKnowledge
from multiqpu.scheduler._policy import POLICIES, PolicyName, masks
from multiqpu.scheduler._simfleet import SimDevice, Workload
from multiqpu.scheduler._virtual import (
    REDUNDANCY,
    QueueProcess,
    SimRun,
    run_virtual,
    tables_for,
)

__all__ = ["SimulationResult", "simulate"]

STRATEGIES = ("multiqpu", "least_busy", "round_robin")


@dataclass(frozen=True)
class SimulationResult:
    """One virtual run: makespan, fidelity, per-device figures, optional comparisons.

    ``baselines`` maps ``least_busy`` / ``round_robin`` to their makespan and mean fidelity on
    the same fleet and queues; ``lower_bound_s`` is the fluid lower bound (see
    docs/scheduler.md) over every device ``policy`` may use for each circuit, on the real
    queues and speeds; for ``balanced``, among schedules that lose no more estimated fidelity
    than this run did. ``start_waits_fluid_s`` is the same program on the waits that jobs
    submitted at the start see (per-job jitter included, no later, luckier submission): not
    a lower bound, a diagnostic; what separates it from ``lower_bound_s`` is queue luck that
    only hindsight could plan for.
    """

    policy: str
    devices: int
    circuits: int
    makespan_s: float
    mean_fidelity: float
    per_device: tuple[Mapping[str, Any], ...]
    jobs: int
    hedges: int
    steals: int
    retries: int
    failovers: int
    placements: int
    placements_per_s: float
    wall_s: float
    lower_bound_s: float | None = None
    start_waits_fluid_s: float | None = None
    baselines: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    limits: Mapping[str, int] = field(default_factory=dict)
    knowledge: tuple[DeviceKnowledge, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "knowledge"}
        out["per_device"] = [dict(d) for d in self.per_device]
        out["baselines"] = {k: dict(v) for k, v in self.baselines.items()}
        return out


def _summary(run: SimRun, devices: Sequence[SimDevice]) -> tuple[Mapping[str, Any], ...]:
    st = run.stats
    rows = []
    for d, dev in enumerate(devices):
        n = int(st.circuits[d])
        rows.append(
            {
                "device": dev.name,
                "jobs": int(st.jobs[d]),
                "circuits": n,
                "mean_wait_s": float(st.wait_s[d] / st.waited_jobs[d])
                if st.waited_jobs[d]
                else None,
                "busy_s": float(st.exec_s[d]),
                "mean_fidelity": float(st.fidelity[d] / n) if n else None,
                "cost_usd": float(st.cost_usd[d]),
                "failures": int(st.failures[d]),
                "dropped": d in st.dropped,
            }
        )
    return tuple(rows)


def lower_bound(
    devices: Sequence[SimDevice],
    workload: Workload,
    queues: QueueProcess,
    *,
    policy: str,
    counts: np.ndarray,
    margin: float = 0.02,
    start_s: float = 0.0,
    fidelity_loss: float | None = None,
    floor: bool = False,
    used: np.ndarray | None = None,
    hindsight: bool = True,
) -> float:
    """The fluid lower bound for every device ``policy`` may ever use (real waits and speeds).

    Each device starts at the earliest time any job submitted at or after ``start_s`` could
    start on the real (simulated) queue (:meth:`QueueProcess.earliest_start`: a job sent
    later may see a shorter queue), then works at its real speed with the per-job overhead
    shared by the largest allowed jobs, and no later than it is lost for good (``lost_at``;
    outages are left out: the bound only gets lower). Eligibility: ``fastest``/``balanced``,
    every device that fits (``balanced`` may use any when ``max_slowdown`` binds; with
    ``max_slowdown=None``, those above its per-circuit floor, ``FLOOR_MARGINS`` x
    ``margin`` below the class's best device); ``most_accurate`` and ``cheapest``, per
    class, the devices the policy prefers for it and those the run used for it (``used``,
    classes x devices; a vector of devices applies to every class): the policy moves work
    off its preferred device only when it must (a lost or failing device, a deadline, a late
    session's rescue), so no schedule that runs each class where the policy did can beat
    the bound; with ``used`` counts per class, also no more circuits off the preferred
    devices than the run moved. ``fidelity_loss``: also lose at most that
    much estimated fidelity, summed over the circuits, against each circuit's most accurate
    device (pass what the run lost: no schedule that loses no more can finish earlier).
    ``queues`` must be a fresh copy of the run's queue process (same seed), as it only moves
    forward in time. ``hindsight=False``: each device starts after the wait of a job
    submitted at ``start_s`` instead (no longer a lower bound: see ``SimulationResult``).
    """
    from multiqpu.scheduler._bounds import fluid_lower_bound
    from multiqpu.scheduler._policy import FLOOR_MARGINS

    t = tables_for(devices, workload)
    seconds = t.raw_s * np.array([d.speed_bias for d in devices]) + np.array(
        [d.overhead_s / d.max_circuits_per_job for d in devices]
    )
    if hindsight:
        starts = [queues.earliest_start(d, start_s) for d in range(len(devices))]
        waits = np.array(starts) - start_s
    else:
        waits = np.array([queues.wait(d, start_s) for d in range(len(devices))])
    # a device lost for good works until then, no later (relative to start_s)
    ends = np.array([np.inf if d.lost_at is None else d.lost_at - start_s for d in devices])
    alive = np.ones(len(devices), dtype=bool)
    common = {"fits": t.fits, "fidelity": t.fidelity, "price": t.price, "alive": alive}
    may = masks("fastest", floor=t.floor, margin=margin, **common).preferred
    if policy == "balanced" and floor:
        fid = np.where(may, t.fidelity, -np.inf)
        best = fid.max(axis=1, initial=-np.inf)[:, None]
        may = may & (fid >= best * (1.0 - min(FLOOR_MARGINS * margin, 1.0)) - 1e-12)
    if policy in ("most_accurate", "cheapest") and used is not None:
        used = np.asarray(used)
        if used.ndim == 1:
            may = may & (used[None, :] > 0)
        else:
            # per class: the devices the policy prefers for it (the most accurate, the
            # cheapest), and those the run fell back to for it (a lost or failing device, a
            # deadline, a rescue), with no more circuits off the preferred devices in all
            # than the run moved off them
            name: PolicyName = "most_accurate" if policy == "most_accurate" else "cheapest"
            pref = masks(name, floor=t.floor, margin=margin, **common).preferred
            may = may & (pref | (used > 0))
            off = may & ~pref
            moved = float(np.where(off, used, 0).sum())
            return fluid_lower_bound(
                counts, seconds, waits, may, loss=off.astype(float), budget=moved, ends=ends
            )
    loss = None
    if fidelity_loss is not None:
        top = np.where(may, t.fidelity, -np.inf).max(axis=1, initial=-np.inf)
        loss = np.where(may, np.maximum(top[:, None] - t.fidelity, 0.0), 0.0)
    return fluid_lower_bound(
        counts, seconds, waits, may, loss=loss, budget=fidelity_loss, ends=ends
    )


def simulate(
    devices: int | Sequence[SimDevice] = 10,
    circuits: int | Workload = 2000,
    *,
    policy: str = "balanced",
    shots: int = 4000,
    seed: int = 0,
    history: bool = False,
    compare: bool = False,
    bound: bool = False,
    knowledge: Sequence[DeviceKnowledge | None] | None = None,
    **options: Any,
) -> SimulationResult:
    """Run the scheduler on simulated devices in virtual time.

    ``devices``: a number (the 10-device reference fleet for 10, else devices drawn from the
    same archetypes) or a list of :class:`~multiqpu.scheduler.SimDevice`. ``circuits``: a
    number (a mixed workload of cut fragments and shards, ``shots`` each) or a
    :class:`~multiqpu.scheduler.Workload`. ``history``: first run the same workload two hours
    earlier (other queue draws), so the scheduler starts from what it learned then, as it
    would on a fleet in daily use; ``knowledge`` passes such state explicitly. ``compare``: also
    run the least-busy and round-robin baselines on the same queues. ``bound``: compute the
    fluid lower bound. Options go to the placement core (``fidelity_margin``, ``hedging``,
    ``explore``, ``budget_usd``, ``deadline_s``, ``redundancy`` (default 2: queued copies per
    job), ``max_hedge_fraction``, ``max_failures``, ``min_job_s``, ``job_timeout_s``,
    ``risk_z``); any other name raises :class:`~multiqpu.InvalidInputError`.
    """
    if policy not in POLICIES:
        raise InvalidInputError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if isinstance(devices, int):
        if devices < 1:
            raise InvalidInputError("devices must be >= 1")
        fleet = reference_fleet() if devices == 10 else random_fleet(devices, seed=seed)
    else:
        fleet = list(devices)
    if isinstance(circuits, int):
        if circuits < 1:
            raise InvalidInputError("circuits must be >= 1")
        workload = Workload.mixed(circuits, shots=shots)
    else:
        workload = circuits
    allowed = {f for f in CoreConfig.__dataclass_fields__ if f not in ("policy", "deadline_at")}
    unknown = sorted(set(options) - allowed - {"deadline_s"})
    if unknown:
        raise InvalidInputError(f"unknown simulate option(s): {', '.join(unknown)}")
    deadline = options.pop("deadline_s", None)
    options.setdefault("redundancy", REDUNDANCY)
    if "fidelity_margin" in options:  # a margin the user set is a hard target
        options.setdefault("max_slowdown", None)
    config = CoreConfig(policy=policy, deadline_at=deadline, **options)

    def queues(shift: int = 0, hours: float = 10.0) -> QueueProcess:
        return QueueProcess(fleet, seed=seed + 2 + shift, epoch_s=hours * 3600.0)

    tic = time.perf_counter()
    if history and knowledge is None:
        # the same workload two hours earlier, on the queues as they were then
        warm = run_virtual(
            fleet, workload, config=config, seed=seed + 100, queues=queues(1000, 8.0)
        )
        knowledge = warm.knowledge
    run = run_virtual(
        fleet, workload, config=config, seed=seed, queues=queues(), knowledge=knowledge
    )
    st = run.stats
    baselines: dict[str, dict[str, float]] = {}
    if compare:
        for strategy in ("least_busy", "round_robin"):
            b = run_virtual(fleet, workload, strategy=strategy, seed=seed, queues=queues())
            baselines[strategy] = {
                "makespan_s": b.stats.makespan,
                "mean_fidelity": b.stats.mean_fidelity(),
            }
    lb = at_start = None
    if bound:
        from multiqpu.scheduler._tables import StreamSource

        counts = StreamSource(workload.n, workload.probabilities(), seed=seed + 1).class_counts(
            len(workload.circuits)
        )
        lost = None
        if policy == "balanced":
            # what the run lost against each circuit's most accurate device: the bound is for
            # schedules that lose no more
            t = tables_for(fleet, workload)
            top = np.where(t.fits, t.fidelity, -np.inf).max(axis=1, initial=-np.inf)
            reach = float(counts @ np.where(np.isfinite(top), top, 0.0))
            lost = max(reach - float(st.fidelity.sum()), 0.0)
        lb, at_start = (
            lower_bound(
                fleet,
                workload,
                queues(),
                policy=policy,
                counts=counts,
                margin=config.fidelity_margin,
                fidelity_loss=lost,
                floor=config.max_slowdown is None,
                used=st.by_class if st.by_class is not None else st.circuits,
                hindsight=hindsight,
            )
            for hindsight in (True, False)
        )
    return SimulationResult(
        policy=policy,
        devices=len(fleet),
        circuits=workload.n,
        makespan_s=st.makespan,
        mean_fidelity=st.mean_fidelity(),
        per_device=_summary(run, fleet),
        jobs=int(st.jobs.sum()),
        hedges=st.hedges,
        steals=st.steals,
        retries=st.retries,
        failovers=st.failovers,
        placements=st.placements,
        placements_per_s=st.placements_per_s(),
        wall_s=time.perf_counter() - tic,
        lower_bound_s=lb,
        start_waits_fluid_s=at_start,
        baselines=baselines,
        limits=dict(st.limits),
        knowledge=run.knowledge,
    )
