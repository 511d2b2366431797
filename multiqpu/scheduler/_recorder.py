"""What the executor records of a run, and where: the :class:`RunRecorder` protocol.

The executor tells a recorder every step of a run: the run starts (its circuits), a job is
about to be submitted, was submitted, finished (with its results), failed or was cancelled,
and the run finishes. :class:`multiqpu.journal.Journal` implements it (so that an interrupted
run can be resumed, see docs/journal.md); :class:`NullRecorder` keeps nothing and is used
when a run has no journal, so that the executor never asks whether there is one.

A recorder is also where a result cache lives (:meth:`RunRecorder.cached_result`); one that
keeps nothing has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult, JobTimings

__all__ = [
    "NULL_RECORDER",
    "ForwardingRecorder",
    "NullRecorder",
    "RunRecorder",
    "RunState",
    "recorder_for",
    "where_results_are",
]

RunState = Literal["done", "failed", "cancelled"]


class RunRecorder(Protocol):
    """Records a run as the executor drives it (see the module docstring). Job rows are the
    recorder's ids for jobs, returned by :meth:`job_submitting`."""

    def start_run(
        self,
        run_id: str,
        *,
        circuits: Sequence[QuantumCircuit],
        shots: Sequence[int | None],
        options: Mapping[str, Any],
    ) -> None:
        """A new run with its circuits and shots (not called when a run is resumed)."""

    def job_submitting(
        self, run_id: str, *, device: str, task_indices: Sequence[int], shots: int | None
    ) -> int:
        """A job is about to be submitted; returns its row."""

    def job_submitted(self, job_row: int, provider_job_id: str) -> None:
        """The provider accepted the job under ``provider_job_id``."""

    def job_done(
        self,
        job_row: int,
        results: Sequence[CircuitResult],
        *,
        calibration_fingerprint: str | None,
        timings: JobTimings | None,
    ) -> None:
        """The job finished with ``results`` (one per task, in order)."""

    def job_failed(self, job_row: int, error: str, *, final: bool) -> None:
        """The job failed; its tasks are tried again unless ``final``."""

    def job_cancelled(self, job_row: int) -> None:
        """The job was cancelled (a lost race, a dropped device) or its results dropped."""

    def results_quarantined(
        self, run_id: str, device: str, indices: Sequence[int], reason: str
    ) -> None:
        """A device failed its canary checks; its results of ``indices`` are run again
        elsewhere (:mod:`multiqpu.trust`)."""

    def finish_run(self, run_id: str, state: RunState) -> None:
        """The run ended: ``done``, ``failed`` or ``cancelled``."""

    def cached_result(
        self, circuit: QuantumCircuit, shots: int | None, candidates: Sequence[tuple[str, str]]
    ) -> tuple[int, CircuitResult] | None:
        """A stored result of ``circuit`` with ``shots`` on the first of ``candidates``
        (device spec, calibration fingerprint) that has one: (its position, the result)."""


class NullRecorder:
    """A :class:`RunRecorder` that keeps nothing (a run without a journal)."""

    def start_run(
        self,
        run_id: str,
        *,
        circuits: Sequence[QuantumCircuit],
        shots: Sequence[int | None],
        options: Mapping[str, Any],
    ) -> None:
        return None

    def job_submitting(
        self, run_id: str, *, device: str, task_indices: Sequence[int], shots: int | None
    ) -> int:
        return 0

    def job_submitted(self, job_row: int, provider_job_id: str) -> None:
        return None

    def job_done(
        self,
        job_row: int,
        results: Sequence[CircuitResult],
        *,
        calibration_fingerprint: str | None,
        timings: JobTimings | None,
    ) -> None:
        return None

    def job_failed(self, job_row: int, error: str, *, final: bool) -> None:
        return None

    def job_cancelled(self, job_row: int) -> None:
        return None

    def results_quarantined(
        self, run_id: str, device: str, indices: Sequence[int], reason: str
    ) -> None:
        return None

    def finish_run(self, run_id: str, state: RunState) -> None:
        return None

    def cached_result(
        self, circuit: QuantumCircuit, shots: int | None, candidates: Sequence[tuple[str, str]]
    ) -> tuple[int, CircuitResult] | None:
        return None

    def __repr__(self) -> str:
        return "<NullRecorder>"


class ForwardingRecorder:
    """A :class:`RunRecorder` that passes every call on to ``inner``, job rows translated by
    :meth:`_inner` (identity here). Wrappers that keep something of their own (the timeline,
    a shot plan) subclass it and override only the calls they watch."""

    def __init__(self, inner: RunRecorder) -> None:
        self.inner = inner

    def _inner(self, job_row: int) -> int:
        return job_row

    def start_run(
        self,
        run_id: str,
        *,
        circuits: Sequence[QuantumCircuit],
        shots: Sequence[int | None],
        options: Mapping[str, Any],
    ) -> None:
        self.inner.start_run(run_id, circuits=circuits, shots=shots, options=options)

    def job_submitting(
        self, run_id: str, *, device: str, task_indices: Sequence[int], shots: int | None
    ) -> int:
        return self.inner.job_submitting(
            run_id, device=device, task_indices=task_indices, shots=shots
        )

    def job_submitted(self, job_row: int, provider_job_id: str) -> None:
        self.inner.job_submitted(self._inner(job_row), provider_job_id)

    def job_done(
        self,
        job_row: int,
        results: Sequence[CircuitResult],
        *,
        calibration_fingerprint: str | None,
        timings: JobTimings | None,
    ) -> None:
        self.inner.job_done(
            self._inner(job_row),
            results,
            calibration_fingerprint=calibration_fingerprint,
            timings=timings,
        )

    def job_failed(self, job_row: int, error: str, *, final: bool) -> None:
        self.inner.job_failed(self._inner(job_row), error, final=final)

    def job_cancelled(self, job_row: int) -> None:
        self.inner.job_cancelled(self._inner(job_row))

    def results_quarantined(
        self, run_id: str, device: str, indices: Sequence[int], reason: str
    ) -> None:
        self.inner.results_quarantined(run_id, device, indices, reason)

    def finish_run(self, run_id: str, state: RunState) -> None:
        self.inner.finish_run(run_id, state)

    def cached_result(
        self, circuit: QuantumCircuit, shots: int | None, candidates: Sequence[tuple[str, str]]
    ) -> tuple[int, CircuitResult] | None:
        return self.inner.cached_result(circuit, shots, candidates)


NULL_RECORDER = NullRecorder()


def recorder_for(journal: RunRecorder | None) -> RunRecorder:
    """The recorder to drive: ``journal``, or :data:`NULL_RECORDER` for none."""
    return NULL_RECORDER if journal is None else journal


def where_results_are(recorder: RunRecorder, run_id: str) -> str:
    """Where a run that stops early leaves its finished results, for an error message."""
    inner = recorder
    while isinstance(inner, ForwardingRecorder):
        inner = inner.inner
    if isinstance(inner, NullRecorder):
        return "the run has no journal, so its finished results are not kept (pass journal=)"
    return f"finished results are in the journal (run {run_id})"
