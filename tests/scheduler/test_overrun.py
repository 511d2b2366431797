"""Overrun hedging on the virtual clock (``multiqpu.scheduler._overrun``): a job that runs far
past its estimate while work is still queued is copied, once, to the device that would finish
it soonest. The real executor's test is in test_faults.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from multiqpu.scheduler import SimCircuit, SimDevice, Workload
from multiqpu.scheduler._core import Core, CoreConfig
from multiqpu.scheduler._families import family_scenario
from multiqpu.scheduler._learning import Learner
from multiqpu.scheduler._overrun import OVERRUN_EXEC, OVERRUN_Z, next_overrun
from multiqpu.scheduler._tables import ArraySource
from multiqpu.scheduler._virtual import REDUNDANCY, run_virtual, tables_for


@pytest.mark.slow
def test_overrun_hedges_in_a_family_scenario_deliver_everything() -> None:
    # family scenario 25 (tests/benchmarks/scheduler_families.py): heavy-tailed queues,
    # outages and failures; under balanced, jobs overrun mid-run and are copied, and no
    # circuit is lost or delivered twice. No makespan is asserted: over family seeds 0-29 of up to
    # 3,000 circuits the overrun hedge changes it by x0.955-1.92, median 1.00 (round 14,
    # docs/scheduler.md): the probes, learned speeds and the tail's hedges cover what it did,
    # and the flag moves every later queue draw (seed 1's 1.92 is such a divergence). Six
    # scenarios served here before to show a drop (11, 1, 23, 13, 17, 25 in turn), and each
    # lost it to a later change: one chosen scenario's gain is not a result.
    # test_next_wakeup_is_the_overrun_and_the_copy_wins_once checks what one copy does.
    sc = family_scenario(25)
    runs = {
        on: run_virtual(
            list(sc.fleet),
            sc.workload,
            config=CoreConfig(redundancy=REDUNDANCY, policy="balanced", overrun_hedging=on),
            seed=25,
        ).stats
        for on in (False, True)
    }
    assert runs[False].overrun_hedges == 0 and runs[True].overrun_hedges >= 1
    assert runs[True].delivered == runs[False].delivered == sc.workload.n


def _core(overrun: bool, *, policy: str = "fastest") -> tuple[Core, float]:
    """Three identical devices, 300 circuits, jobs of at most 10; returns the core and the
    time device 0's first job overruns (on the prior)."""
    base = SimDevice("a", num_qubits=20, median_wait_s=60.0, max_circuits_per_job=10)
    fleet = [base, replace(base, name="b"), replace(base, name="c")]
    work = Workload((SimCircuit(4, 10, 30, 8, shots=4000),), (1.0,), 300)
    tables = tables_for(fleet, work)
    learner = Learner(3, reported_wait_s=[60.0] * 3, prior_overhead_s=[5.0] * 3)
    core = Core(
        tables,
        ArraySource(np.arange(300), np.zeros(300, dtype=np.int64)),
        concurrency=[2, 2, 2],
        max_batch=[10, 10, 10],
        learner=learner,
        config=CoreConfig(
            redundancy=0,
            policy=policy,  # type: ignore[arg-type]
            explore=False,
            overrun_hedging=overrun,
        ),
    )
    core.pump(0.0)
    job = next(iter(core.state.dev[0].jobs.values()))
    limit = float(core.state.wait_quantile(OVERRUN_Z)[0]) + OVERRUN_EXEC * job.exec_s
    return core, limit


def test_next_wakeup_is_the_overrun_and_the_copy_wins_once() -> None:
    core, limit = _core(True)
    assert core.next_wakeup(0.0) <= limit + 1e-9
    st = core.state
    late = next(iter(st.dev[0].jobs.values()))
    # the other devices deliver on time; device 0's first job never comes back (work is
    # still left when it overruns: the tail's hedging has not started)
    copies = []
    for now in np.arange(100.0, 20 * limit, 100.0):
        for job in [j for j in list(st.jobs.values()) if j.device != 0 and j.origin is None]:
            assert core.on_done(job.job_id, now, queue_s=60.0, execution_s=job.exec_s)
        copies += [s for s in core.pump(float(now)) if s.hedge_of == late.job_id]
        if copies:
            assert st.source.remaining > 0 or st.front
            assert now >= late.overrun_at  # not before it overran (on what is learned)
            break
    assert len(copies) == 1 and copies[0].device != 0
    assert st.stats.overrun_hedges >= 1  # (the job queued behind it too)
    assert not [s for s in core.pump(float(now) + 1.0) if s.hedge_of == late.job_id]  # once
    delivery = core.on_done(copies[0].job_id, now + 200.0, queue_s=60.0, execution_s=100.0)
    assert delivery is not None and sorted(delivery.idx) == sorted(late.idx)
    assert late.job_id in delivery.cancel  # the straggler is cancelled
    assert core.on_done(late.job_id, now + 201.0, queue_s=None, execution_s=None) is None


def test_no_overrun_hedge_when_turned_off_or_on_time() -> None:
    core, limit = _core(False)
    assert not [s for s in core.pump(3 * limit) if s.hedge_of is not None]
    assert core.state.stats.overrun_hedges == 0
    core, limit = _core(True)
    assert not [s for s in core.pump(0.9 * limit) if s.hedge_of is not None]


def test_an_overdue_job_is_watched_only_where_a_copy_could_go() -> None:
    # a wake-up costs a whole pump: a job that no other live device is preferred for is not
    # watched for overruns, since no copy of it could go anywhere (family seed 95 under
    # most_accurate: 330,502 pumps before, about 22,000 after); one that could be copied is
    core, limit = _core(True)
    next_overrun(core.state, 0.0)  # (works out when each job overruns)
    late = next(iter(core.state.dev[0].jobs.values()))
    now = late.overrun_at + 0.01 * limit  # just overdue
    wake = next_overrun(core.state, now)
    assert wake is not None and now < wake <= now + 0.1 * (now - late.overrun_at) + 1e-3
    # most_accurate on a fleet where one device is the most accurate for every circuit
    base = SimDevice("a", num_qubits=20, median_wait_s=60.0, max_circuits_per_job=10)
    fleet = [replace(base, error_2q=1e-3), replace(base, name="b"), replace(base, name="c")]
    work = Workload((SimCircuit(4, 10, 30, 8, shots=4000),), (1.0,), 300)
    learner = Learner(3, reported_wait_s=[60.0] * 3, prior_overhead_s=[5.0] * 3)
    core = Core(
        tables_for(fleet, work),
        ArraySource(np.arange(300), np.zeros(300, dtype=np.int64)),
        concurrency=[2, 2, 2],
        max_batch=[10, 10, 10],
        learner=learner,
        config=CoreConfig(redundancy=0, policy="most_accurate", explore=False),
    )
    subs = core.pump(0.0)
    assert subs and {s.device for s in subs} == {0}
    assert next_overrun(core.state, 0.0) is None
    assert next_overrun(core.state, 100 * limit) is None
    assert core.next_wakeup(100 * limit) is not None  # (the job's own end is still watched)
    assert not [s for s in core.pump(100 * limit) if s.hedge_of is not None]
