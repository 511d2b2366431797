"""Run timelines (from a run report and from the journal), error budgets, training curves,
and the progress switch, on real devices, a real SQLite journal and real matplotlib."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

import pytest

import multiqpu
from multiqpu.device import DeviceLimits
from multiqpu.journal import Journal
from multiqpu.scheduler import JobSpan
from multiqpu.scheduler._timeline import TimelineRecorder, mark_hedges, spans_from_records
from multiqpu.testing.faults import FaultyDevice

PNG = b"\x89PNG\r\n\x1a\n"


def _ghz(n: int, tag: int):  # type: ignore[no-untyped-def]
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n, name=f"ghz{n}_{tag}")
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    qc.rz(0.001 * tag, 0)  # distinct circuits
    qc.measure_all()
    return qc


def _faulty_fleet() -> multiqpu.Fleet:
    small = DeviceLimits(max_circuits_per_job=3)
    return multiqpu.Fleet(
        [
            FaultyDevice(
                multiqpu.device("local:ideal", limits=small),
                name="dies",
                fail_after=0,  # lost at its first submission (a probe: the lane cap)
                delay_s=0.3,
            ),
            FaultyDevice(multiqpu.device("local:ideal", limits=small), name="steady", delay_s=0.05),
        ]
    )


def test_timeline_from_a_report_and_from_the_journal_agree(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    circuits = [_ghz(3, i) for i in range(12)]
    result = _faulty_fleet().sample_sync(circuits, 200, journal=str(journal))
    spans = result.report.timeline
    assert spans, "the report carries the run's jobs"
    # every circuit came from a job of the timeline that finished on its device
    for r in result.results:
        assert any(s.device == r.device and r.index in s.tasks and s.state == "done" for s in spans)
    failed = [s for s in spans if s.state == "failed"]
    assert failed and all(s.device == "local:dies" and s.error for s in failed)
    for s in spans:
        assert s.created_at <= (s.submitted_at or s.created_at) + 1e-6
        if s.state == "done":
            assert s.started_at is not None and s.queue_s is not None and s.execution_s is not None
            assert s.finished_at is not None and s.finished_at >= s.started_at
    with Journal(journal) as jr:
        from_journal = spans_from_records(jr.jobs(result.run_id))
    assert [(s.device, s.tasks, s.state, s.hedge) for s in from_journal] == [
        (s.device, s.tasks, s.state, s.hedge) for s in spans
    ]
    done_live = [s for s in spans if s.state == "done"]
    done_rec = [s for s in from_journal if s.state == "done"]
    for a, b in zip(done_live, done_rec, strict=True):  # the device's own timings, both ways
        assert a.started_at == pytest.approx(b.started_at)

    from multiqpu.plots import journal_timeline

    fig = result.report.plot(path=tmp_path / "report.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["local:dies", "local:steady"]
    assert "seconds" in ax.get_xlabel()
    assert f"{len(spans)} jobs on 2 devices, {len(failed)} failed" in ax.get_title(loc="left")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "queued at device" in legend and "running (n = circuits)" in legend
    assert "failed" in legend and "hedge (copy)" in legend
    assert (tmp_path / "report.png").read_bytes()[:8] == PNG
    fig2 = journal_timeline(result.run_id, tmp_path / "journal.png", journal=journal)
    assert [t.get_text() for t in fig2.axes[0].get_yticklabels()] == [
        "local:dies",
        "local:steady",
    ]
    assert (tmp_path / "journal.png").read_bytes()[:8] == PNG


def test_hedges_are_copies_of_work_in_flight_elsewhere() -> None:
    spans = [
        JobSpan("a", (0, 1), "done", 0.0, 0.1, 1.0, 5.0),
        JobSpan("b", (1,), "cancelled", 2.0, 2.1, None, 5.0),  # 1 still open on a: hedge
        JobSpan("b", (0,), "done", 6.0, 6.1, 6.2, 7.0),  # a finished: a rerun, not a hedge
        JobSpan("a", (2,), "failed", 7.0, 7.1, None, 8.0),
        JobSpan("b", (2,), "done", 8.5, 8.6, 8.7, 9.0),  # after the failure: a retry
        JobSpan("a", (3,), "done", 9.0, 9.1, 9.2, 9.5),
        JobSpan("a", (3,), "done", 9.1, 9.2, 9.3, 9.6),  # same device: not a hedge
    ]
    assert [s.hedge for s in mark_hedges(spans)] == [False, True, False, False, False, False, False]


def test_lanes_stack_overlapping_jobs_of_one_device() -> None:
    from multiqpu.plots._gantt import lanes

    spans = [
        JobSpan("a", (0,), "done", 0.0, 0.0, 0.5, 2.0),
        JobSpan("a", (1,), "done", 1.0, 1.0, 1.5, 3.0),  # overlaps the first
        JobSpan("b", (2,), "done", 1.0, 1.0, 1.5, 3.0),  # another device: its own row
        JobSpan("a", (3,), "done", 2.5, 2.5, 2.6, 4.0),  # the first lane is free again
    ]
    assert lanes(spans) == [0, 1, 0, 0]


def test_timeline_recorder_passes_resumed_rows_through(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as jr:
        circuits = [_ghz(2, i) for i in range(2)]
        jr.start_run("r1", circuits=circuits, shots=[10, 10], options={})
        old = jr.job_submitting("r1", device="local:ideal", task_indices=[0], shots=10)
        tee = TimelineRecorder(jr)
        row = tee.job_submitting("r1", device="local:ideal", task_indices=[1], shots=10)
        assert row < 0  # told apart from the journal's own rows
        tee.job_submitted(row, "p-1")
        tee.job_failed(row, "boom", final=False)
        tee.job_submitted(old, "p-0")  # a row from an earlier attempt: the journal's
        tee.job_cancelled(old)
        states = {j.job_row: j.state for j in jr.jobs("r1")}
    assert states[old] == "cancelled" and sorted(states.values()) == ["cancelled", "failed"]
    (span,) = tee.spans()
    assert span.state == "failed" and span.error == "boom" and span.tasks == (1,)


@pytest.mark.slow
def test_error_budget_adds_up_to_the_variance(tmp_path: Path) -> None:
    """A 6-qubit circuit cut in two over two 4-qubit devices: the (fragment, device) shares
    add up to the variance the estimate reports (first order, within 5 %)."""
    from multiqpu.cli._plan import load_circuit

    fleet = multiqpu.Fleet(
        [
            multiqpu.device("local:ideal", num_qubits=4),
            multiqpu.device("local:noisy", num_qubits=4),
        ]
    )
    circuit = load_circuit("efficient_su2:6:1")
    res = asyncio.run(
        fleet.estimate(circuit, ["ZZZZZZ", "IIZZII"], shots=20_000, max_fragment_qubits=3)
    )
    budget = res.report.error_budget
    assert {s.fragment for s in budget} == {0, 1}
    assert {s.device for s in budget} <= {"local:ideal", "local:noisy"}
    for k, se in enumerate(res.std_errors):
        total = sum(s.variance[k] for s in budget)
        assert total == pytest.approx(se**2, rel=0.05)
    fig = res.plot("error_budget", tmp_path / "budget.png")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert all(label.startswith("fragment ") and " on local:" in label for label in labels)
    assert "error budget of" in fig.axes[0].get_title(loc="left")
    assert (tmp_path / "budget.png").read_bytes()[:8] == PNG
    fig = res.report.plot("timeline", tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").read_bytes()[:8] == PNG


def test_training_curves(tmp_path: Path) -> None:
    from multiqpu.plots import training
    from multiqpu.qnn import History
    from multiqpu.qnn.history import EpochRecord

    history = History(devices=["local:ideal"])
    for e, loss in enumerate((0.9, 0.6, 0.4)):
        history.epochs.append(EpochRecord(e, loss, 0.5 + 0.1 * e, 1.0, (10,), (20,), 1))
    fig = training(history, tmp_path / "train.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "accuracy", "per-device share", "gradient staleness"]
    assert (tmp_path / "train.png").read_bytes()[:8] == PNG
    with pytest.raises(multiqpu.MultiQPUError, match="training History"):
        training(object())


def test_missing_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from multiqpu.plots import timeline

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(multiqpu.MultiQPUError, match=r"pip install 'multiqpu\[plot\]'"):
        timeline([JobSpan("a", (0,), "done", 0.0, 0.0, 0.1, 0.2)])


def test_nothing_to_draw_is_a_clear_error() -> None:
    from multiqpu.plots import timeline

    with pytest.raises(multiqpu.InvalidInputError, match="no jobs to draw"):
        timeline([])
    with pytest.raises(multiqpu.InvalidInputError, match="run report"):
        timeline(42)


def test_progress_is_off_with_the_variable_or_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from multiqpu.scheduler._progress import Progress, wants_progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    monkeypatch.delenv("MULTIQPU_PROGRESS", raising=False)
    assert wants_progress(True, 1) and wants_progress(None, 500) and not wants_progress(None, 5)
    for off in ("0", "false", "off"):
        monkeypatch.setenv("MULTIQPU_PROGRESS", off)
        assert not wants_progress(True, 500)
    monkeypatch.delenv("MULTIQPU_PROGRESS")
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe, a log file, CI
    assert not wants_progress(True, 500)
    assert not Progress(["a"], 10, enabled=False).enabled


@pytest.mark.slow
def test_timeline_of_a_mitigated_run(tmp_path: Path) -> None:
    """A mitigated sample runs placement and calibration circuits through several scheduler
    runs: its report draws them all on one axis."""
    from multiqpu.plots import timeline

    fleet = multiqpu.Fleet([multiqpu.device("local:noisy", num_qubits=3)])
    result = asyncio.run(
        fleet.sample([_ghz(3, 0)], 1000, mitigation=[multiqpu.mitigation.Readout(cache=False)])
    )
    runs = result.report.scheduler_reports
    assert runs and all(r.timeline for r in runs)
    fig = result.report.plot(path=tmp_path / "mitigated.png")
    jobs = sum(len(r.timeline) for r in runs)
    assert f"{jobs} jobs on 1 devices" in fig.axes[0].get_title(loc="left")
    assert timeline(result).axes[0].get_title(loc="left") == fig.axes[0].get_title(loc="left")
    assert (tmp_path / "mitigated.png").read_bytes()[:8] == PNG
