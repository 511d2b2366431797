"""No dead options: removed ones are refused like any unknown name (and dropped from an older
run's stored options on resume); the core's ``redundancy`` is set by each driver; the
executor records through a :class:`RunRecorder` whatever it is (the journal or another)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from _physics import assert_matches_exact, tagged_circuit
from _timed import TimedDevice

from multiqpu import InvalidInputError
from multiqpu.journal import Journal
from multiqpu.pool import DevicePool
from multiqpu.scheduler import resume, sample, simulate
from multiqpu.scheduler._core import CoreConfig
from multiqpu.scheduler._costmodel import Item
from multiqpu.scheduler._executor import execute
from multiqpu.scheduler._options import parse_options
from multiqpu.scheduler._probing import core_config
from multiqpu.scheduler._virtual import REDUNDANCY

REMOVED = {"patience_s": 60.0}  # (max_slowdown came back with a guarantee: test_families)


@pytest.mark.parametrize("name", sorted(REMOVED))
def test_removed_options_are_refused_like_any_unknown_option(name: str) -> None:
    with pytest.raises(InvalidInputError) as removed:
        parse_options("balanced", **{name: REMOVED[name]})
    with pytest.raises(InvalidInputError) as unknown:
        parse_options("balanced", no_such_option=1)
    assert str(removed.value) == str(unknown.value).replace("'no_such_option'", repr(name))
    with pytest.raises(InvalidInputError, match="unknown simulate option"):
        simulate(3, 20, **{name: REMOVED[name]})


async def test_sample_refuses_a_removed_option_before_submitting() -> None:
    dev = TimedDevice("refuses-removed")
    with pytest.raises(InvalidInputError, match="patience_s"):
        await sample([dev], [tagged_circuit(0)], shots=10, journal=None, patience_s=3.0)
    assert dev.submits == []


async def test_a_run_stored_with_removed_options_still_resumes(tmp_path: Path) -> None:
    circuits = [tagged_circuit(i) for i in range(4)]
    dev = TimedDevice("resumes-old-options")
    with Journal(tmp_path / "journal.sqlite") as journal:
        # what an older multiqpu stored with a run
        options = {**parse_options().recordable(), **REMOVED, "policy": "fastest"}
        journal.start_run("old-run", circuits=circuits, shots=[200] * 4, options=options)
        assert journal.run_info("old-run").options["patience_s"] == 60.0
        result = await resume([dev], "old-run", journal=journal)
        assert result.report.policy == "fastest"
        for circuit, r in zip(circuits, result.results, strict=True):
            assert_matches_exact(circuit, r.counts, 200)
        assert journal.run_info("old-run").state == "done"


def test_each_driver_sets_the_cores_redundancy() -> None:
    with pytest.raises(TypeError, match="redundancy"):
        CoreConfig(policy="fastest")  # type: ignore[call-arg]
    assert core_config(parse_options()).redundancy == 0  # starts are not watched everywhere
    assert REDUNDANCY == 2  # the virtual clock's (test_simulate checks what copies change)


class ListRecorder:
    """A :class:`RunRecorder` that keeps the calls it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.rows = 0

    def start_run(
        self,
        run_id: str,
        *,
        circuits: Sequence[Any],
        shots: Sequence[int | None],
        options: Mapping[str, Any],
    ) -> None:
        self.calls.append(("start", len(circuits)))

    def job_submitting(
        self, run_id: str, *, device: str, task_indices: Sequence[int], shots: int | None
    ) -> int:
        self.rows += 1
        self.calls.append(("submitting", tuple(task_indices)))
        return self.rows

    def job_submitted(self, job_row: int, provider_job_id: str) -> None:
        self.calls.append(("submitted", job_row))

    def job_done(
        self, job_row: int, results: Sequence[Any], *, calibration_fingerprint: Any, timings: Any
    ) -> None:
        self.calls.append(("done", (job_row, len(results))))

    def job_failed(self, job_row: int, error: str, *, final: bool) -> None:
        self.calls.append(("failed", job_row))

    def job_cancelled(self, job_row: int) -> None:
        self.calls.append(("cancelled", job_row))

    def finish_run(self, run_id: str, state: str) -> None:
        self.calls.append(("finish", state))

    def cached_result(self, circuit: Any, shots: Any, candidates: Any) -> None:
        return None


async def test_the_executor_records_through_any_run_recorder() -> None:
    dev = TimedDevice("recorded", max_batch=2, concurrency=1)
    items = [Item(tagged_circuit(i), 100) for i in range(4)]
    recorder = ListRecorder()
    opts = parse_options("fastest", hedging=False)
    result = await execute(DevicePool([dev]), items, opts, journal=recorder)
    assert len(result) == 4
    kinds = [k for k, _ in recorder.calls]
    assert kinds[0] == "start" and kinds[-1] == ("finish") and recorder.calls[-1][1] == "done"
    submitted = [v for k, v in recorder.calls if k == "submitting"]
    assert sorted(i for job in submitted for i in job) == [0, 1, 2, 3]
    done = [v for k, v in recorder.calls if k == "done"]
    assert sorted(row for row, _ in done) == list(range(1, len(submitted) + 1))
    assert sum(n for _, n in done) == 4
    # without a recorder nothing is recorded and the run is the same
    again = await execute(DevicePool([dev]), items, opts)
    assert [r.shots for r in again] == [100] * 4


def test_min_job_s_is_checked() -> None:
    assert parse_options().min_job_s == 0.0
    assert core_config(parse_options(min_job_s=0.5)).min_job_s == 0.5
    for bad in (-1.0, "1", True):
        with pytest.raises(InvalidInputError, match="min_job_s"):
            parse_options(min_job_s=bad)


async def test_min_job_s_puts_many_small_circuits_in_few_jobs() -> None:
    """Each job holds at least ``min_job_s`` of estimated work: 24 circuits of one shots
    value go as one job instead of several (sized, by default, to a share of the plan but
    at least 10x the device's overhead), and every circuit still gets its own result."""
    import multiqpu

    dev = multiqpu.device("local:ideal", num_qubits=5, seed=5)
    circuits = [tagged_circuit(i) for i in range(24)]
    kw: dict[str, Any] = {"shots": 50_000, "journal": None, "explore": False}
    small = await sample([dev], circuits, **kw)
    big = await sample([dev], circuits, **kw, min_job_s=60.0)
    assert big.report.devices[0].jobs == 1 < small.report.devices[0].jobs
    for run in (small, big):
        assert [r.index for r in run] == list(range(24))
        assert all(sum(r.result.counts.values()) == 50_000 for r in run)
