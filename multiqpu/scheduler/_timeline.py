"""What each job of a run did and when: the spans a run timeline is drawn from.

A :class:`JobSpan` is one job's life in wall-clock time (``time.time()``): created (the
scheduler decided to submit it), submitted (the provider accepted it), started (it left the
device's queue and ran), finished (result, failure or cancellation). The same spans come
from a live run (:class:`TimelineRecorder` keeps them as the executor records the run, and
the run report carries them: ``result.report.timeline``) and from the job journal
(:func:`spans_from_records`), so one drawing serves both. A resumed run's report holds the jobs
of that attempt; the journal holds every attempt's.

A job is marked a *hedge* when, at the moment it was created, some of its circuits were
already carried by an open job (submitting or submitted) of the same run on another
device: a copy of work in flight, whichever of the two finished first. Retries after a
failure and resubmissions after a cancellation are not hedges (the earlier job was closed).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from multiqpu.scheduler._recorder import ForwardingRecorder

if TYPE_CHECKING:
    from multiqpu.device import CircuitResult, JobTimings
    from multiqpu.scheduler._recorder import RunRecorder

__all__ = ["JobSpan", "TimelineRecorder", "mark_hedges", "spans_from_records"]


@dataclass(frozen=True)
class JobSpan:
    """One job of a run in wall-clock seconds (``time.time()``); None where unknown.

    ``state`` is ``done``, ``failed``, ``cancelled``, or ``submitting``/``submitted`` for a
    job still open (or left open by an interrupted run). Queued time is ``submitted_at ..
    started_at``, execution ``started_at .. finished_at``.
    """

    device: str
    tasks: tuple[int, ...]
    state: str
    created_at: float
    submitted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    shots: int | None = None
    error: str | None = None
    hedge: bool = False

    @property
    def queue_s(self) -> float | None:
        if self.submitted_at is None or self.started_at is None:
            return None
        return max(0.0, self.started_at - self.submitted_at)

    @property
    def execution_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)


def _open_elsewhere(other: JobSpan, span: JobSpan) -> bool:
    """Whether ``other`` was open on another device when ``span`` was created."""
    ended = other.finished_at
    return (
        other.device != span.device
        and other.created_at <= span.created_at
        and (ended is None or ended > span.created_at)
    )


def mark_hedges(spans: Sequence[JobSpan]) -> tuple[JobSpan, ...]:
    """``spans`` (in creation order) with ``hedge`` set on the jobs created while some of
    their circuits were in an open job on another device (see the module docstring). Each
    job is compared only with the earlier jobs that carried one of its circuits."""
    carriers: dict[int, list[int]] = {}  # task -> earlier spans that carried it
    out = []
    for k, span in enumerate(spans):
        earlier = {j for t in span.tasks for j in carriers.get(t, ())}
        hedge = any(_open_elsewhere(spans[j], span) for j in earlier)
        for t in span.tasks:
            carriers.setdefault(t, []).append(k)
        out.append(replace(span, hedge=hedge) if hedge != span.hedge else span)
    return tuple(out)


def spans_from_records(records: Iterable[Any]) -> tuple[JobSpan, ...]:
    """The spans of a run's :class:`~multiqpu.journal.JobRecord` s (``journal.jobs(run_id)``)."""
    spans = [
        JobSpan(
            device=r.device,
            tasks=tuple(r.task_indices),
            state=r.state,
            created_at=r.created_at,
            submitted_at=r.submitted_at,
            started_at=getattr(r, "started_at", None),
            finished_at=r.finished_at,
            shots=r.shots,
            error=r.error,
        )
        for r in records
    ]
    return mark_hedges(spans)


class TimelineRecorder(ForwardingRecorder):
    """A :class:`~multiqpu.scheduler._recorder.RunRecorder` that passes every call on to
    ``inner`` (the journal, or the null recorder) and keeps each job's span in memory."""

    def __init__(self, inner: RunRecorder) -> None:
        super().__init__(inner)
        self._spans: dict[int, dict[str, Any]] = {}
        # Our rows are negative, so that a row of the inner recorder (a job re-attached by
        # a resume) is told apart and passed through; our row -> the inner recorder's row.
        self._rows: dict[int, int] = {}
        self._ids = itertools.count(-1, -1)

    def _inner(self, job_row: int) -> int:
        return self._rows.get(job_row, job_row)

    def spans(self) -> tuple[JobSpan, ...]:
        """The jobs recorded so far, in creation order, hedges marked."""
        return mark_hedges([JobSpan(**s) for s in self._spans.values()])

    def job_submitting(
        self, run_id: str, *, device: str, task_indices: Sequence[int], shots: int | None
    ) -> int:
        inner = self.inner.job_submitting(
            run_id, device=device, task_indices=task_indices, shots=shots
        )
        row = next(self._ids)
        self._rows[row] = inner
        self._spans[row] = {
            "device": device,
            "tasks": tuple(int(i) for i in task_indices),
            "state": "submitting",
            "created_at": time.time(),
            "shots": shots,
        }
        return row

    def job_submitted(self, job_row: int, provider_job_id: str) -> None:
        super().job_submitted(job_row, provider_job_id)
        span = self._spans.get(job_row)
        if span is not None:
            span.update(state="submitted", submitted_at=time.time())

    def job_done(
        self,
        job_row: int,
        results: Sequence[CircuitResult],
        *,
        calibration_fingerprint: str | None,
        timings: JobTimings | None,
    ) -> None:
        super().job_done(
            job_row, results, calibration_fingerprint=calibration_fingerprint, timings=timings
        )
        span = self._spans.get(job_row)
        if span is None:
            return
        span.update(state="done", finished_at=time.time())
        if timings is not None:
            if timings.submitted_at:
                span["submitted_at"] = timings.submitted_at
            span["started_at"] = timings.started_at
            if timings.finished_at:
                span["finished_at"] = timings.finished_at

    def _close(self, job_row: int, state: str, error: str | None = None) -> None:
        span = self._spans.get(job_row)
        if span is not None and span["state"] in ("submitting", "submitted"):
            span.update(state=state, finished_at=time.time(), error=error)

    def job_failed(self, job_row: int, error: str, *, final: bool) -> None:
        super().job_failed(job_row, error, final=final)
        self._close(job_row, "failed", str(error))

    def job_cancelled(self, job_row: int) -> None:
        super().job_cancelled(job_row)
        self._close(job_row, "cancelled")

    def __repr__(self) -> str:
        return f"<TimelineRecorder over {self.inner!r}>"
