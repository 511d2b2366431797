"""Running a split: the parts through the executor, the plan in the journal, and failover of
parts whose device is lost.

:class:`PlanRecorder` records the shot plan with the run's options (so ``resume`` can merge
the parts back) and keeps every finished part's result in memory as the executor records it.

**Failover.** Some parts are pinned to one device: the parts of a circuit above every cap
(``split_shots`` ``False`` or ``"auto"``: all on the device chosen for it), and with
``split_shots=True`` the first part of each eligible device. When such a device is lost, the
placement core refuses to go on (a remaining circuit may run nowhere else) and the executor
stops the run. :func:`run_parts` does not let that fail the run while a live device fits
(the rule of docs/scheduler.md, "Failures"): it keeps every part that had finished, re-plans
the shots of the parts that had not over the live devices (as :func:`~._shots.expand`
plans them, the lost devices left out: one device within its cap for ``False``/``"auto"``,
spread again for ``True``), and runs what is left as a new run. Parts pinned to a live
device or not pinned at all run again as they were. The merge records each part on the
device it actually ran on, so a circuit whose parts now come from two devices gets its
per-device shares and the compatibility test like any spread (``TaskResult.compatibility``;
merged counts only when the shares are compatible).

In the journal each round is its own run: the first ends ``failed`` with its finished parts
recorded, a failover round is ``<run id>-failover<k>`` with its own plan. The report of the
result is the last round's, its ``extra`` says ``shot_failovers`` (rounds after a loss) and
``lost_devices``. A loss that strands no pinned part (a circuit the user restricted to the
lost device) still fails the run, with the core's error.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from multiqpu.errors import DeviceUnavailableError
from multiqpu.scheduler._costmodel import Item
from multiqpu.scheduler._recorder import ForwardingRecorder
from multiqpu.scheduler._shots import PLAN_KEY, ShotPlan, check_split, eligible, expand, merge

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult, JobTimings
    from multiqpu.pool import DevicePool
    from multiqpu.scheduler._options import Options
    from multiqpu.scheduler._recorder import RunRecorder
    from multiqpu.scheduler._report import SampleResult, TaskResult

__all__ = ["PlanRecorder", "run_parts"]


class PlanRecorder(ForwardingRecorder):
    """A :class:`~multiqpu.scheduler._recorder.RunRecorder` that records the shot plan with
    the run's options (under :data:`~._shots.PLAN_KEY`), passes everything on to ``inner``
    and keeps each finished part's result: ``finished[part] = (device, job id, result)``."""

    def __init__(self, inner: RunRecorder, plan: ShotPlan) -> None:
        super().__init__(inner)
        self.plan = plan
        self.run_id: str | None = None
        self.finished: dict[int, tuple[str, str, CircuitResult]] = {}
        # our rows are negative (a resumed job's row is the inner recorder's, passed through)
        self._ids = itertools.count(-1, -1)
        self._rows: dict[int, tuple[int, str, tuple[int, ...]]] = {}
        self._job_ids: dict[int, str] = {}

    def _inner(self, job_row: int) -> int:
        row = self._rows.get(job_row)
        return job_row if row is None else row[0]

    def start_run(
        self,
        run_id: str,
        *,
        circuits: Sequence[QuantumCircuit],
        shots: Sequence[int | None],
        options: Mapping[str, Any],
    ) -> None:
        self.run_id = run_id
        options = {**options, PLAN_KEY: self.plan.to_json()}
        super().start_run(run_id, circuits=circuits, shots=shots, options=options)

    def job_submitting(
        self, run_id: str, *, device: str, task_indices: Sequence[int], shots: int | None
    ) -> int:
        inner = super().job_submitting(
            run_id, device=device, task_indices=task_indices, shots=shots
        )
        row = next(self._ids)
        self._rows[row] = (inner, device, tuple(int(i) for i in task_indices))
        return row

    def job_submitted(self, job_row: int, provider_job_id: str) -> None:
        self._job_ids[job_row] = provider_job_id
        super().job_submitted(job_row, provider_job_id)

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
        row = self._rows.get(job_row)
        if row is not None:
            job_id = self._job_ids.get(job_row, "")
            for part, result in zip(row[2], results, strict=True):
                self.finished.setdefault(part, (row[1], job_id, result))  # first copy wins

    def results_quarantined(
        self, run_id: str, device: str, indices: Sequence[int], reason: str
    ) -> None:
        """A device failed its canary checks: its parts are withdrawn (they run again)."""
        for part in indices:
            found = self.finished.get(int(part))
            if found is not None and found[0] == device:
                del self.finished[int(part)]
        super().results_quarantined(run_id, device, indices, reason)


async def _lost(pool: DevicePool) -> set[str]:
    """The specs of the pool's devices that do not take work now."""
    import asyncio

    from multiqpu.scheduler._probing import device_status

    devices = list(pool)
    alive = await asyncio.gather(*(device_status(d) for d in devices))
    return {d.spec for d, ok in zip(devices, alive, strict=True) if not ok}


async def run_parts(
    pool: DevicePool,
    items: Sequence[Item],
    parts: Sequence[Item],
    plan: ShotPlan,
    opts: Options,
    *,
    journal: RunRecorder | None,
) -> SampleResult:
    """Run ``parts`` (``items`` split as ``plan`` says), failing over parts whose device is
    lost (see the module docstring); returns one merged result per input circuit."""
    from multiqpu.scheduler._executor import execute
    from multiqpu.scheduler._recorder import recorder_for
    from multiqpu.scheduler._report import SampleResult, TaskResult

    # equal parts are separate draws: a cached result would repeat one draw for all of them
    opts = replace(opts, cache=False)
    mode = check_split(opts.split_shots)
    kept: list[tuple[int, TaskResult]] = []  # (input circuit, part result) of earlier rounds
    lost: set[str] = set()
    owner = list(plan.owner)  # of the parts run in this round, by input circuit
    pins = list(plan.pinned or [None] * len(parts))
    todo, first_id = list(parts), None
    for round_ in itertools.count():
        rec = PlanRecorder(recorder_for(journal), _recorded(plan, owner, pins, round_))
        run_opts = opts if round_ == 0 else replace(opts, run_id=f"{first_id}-failover{round_}")
        try:
            out = await execute(pool, todo, run_opts, journal=rec)
            break
        except DeviceUnavailableError:
            first_id = first_id or rec.run_id
            gone = await _lost(pool)
            stranded = [k for k, pin in enumerate(pins) if pin in gone and k not in rec.finished]
            lost |= gone
            devices = list(pool)
            if (
                not stranded
                or rec.run_id is None
                or any(not eligible(devices, items[owner[k]], lost) for k in stranded)
            ):
                raise  # nothing pinned was stranded, or no live device fits: the core's error
        # keep what finished; re-plan the stranded parts' shots, circuit by circuit
        for k, (spec, job_id, result) in sorted(rec.finished.items()):
            kept.append((owner[k], TaskResult(k, spec, job_id, result, None)))
        again = [k for k in range(len(todo)) if k not in rec.finished and k not in stranded]
        left: dict[int, int] = {}
        for k in stranded:
            left[owner[k]] = left.get(owner[k], 0) + int(todo[k].shots or 0)
        fresh = [_replan(items[i], s, lost) for i, s in left.items()]
        new_parts, sub = await expand(pool, fresh, opts, mode, lost)
        circuits = list(left)
        todo = [todo[k] for k in again] + new_parts
        owner, pins = (
            [owner[k] for k in again] + [circuits[o] for o in sub.owner],
            [pins[k] for k in again] + list(sub.pinned or [None] * len(new_parts)),
        )
    results = [(i, r) for i, r in kept] + list(zip(owner, out.results, strict=True))
    report = out.report
    if lost:
        extra = {**dict(report.extra), "shot_failovers": round_, "lost_devices": sorted(lost)}
        report = replace(report, extra=extra)
    full = ShotPlan(plan.n_items, tuple(i for i, _ in results))
    return merge(SampleResult(tuple(r for _, r in results), report), full)


def _recorded(plan: ShotPlan, owner: list[int], pins: list[str | None], round_: int) -> ShotPlan:
    """The plan a round records: the whole plan first; a failover round's own circuits
    (numbered in order) so that resuming that run merges its parts by themselves."""
    if round_ == 0:
        return plan
    mine = sorted(set(owner))
    return ShotPlan(len(mine), tuple(mine.index(i) for i in owner), tuple(pins))


def _replan(item: Item, shots: int, lost: set[str]) -> Item:
    """``item``'s shots left to run after a loss: where the user allowed it, less the lost
    devices (the pin of the stranded parts goes with their device)."""
    devices = None if item.devices is None else item.devices - lost
    return replace(item, shots=shots, devices=devices)
