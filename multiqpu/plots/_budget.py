"""An estimate's error budget: each (fragment, device) pair's share of its standard error."""

from __future__ import annotations

import math
import os
from typing import Any

from multiqpu.errors import InvalidInputError
from multiqpu.plots._mpl import new_figure, require_matplotlib, save

__all__ = ["budget_rows", "error_budget", "largest"]


def _budget(result: Any) -> Any:
    report = getattr(result, "report", result)
    budget = getattr(report, "error_budget", None)
    if not budget:
        raise InvalidInputError(
            "this result carries no error budget: it is recorded for the estimates of "
            "multiqpu.pipeline.estimate / fleet.estimate without mitigation, with shots "
            "(exact results have no sampling error)"
        )
    return budget


def largest(result: Any) -> int:
    """The observable of ``result`` with the largest variance."""
    budget = _budget(result)
    totals = [sum(s.variance[k] for s in budget) for k in range(len(budget[0].variance))]
    return max(range(len(totals)), key=lambda k: totals[k])


def budget_rows(result: Any, observable: int = 0) -> list[tuple[str, float]]:
    """``(label, share of the variance)`` per (fragment, device) pair of ``result`` (an
    estimate, or its report) for one observable, largest first; the shares add up to 1."""
    budget = _budget(result)
    k = observable
    if not 0 <= k < len(budget[0].variance):
        raise InvalidInputError(
            f"observable {k} is out of range: the estimate has {len(budget[0].variance)}"
        )
    total = sum(s.variance[k] for s in budget)
    if total <= 0:
        raise InvalidInputError(f"observable {k} has zero variance: no error to apportion")
    rows = [(f"fragment {s.fragment} on {s.device}", s.variance[k] / total) for s in budget]
    return sorted(rows, key=lambda r: -r[1])


def error_budget(
    result: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    observable: int | None = None,
    width: float = 8.0,
) -> Any:
    """A bar per (fragment, device) pair: its share of the estimate's variance (the shares
    add up to 100 %), labelled with the standard error it alone would give. ``result``: an
    :class:`~multiqpu.cutting.EstimateResult` (or its report); ``observable``: which one
    (default: the one with the largest standard error)."""
    require_matplotlib()
    if observable is None:
        observable = largest(result)
    rows = budget_rows(result, observable)
    report = getattr(result, "report", result)
    variance = sum(s.variance[observable] for s in report.error_budget)
    labels = getattr(result, "labels", None)
    name = labels[observable] if labels else f"observable {observable}"
    fig = new_figure(width, 1.2 + 0.4 * len(rows))
    ax = fig.add_subplot()
    y = list(range(len(rows)))[::-1]
    shares = [100 * r[1] for r in rows]
    ax.barh(y, shares, color="#2b6ca3")
    ax.set_yticks(y, labels=[r[0] for r in rows])
    for yy, (_, share) in zip(y, rows, strict=True):
        se = math.sqrt(share * variance)
        ax.text(100 * share, yy, f" {100 * share:.1f} %  (se {se:.2g})", va="center", fontsize=8)
    ax.set_xlim(0, max(shares) * 1.35)
    ax.set_xlabel("share of the variance (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(
        f"error budget of {name}: standard error {math.sqrt(variance):.3g} (first order)",
        loc="left",
        fontsize=10,
    )
    save(fig, path)
    return fig
