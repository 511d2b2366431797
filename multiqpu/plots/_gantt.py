"""The run timeline: a Gantt chart of jobs per device (see :func:`timeline`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError
from multiqpu.plots._mpl import new_figure, require_matplotlib, save

if TYPE_CHECKING:
    from multiqpu.scheduler._timeline import JobSpan

__all__ = ["COLORS", "lanes", "timeline"]

#: Fill colours: the queued and running parts of a job, and the states that end it badly.
COLORS = {
    "submitting": "#d9d9d9",
    "queued": "#b7d3ea",
    "running": "#2b6ca3",
    "failed": "#f4a3a3",
    "failed_edge": "#d62728",
    "cancelled": "#9e9e9e",
    "result": "#111111",
    "hedge": "#ff7f0e",
    "band": "#f4f4f4",
}


def _spans_of(source: Any) -> tuple[tuple[JobSpan, ...], str | None]:
    """The jobs of a run report, of a result holding one (``result.report``), or of the
    scheduler runs behind an estimate or a mitigated result (``report.scheduler_reports``),
    on one time axis; or ``source`` itself when it is a sequence of spans."""
    report = source
    if getattr(source, "timeline", None) is None and getattr(source, "report", None) is not None:
        report = source.report
    if getattr(report, "timeline", None) is not None:  # a RunReport
        return tuple(report.timeline), f"run {report.run_id} ({report.policy})"
    runs = getattr(report, "scheduler_reports", None)
    if runs is not None:  # an estimate's or a mitigated run's report
        spans = sorted((s for r in runs for s in r.timeline), key=lambda s: s.created_at)
        ids = ", ".join(r.run_id for r in runs)
        return tuple(spans), (f"runs {ids}" if len(runs) > 1 else f"run {ids}") if ids else None
    if isinstance(source, Sequence):
        return tuple(source), None
    raise InvalidInputError(
        f"a timeline is drawn from a result, a run report, or job spans; got "
        f"{type(source).__name__}"
    )


def lanes(spans: Sequence[JobSpan], gap: float = 0.0) -> list[int]:
    """Per span, its lane within its device's row: overlapping jobs on one device (several
    in flight at once) are stacked rather than drawn over each other; a lane is reused
    ``gap`` seconds after its last job ended (so that two jobs never look like one)."""
    ends: dict[str, list[float]] = {}
    out = []
    for s in spans:
        end = s.finished_at if s.finished_at is not None else float("inf")
        free = ends.setdefault(s.device, [])
        lane = next((k for k, e in enumerate(free) if e + gap <= s.created_at), None)
        if lane is None:
            lane = len(free)
            free.append(end)
        else:
            free[lane] = end
        out.append(lane)
    return out


def timeline(
    source: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    title: str | None = None,
    width: float = 11.0,
) -> Any:
    """A Gantt chart of a run's jobs: devices down the side, seconds since the run's first
    job across; per job the time it was being submitted (grey), queued at the device (light
    blue) and running (dark blue), a dot where its result came back; failed jobs in red with
    a cross, cancelled ones grey, hedges outlined in black. ``source``: a run report, a
    result holding one (``result.report``), or :class:`~multiqpu.scheduler.JobSpan` s."""
    require_matplotlib()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    spans, auto_title = _spans_of(source)
    if not spans:
        raise InvalidInputError(
            "this run has no jobs to draw (every result came from the cache or the journal)"
        )
    t0 = min(s.created_at for s in spans)
    last = max(
        (t for s in spans for t in (s.finished_at, s.started_at, s.submitted_at) if t is not None),
        default=t0,
    )
    horizon = max(last - t0, 1e-3)
    devices = list(dict.fromkeys(s.device for s in spans))
    lane = lanes(spans, gap=horizon * 0.02)
    n_lanes = {d: 1 + max(k for s, k in zip(spans, lane, strict=True) if s.device == d)
               for d in devices}  # fmt: skip
    # rows top to bottom in order of first use; each device gets a band of its lanes
    base: dict[str, float] = {}
    y = 0.0
    for d in reversed(devices):
        base[d] = y
        y += n_lanes[d] + 0.6
    height = max(2.2, 0.9 + 0.32 * y)
    fig = new_figure(width, height)
    ax = fig.add_subplot()
    bar = 0.8

    def box(x0: float, x1: float, yy: float, color: str, **kw: Any) -> None:
        ax.broken_barh([(x0 - t0, max(x1 - x0, horizon * 2e-3))], (yy, bar), facecolors=color,
                       **kw)  # fmt: skip

    for s, k in zip(spans, lane, strict=True):
        yy = base[s.device] + (n_lanes[s.device] - 1 - k) + (1 - bar) / 2
        end = s.finished_at if s.finished_at is not None else last
        sub = s.submitted_at if s.submitted_at is not None else end
        start = s.started_at if s.started_at is not None else end
        sub = min(max(sub, s.created_at), end)
        start = min(max(start, sub), end)
        edge = {"edgecolor": COLORS["hedge"], "linewidth": 1.2} if s.hedge else {}
        if s.hedge:
            ax.plot(s.created_at - t0, yy + bar / 2, marker=">", color=COLORS["hedge"],
                    markersize=6, zorder=3)  # fmt: skip
        box(s.created_at, sub, yy, COLORS["submitting"], **edge)
        if s.state == "failed":
            box(sub, end, yy, COLORS["failed"], **(edge or {"edgecolor": COLORS["failed_edge"]}))
            ax.plot(end - t0, yy + bar / 2, marker="x", color=COLORS["failed_edge"],
                    markersize=7, mew=2, zorder=3)  # fmt: skip
            continue
        if s.state == "cancelled":
            box(sub, end, yy, COLORS["cancelled"], hatch="//", **edge)
            continue
        box(sub, start, yy, COLORS["queued"], **edge)
        box(start, end, yy, COLORS["running"], **edge)
        if s.state == "done":
            ax.plot(end - t0, yy + bar / 2, marker="o", color=COLORS["result"], markersize=4)
        if end - start > horizon * 0.04:
            ax.text((start + end) / 2 - t0, yy + bar / 2, str(len(s.tasks)), ha="center",
                    va="center", color="white", fontsize=7)  # fmt: skip

    for j, d in enumerate(devices):  # a light band behind every other device's row
        if j % 2 == 0:
            ax.axhspan(base[d] - 0.3, base[d] + n_lanes[d] + 0.3, color=COLORS["band"], zorder=0)
    ax.set_yticks([base[d] + n_lanes[d] / 2 for d in devices], labels=devices)
    ax.set_ylim(-0.3, y - 0.3)
    ax.set_xlim(0, horizon * 1.02)
    ax.set_xlabel("seconds since the run's first job")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    jobs, hedges = len(spans), sum(s.hedge for s in spans)
    failed = sum(s.state == "failed" for s in spans)
    ax.set_title(
        f"{title or auto_title or 'run'}: {jobs} jobs on {len(devices)} devices, "
        f"{failed} failed, {hedges} hedges",
        loc="left",
        fontsize=10,
    )
    handles = [
        Patch(facecolor=COLORS["submitting"], label="submitting"),
        Patch(facecolor=COLORS["queued"], label="queued at device"),
        Patch(facecolor=COLORS["running"], label="running (n = circuits)"),
        Line2D([], [], marker="o", color=COLORS["result"], ls="", markersize=4, label="result"),
        Patch(facecolor=COLORS["failed"], edgecolor=COLORS["failed_edge"], label="failed"),
        Patch(facecolor=COLORS["cancelled"], hatch="//", label="cancelled"),
        Line2D([], [], marker=">", color=COLORS["hedge"], ls="", label="hedge (copy)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=7, fontsize=8, frameon=False)
    save(fig, path)
    return fig
