"""Pictures of runs: a run timeline, an estimate's error budget, training curves.

matplotlib is an optional extra (``pip install 'multiqpu[plot]'``), imported only when a
picture is drawn; without it every function here raises a
:class:`~multiqpu.errors.MissingDependencyError` that names the install command.

* :func:`timeline`: a Gantt chart of a run's jobs, one row per device, time across: the
  queued part of each job light, the running part solid, the result a dot at its end;
  failed jobs red with a cross, cancelled ones grey, hedges (copies of work already in
  flight on another device) outlined in black. Drawn from a run report
  (``result.report.plot()``), from a list of :class:`~multiqpu.scheduler.JobSpan` s, or from
  the job journal (:func:`journal_timeline`, what ``multiqpu runs show RUN_ID --plot``
  draws).
* :func:`error_budget`: how much each (fragment, device) pair of an estimate contributes to
  its variance (``result.report.error_budget``).
* :func:`training`: loss and accuracy per epoch of a QNN training history.

Every function returns the matplotlib ``Figure`` and saves it to ``path`` when one is given
(PNG, SVG or PDF by the extension). No pyplot state is touched: figures are built on
matplotlib's object API, so drawing works in scripts, servers and notebooks alike.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError
from multiqpu.plots._budget import error_budget
from multiqpu.plots._gantt import timeline
from multiqpu.plots._mpl import require_matplotlib

if TYPE_CHECKING:
    from multiqpu.scheduler._report import RunReport

__all__ = [
    "error_budget",
    "journal_timeline",
    "plot_cutting_report",
    "plot_report",
    "require_matplotlib",
    "timeline",
    "training",
]

PathLike = str | os.PathLike[str]


def journal_timeline(
    run_id: str, path: PathLike | None = None, *, journal: Any = None, **kwargs: Any
) -> Any:
    """The timeline of run ``run_id`` as the job journal recorded it (``journal``: a
    :class:`~multiqpu.journal.Journal`, a path, or None for the default journal)."""
    from multiqpu.journal import Journal
    from multiqpu.scheduler._timeline import spans_from_records

    require_matplotlib()
    owned = not isinstance(journal, Journal)
    jr = Journal(journal) if owned else journal
    try:
        spans = spans_from_records(jr.jobs(run_id))
    finally:
        if owned:
            jr.close()
    return timeline(spans, path, title=f"run {run_id}", **kwargs)


def training(history: Any, path: PathLike | None = None) -> Any:
    """Loss and accuracy per epoch of a :class:`~multiqpu.qnn.History` (or a trainer's
    ``fit`` result holding one as ``.history``)."""
    require_matplotlib()
    history = getattr(history, "history", history)
    if not hasattr(history, "plot"):
        raise InvalidInputError(f"expected a training History, got {type(history).__name__}")
    return history.plot(path)


def plot_report(report: RunReport, kind: str = "timeline", path: Any = None, **kwargs: Any) -> Any:
    """What ``RunReport.plot`` draws: ``kind="timeline"`` (the only kind a run report has)."""
    if kind != "timeline":
        raise InvalidInputError(
            f"a run report draws kind='timeline', not {kind!r}; an estimate's error budget is "
            "result.report.plot('error_budget') on the estimate"
        )
    return timeline(report, path, **kwargs)


def plot_cutting_report(report: Any, kind: str = "error_budget", path: Any = None,
                        **kwargs: Any) -> Any:  # fmt: skip
    """What ``CuttingReport.plot`` and ``MitigationReport.plot`` draw: ``"error_budget"``
    (estimates without mitigation), or ``"timeline"`` (the jobs of the scheduler runs behind
    the result, on one time axis)."""
    if kind == "error_budget":
        return error_budget(report, path, **kwargs)
    if kind == "timeline":
        return timeline(report, path, **kwargs)
    raise InvalidInputError(f"kind must be 'error_budget' or 'timeline', got {kind!r}")
