"""What a scheduler run returns: per-circuit results in input order and a run report, and
how the executor builds the report from the core's statistics (:func:`build_report`).

Costs are estimates (``device.estimate_cost``). A device that cannot price a circuit is not
counted as free: its circuits are counted in ``DeviceReport.unpriced_circuits``, left out of
``cost_usd`` and ``total_cost_usd``, and the device is named in ``RunReport.unpriced_devices``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

    from multiqpu.device import CircuitResult
    from multiqpu.scheduler._learning import Learner
    from multiqpu.scheduler._shots import Compatibility, ShotShare
    from multiqpu.scheduler._stats import Stats
    from multiqpu.scheduler._timeline import JobSpan
    from multiqpu.trust import TrustReport

__all__ = ["DeviceReport", "RunReport", "SampleResult", "TaskResult", "build_report"]


@dataclass(frozen=True)
class TaskResult:
    """The result of one input circuit and where it came from.

    ``source`` is ``"run"`` (a job of this run), ``"cache"`` (the journal's result cache) or
    ``"journal"`` (recorded by an earlier, interrupted attempt of this run).

    A circuit whose shots were split (see docs/shots.md) has ``parts``: one
    :class:`~multiqpu.scheduler.ShotShare` per device that ran some of them. When they ran on
    several devices, ``compatibility`` is the homogeneity test of the shares; ``counts``
    (the exact sum of the shares) is offered only when it passed, and raises
    :class:`~multiqpu.errors.IncompatibleResultsError` otherwise.
    """

    index: int
    device: str
    job_id: str
    result: CircuitResult
    estimated_fidelity: float | None = None
    source: str = "run"
    parts: tuple[ShotShare, ...] = ()
    compatibility: Compatibility | None = None

    @property
    def merged(self) -> bool:
        """Whether ``counts`` may be used: one device, or shares compatible with each other."""
        return self.compatibility is None or self.compatibility.compatible

    def _check_merged(self) -> None:
        if not self.merged:
            from multiqpu.errors import IncompatibleResultsError

            c = self.compatibility
            assert c is not None
            shares = ", ".join(f"{s.device}: {s.shots} shots" for s in self.parts)
            raise IncompatibleResultsError(
                f"circuit {self.index}'s shots ran on several devices ({shares}) whose counts "
                f"differ by more than shot noise (chi-square {c.statistic:.1f} on {c.dof} "
                f"degrees of freedom, p={c.p_value:.2g} < {c.alpha:g}); they are not merged. "
                "Use result.parts for each device's counts, or run with split_shots=False"
            )

    @property
    def counts(self) -> Mapping[str, int]:
        self._check_merged()
        return self.result.counts

    @property
    def probabilities(self) -> Mapping[str, float] | None:
        return self.result.probabilities

    @property
    def shots(self) -> int | None:
        return self.result.shots

    def distribution(self) -> dict[str, float]:
        self._check_merged()
        return self.result.distribution()


@dataclass(frozen=True)
class DeviceReport:
    """One device's share of a run. ``cost_usd`` covers the circuits whose price the
    device could estimate; ``unpriced_circuits`` counts the others (not in the cost)."""

    device: str
    jobs: int
    circuits: int
    shots: int
    failures: int
    mean_wait_s: float | None
    mean_execution_s: float | None
    mean_estimated_fidelity: float | None
    cost_usd: float
    learned_wait_s: float | None = None
    reported_wait_s: float | None = None
    dropped: bool = False
    unpriced_circuits: int = 0


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else format(value, spec)
    )


@dataclass(frozen=True)
class RunReport:
    """How a run went: per device, and overall.

    ``total_cost_usd`` excludes circuits whose price was unknown; ``unpriced_devices`` names
    the devices that could not price some circuit of the run (whether or not they ran it).
    ``limits`` counts what bound the run's placement decisions: ``"fidelity_margin"`` /
    ``"max_slowdown"`` per ``balanced`` plan (``"max_slowdown_fallback"``: 1 when the run
    fell back to ``fastest`` because a job ran late), ``"deadline_s"`` / ``"budget_usd"`` per
    placement that the user's deadline widened or budget narrowed; ``bound_by`` names the
    one that bound most (see docs/scheduler.md, "Which limit bound the run").
    """

    run_id: str
    policy: str
    circuits: int
    makespan_s: float
    devices: tuple[DeviceReport, ...]
    mean_estimated_fidelity: float | None
    total_cost_usd: float
    retries: int = 0
    hedges: int = 0
    hedges_won: int = 0
    #: jobs hedged because they overran their estimate while work was left (not in the tail)
    overrun_hedges: int = 0
    steals: int = 0
    failovers: int = 0
    probes: int = 0
    from_cache: int = 0
    from_journal: int = 0
    placements: int = 0
    placements_per_s: float | None = None
    dropped_devices: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    unpriced_devices: tuple[str, ...] = ()
    #: which limits bound placement decisions, and how often (see ``bound_by``)
    limits: Mapping[str, int] = field(default_factory=dict)
    #: every job of the run, in creation order (:class:`~multiqpu.scheduler.JobSpan`)
    timeline: tuple[JobSpan, ...] = ()
    #: canary checks and quarantine (:class:`~multiqpu.trust.TrustReport`; None without
    #: ``trust=``)
    trust: TrustReport | None = None

    def plot(self, kind: str = "timeline", path: Any = None, **kwargs: Any) -> Any:
        """Draw the run (matplotlib, ``pip install 'multiqpu[plot]'``): ``kind="timeline"``,
        a Gantt chart of every job per device (queued, running, failed, hedges). Saves to
        ``path`` when given; returns the matplotlib figure. See :mod:`multiqpu.plots`."""
        from multiqpu.plots import plot_report

        return plot_report(self, kind, path, **kwargs)

    @property
    def bound_by(self) -> str | None:
        """The limit that bound most of the run's placement decisions (None: none did)."""
        return max(self.limits, key=lambda k: self.limits[k]) if self.limits else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["devices"] = [asdict(d) for d in self.devices]
        out["dropped_devices"] = list(self.dropped_devices)
        out["unpriced_devices"] = list(self.unpriced_devices)
        out["extra"] = dict(self.extra)
        out["timeline"] = [asdict(s) for s in self.timeline]
        out["limits"] = dict(self.limits)
        out["bound_by"] = self.bound_by
        return out

    def to_json(self, **kwargs: Any) -> str:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        return json.dumps(clean(self.to_dict()), **kwargs)

    def table(self) -> Table:
        """A rich table: one row per device, with the run's totals in the caption."""
        from rich import box
        from rich.table import Table

        table = Table(
            title=f"run {self.run_id} ({self.policy}): {self.circuits} circuits in "
            f"{self.makespan_s:.2f} s",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            padding=(0, 1, 0, 0),
        )
        # cost and failure columns only when they say something (keeps 80 columns)
        paid = any(d.cost_usd or d.unpriced_circuits for d in self.devices)
        failed = any(d.failures for d in self.devices)
        names = ["jobs", "circuits", "shots", "queue s", "wait s", "run s", "est. F"]
        names += ["cost $"] * paid + ["fail"] * failed
        table.add_column("device", no_wrap=True)
        for name in names:
            table.add_column(name, justify="right", no_wrap=True)
        for d in self.devices:
            row = [
                d.device + (" (dropped)" if d.dropped else ""),
                str(d.jobs),
                str(d.circuits),
                str(d.shots),
                _fmt(d.reported_wait_s, ".2f"),
                _fmt(d.mean_wait_s, ".2f"),
                _fmt(d.mean_execution_s, ".2f"),
                _fmt(d.mean_estimated_fidelity, ".3f"),
            ]
            # "+?": some of its circuits have no known price (not in the figure)
            cost = _fmt(d.cost_usd, ".2f") + ("+?" if d.unpriced_circuits else "")
            row += [cost] * paid + [str(d.failures)] * failed
            table.add_row(*row)
        unpriced = sum(d.unpriced_circuits for d in self.devices)
        excluded = f" (excludes {unpriced} circuit(s) of unknown price)" if unpriced else ""
        table.caption = (
            f"queue s: the device's own queue report; wait s / run s: means over this run's "
            f"jobs. Mean est. fidelity {_fmt(self.mean_estimated_fidelity, '.3f')}, "
            f"cost ${self.total_cost_usd:.2f}{excluded}, retries {self.retries}, hedges "
            f"{self.hedges} ({self.hedges_won} won, {self.overrun_hedges} overrun), steals "
            f"{self.steals}, failovers {self.failovers}, cached {self.from_cache}, "
            f"from journal {self.from_journal}"
        )
        if self.limits:
            table.caption += f"; bound by {self.bound_by} " + (
                "(" + ", ".join(f"{k}: {v}" for k, v in sorted(self.limits.items())) + ")"
            )
        if self.unpriced_devices:
            table.caption += (
                "; no price known on " + ", ".join(self.unpriced_devices) + " for some circuits"
            )
        table.caption_justify = "left"
        return table

    def __rich__(self) -> Table:
        return self.table()

    def __str__(self) -> str:
        import io

        from rich.console import Console

        console = Console(width=120, record=True, file=io.StringIO(), color_system=None)
        console.print(self.table())
        return console.export_text().rstrip()


@dataclass(frozen=True)
class SampleResult:
    """Per-circuit results in input order (``results[i]`` is circuit ``i``), and the report."""

    results: tuple[TaskResult, ...]
    report: RunReport

    @property
    def run_id(self) -> str:
        return self.report.run_id

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[TaskResult]:
        return iter(self.results)

    def __getitem__(self, index: int) -> TaskResult:
        return self.results[index]

    @property
    def counts(self) -> list[Mapping[str, int]]:
        return [r.counts for r in self.results]

    @property
    def devices(self) -> list[str]:
        return [r.device for r in self.results]


def build_report(
    *,
    run_id: str,
    policy: str,
    devices: Sequence[str],
    results: Sequence[TaskResult | None],
    stats: Stats,
    learner: Learner,
    makespan_s: float,
    retries: int,
    errors: Mapping[str, str],
    unpriced: tuple[str, ...],
    timeline: tuple[JobSpan, ...] = (),
) -> RunReport:
    """The report of a run on ``devices`` (specs, in the core's order) from the core's
    statistics and learner; ``retries`` counts submission retries (the core's requeues are
    added), ``unpriced`` the devices that could not price some circuit."""
    import numpy as np

    st = stats
    learned, reported = learner.wait(), learner.reported
    rows = []
    served = [r for r in results if r is not None]
    for d, spec in enumerate(devices):
        n = int(st.circuits[d])
        rows.append(
            DeviceReport(
                device=spec,
                jobs=int(st.jobs[d]),
                circuits=n,
                shots=int(st.shots[d]),
                failures=int(st.failures[d]),
                mean_wait_s=float(st.wait_s[d] / st.waited_jobs[d]) if st.waited_jobs[d] else None,
                mean_execution_s=float(st.exec_s[d] / st.jobs[d]) if st.jobs[d] else None,
                mean_estimated_fidelity=float(st.fidelity[d] / n) if n else None,
                cost_usd=float(st.cost_usd[d]),
                learned_wait_s=float(learned[d]),
                reported_wait_s=float(reported[d]),
                dropped=d in st.dropped,
                unpriced_circuits=int(st.unpriced[d]),
            )
        )
    fids = [r.estimated_fidelity for r in served if r.estimated_fidelity is not None]
    return RunReport(
        run_id=run_id,
        policy=policy,
        circuits=len(results),
        makespan_s=makespan_s,
        devices=tuple(rows),
        mean_estimated_fidelity=float(np.mean(fids)) if fids else None,
        total_cost_usd=float(st.cost_usd.sum()),
        retries=retries + st.retries,
        hedges=st.hedges,
        hedges_won=st.hedges_won,
        overrun_hedges=st.overrun_hedges,
        steals=st.steals,
        failovers=st.failovers,
        probes=st.probes,
        from_cache=sum(r.source == "cache" for r in served),
        from_journal=sum(r.source == "journal" for r in served),
        placements=st.placements,
        placements_per_s=st.placements_per_s() if st.place_s > 0 else None,
        dropped_devices=tuple(devices[d] for d in st.dropped),
        extra={"errors": dict(errors)} if errors else {},
        unpriced_devices=unpriced,
        timeline=timeline,
        limits=dict(st.limits),
    )
