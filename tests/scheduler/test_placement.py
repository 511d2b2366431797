"""The placement core on hand-built profiles: policies, water-filling, learning, stealing,
hedging, failures, and exactly-once delivery under random completion orders."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from multiqpu.errors import DeviceUnavailableError
from multiqpu.scheduler._core import Core, CoreConfig
from multiqpu.scheduler._learning import Learner
from multiqpu.scheduler._tables import ArraySource, ClassTables
from multiqpu.scheduler._waterfill import waterfill


def tables(fid, raw, price=None, fits=None, floor=0.0) -> ClassTables:
    fid = np.atleast_2d(np.asarray(fid, dtype=float))
    raw = np.atleast_2d(np.asarray(raw, dtype=float))
    n_c = fid.shape[0]
    return ClassTables(
        fits=np.ones_like(fid, dtype=bool) if fits is None else np.atleast_2d(fits),
        fidelity=fid,
        raw_s=raw,
        price=np.zeros_like(fid) if price is None else np.atleast_2d(np.asarray(price, float)),
        floor=np.full(n_c, floor),
        group=np.zeros(n_c, dtype=np.int64),
        shots=np.full(n_c, 1000),
        weight=np.ones(n_c),
    )


def core(
    t: ClassTables,
    n: int,
    waits,
    *,
    policy="balanced",
    conc=5,
    batch=300,
    sessions=None,
    redundancy=2,  # the virtual clock's
    **cfg,
) -> Core:
    nd = t.n_devices
    learner = Learner(
        nd, reported_wait_s=waits, prior_overhead_s=[1.0] * nd, report_kind=["estimate"] * nd
    )
    source = ArraySource(np.arange(n), np.zeros(n, dtype=np.int64))
    return Core(
        t,
        source,
        concurrency=[conc] * nd,
        max_batch=[batch] * nd,
        learner=learner,
        config=CoreConfig(policy=policy, explore=False, redundancy=redundancy, **cfg),
        sessions=sessions,
    )


def placed(c: Core, subs) -> np.ndarray:
    per = np.zeros(c.state.tables.n_devices, dtype=int)
    for s in subs:
        if s.hedge_of is None:  # queued copies (redundancy) duplicate placed work
            per[s.device] += len(s.idx)
    return per + c.state.local_count


# ---------------------------------------------------------------------- policies
# Three devices: 0 fast and noisy, 1 slower and best, 2 slow, 1 % worse than the best, cheap.
FID = [[0.80, 0.95, 0.94]]
RAW = [[1.0, 1.0, 1.0]]
WAITS = [0.0, 100.0, 200.0]
PRICE = [[3.0, 2.0, 0.5]]


def test_fastest_uses_the_device_that_finishes_first() -> None:
    c = core(tables(FID, RAW, PRICE), 20, WAITS, policy="fastest")
    per = placed(c, c.pump(0.0))
    assert per[0] == 20  # 20 s of work on device 0 finishes long before the others start


def test_most_accurate_uses_only_the_best_device() -> None:
    c = core(tables(FID, RAW, PRICE), 20, WAITS, policy="most_accurate")
    per = placed(c, c.pump(0.0))
    assert per.tolist() == [0, 20, 0]


def test_balanced_takes_the_fastest_within_the_fidelity_margin() -> None:
    # devices 1 and 2 are within 2 % of the best; device 1 starts earlier; device 0 is the
    # fastest but 16 % worse
    waits = [60.0, 80.0, 100.0]
    # (max_slowdown=None: the fidelity margin is a hard target, as when a user sets it)
    c = core(tables(FID, RAW, PRICE), 10, waits, policy="balanced", max_slowdown=None)
    per = placed(c, c.pump(0.0))
    assert per.tolist() == [0, 10, 0]
    # with a lot of work, device 2 (within the margin) shares it; device 0 never does
    c = core(tables(FID, RAW, PRICE), 1000, waits, policy="balanced", max_slowdown=None)
    per = placed(c, c.pump(0.0))
    assert per[0] == 0 and per[1] > per[2] > 0


def test_balanced_spends_only_the_fidelity_budget_on_a_fast_worse_device() -> None:
    # device 1 is the most accurate but starts 1000 s later; device 0 is 9 % worse. The run's
    # mean fidelity may lose 2 % against most_accurate (10 x 0.99 x 0.02 = 0.198 in all,
    # 80 % of it planned now): one circuit may go to device 0 (loses 0.09), the rest waits
    c = core(
        tables([[0.90, 0.99]], [[1.0, 1.0]]),
        10,
        [0.0, 1000.0],
        policy="balanced",
        max_slowdown=None,
    )
    per = placed(c, c.pump(0.0))
    assert per[0] == 1
    assert c.state.fidelity_spent <= c.state.fidelity_budget + 1e-12
    # a 0.5 % worse device is within budget for every circuit: it takes them all
    c = core(
        tables([[0.985, 0.99]], [[1.0, 1.0]]),
        10,
        [0.0, 1000.0],
        policy="balanced",
        max_slowdown=None,
    )
    assert placed(c, c.pump(0.0)).tolist() == [10, 0]
    # a wider margin buys the speed
    c = core(
        tables([[0.90, 0.99]], [[1.0, 1.0]]),
        10,
        [0.0, 1000.0],
        policy="balanced",
        fidelity_margin=0.2,
        max_slowdown=None,
    )
    assert placed(c, c.pump(0.0)).tolist() == [10, 0]
    # by default (max_slowdown=1.5) the 1000 s wait for the best device is too slow: the
    # most accurate plan within 1.5x the fastest one (10 s) runs on device 0
    c = core(tables([[0.90, 0.99]], [[1.0, 1.0]]), 10, [0.0, 1000.0], policy="balanced")
    assert placed(c, c.pump(0.0)).tolist() == [10, 0]
    assert c.stats.limits == {"max_slowdown": 1}


def test_cheapest_uses_the_cheapest_device_and_a_deadline_widens_it() -> None:
    c = core(tables(FID, RAW, PRICE), 20, WAITS, policy="cheapest")
    assert placed(c, c.pump(0.0)).tolist() == [0, 0, 20]
    c = core(tables(FID, RAW, PRICE), 20, WAITS, policy="cheapest", deadline_at=50.0)
    assert placed(c, c.pump(0.0))[0] == 20  # only device 0 can finish by t=50


def test_fidelity_floor_excludes_devices() -> None:
    c = core(tables(FID, RAW, floor=0.9), 20, WAITS, policy="fastest")
    per = placed(c, c.pump(0.0))
    assert per[0] == 0 and per.sum() == 20


def test_budget_is_never_exceeded() -> None:
    # fastest would put everything on device 0 ($3 each, $60); $30 forces the work onto
    # cheaper devices
    c = core(tables(FID, RAW, PRICE), 20, WAITS, policy="fastest", budget_usd=30.0)
    per = placed(c, c.pump(0.0))
    cost = float(per @ np.asarray(PRICE[0]))
    assert per.sum() == 20 and cost <= 30.0 + 1e-9 and per[0] < 20


# ---------------------------------------------------------------------- water-filling
def test_waterfill_matches_greedy_earliest_finish() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        m = int(rng.integers(1, 6))
        F = rng.uniform(0, 10, m)
        x = rng.uniform(0.1, 3, m)
        k = int(rng.integers(1, 40))
        n, level = waterfill(F, x, k)
        greedy = np.zeros(m, dtype=int)
        for _ in range(k):
            greedy[int(np.argmin(F + (greedy + 1) * x))] += 1
        assert n.sum() == k
        # same makespan as the greedy (ties may be broken differently)
        assert level == pytest.approx(float((F + greedy * x)[greedy > 0].max()), abs=1e-9)


# ---------------------------------------------------------------------- learning
def test_wait_learning_converges_to_the_real_wait_not_the_report() -> None:
    rng = np.random.default_rng(0)
    lr = Learner(2, reported_wait_s=[100.0, 100.0], prior_overhead_s=[5.0, 5.0])
    for _ in range(30):
        real = 400.0 * np.exp(0.2 * rng.standard_normal())
        lr.observe(0, queue_s=real, execution_s=None, predicted_s=0.0, prior_wait_s=100.0)
    assert lr.wait()[0] == pytest.approx(400.0, rel=0.15)
    # device 1 was never used: it borrows the fleet-wide correction (reports read 4x low)
    assert lr.wait()[1] == pytest.approx(400.0, rel=0.4)
    assert lr.wait_sigma()[0] < 0.5


def test_speed_and_overhead_learning() -> None:
    rng = np.random.default_rng(1)
    lr = Learner(1, reported_wait_s=[0.0], prior_overhead_s=[5.0])
    for _ in range(40):
        p = float(rng.uniform(10, 200))
        y = (3.0 + 1.5 * p) * float(np.exp(0.03 * rng.standard_normal()))
        lr.observe(0, queue_s=None, execution_s=y, predicted_s=p, prior_wait_s=0.0)
    assert lr.speed()[0] == pytest.approx(1.5, rel=0.05)
    assert lr.overhead()[0] == pytest.approx(3.0, abs=2.0)


def test_learned_state_round_trips() -> None:
    lr = Learner(1, reported_wait_s=[10.0], prior_overhead_s=[1.0])
    lr.observe(0, queue_s=50.0, execution_s=20.0, predicted_s=10.0, prior_wait_s=10.0)
    again = Learner(1, reported_wait_s=[10.0], prior_overhead_s=[1.0], knowledge=[lr.knowledge(0)])
    assert again.wait()[0] == pytest.approx(lr.wait()[0])
    assert again.speed()[0] == pytest.approx(lr.speed()[0])


# ---------------------------------------------------------------------- dynamic execution
def _drive(c: Core, rng: np.random.Generator, *, fail_p: float = 0.0, lose: int | None = None):
    """Finish jobs in random order (some fail, one device is lost); return deliveries."""
    delivered: list[int] = []
    now = 0.0
    live = {s.job_id: s for s in c.pump(now)}
    lost_done = False
    for _ in range(10_000):
        if c.finished:
            break
        now += float(rng.uniform(0.1, 2.0))
        if not live:
            live.update({s.job_id: s for s in c.pump(now)})
            continue
        job_id = int(rng.choice(list(live)))
        sub = live.pop(job_id)
        if lose is not None and not lost_done and sub.device == lose:
            lost_done = True
            for other in c.on_failed(job_id, now, permanent=True):
                live.pop(other, None)
        elif rng.random() < fail_p:
            for other in c.on_failed(job_id, now, permanent=False):
                live.pop(other, None)
        else:
            d = c.on_done(job_id, now, queue_s=0.5, execution_s=0.5)
            if d is not None:
                assert len(d.positions) == len(d.idx)
                assert np.array_equal(sub.idx[d.positions], d.idx)
                delivered.extend(d.idx.tolist())
                for other in d.cancel:
                    live.pop(other, None)
        live.update({s.job_id: s for s in c.pump(now)})
    return delivered


@pytest.mark.parametrize(("fail_p", "lose"), [(0.0, None), (0.2, None), (0.1, 1)])
def test_every_task_delivered_exactly_once(fail_p: float, lose: int | None) -> None:
    for seed in range(5):
        t = tables([[0.9, 0.9, 0.9]], [[1.0, 2.0, 0.5]])
        c = core(t, 300, [0.0, 5.0, 1.0], policy="fastest", conc=2, batch=7, max_failures=50)
        delivered = _drive(c, np.random.default_rng(seed), fail_p=fail_p, lose=lose)
        assert sorted(delivered) == list(range(300))
        if lose is not None:
            assert not c.state.alive[lose] and lose in c.stats.dropped


def test_losing_the_only_capable_device_fails_clearly() -> None:
    t = tables([[0.9, 0.0]], [[1.0, 1.0]], fits=[[True, False]])
    c = core(t, 10, [0.0, 0.0], policy="fastest")
    sub = c.pump(0.0)[0]
    with pytest.raises(DeviceUnavailableError, match="no device left"):
        c.on_failed(sub.job_id, 1.0, permanent=True)


def test_an_idle_device_steals_queued_work() -> None:
    # device 1 is believed slow to start, so device 0 gets everything; its one job slot takes
    # the 1000-shot circuits, the 2000-shot ones (another job) wait in its queue. Once device
    # 1 turns out idle, it takes them.
    t = tables([[0.9, 0.9], [0.9, 0.9]], [[1.0, 1.0], [1.0, 1.0]])
    t = ClassTables(**{**t.__dict__, "group": np.array([0, 1]), "shots": np.array([1000, 2000])})
    nd = 2
    learner = Learner(nd, reported_wait_s=[0.0, 30.0], prior_overhead_s=[1.0] * nd)
    c = Core(
        t,
        ArraySource(np.arange(8), np.array([0, 1] * 4)),
        concurrency=[1, 1],
        max_batch=[300, 300],
        learner=learner,
        config=CoreConfig(policy="fastest", explore=False, redundancy=2),
    )
    first = c.pump(0.0)
    # (a job holds at most JOB_FRACTION of the remaining plan: 3 of the 1000-shot circuits)
    assert [s.device for s in first] == [0] and c.state.local_count.tolist() == [
        8 - len(first[0].idx),
        0,
    ]
    c.learner.set_reported(1, 0.0)  # its queue turns out empty
    c.refresh_estimates()
    subs = c.pump(0.1)
    assert c.stats.steals > 0 and [s.device for s in subs] == [1]
    assert sorted(subs[0].idx.tolist()) == sorted(set(range(1, 8, 2)) & set(subs[0].idx.tolist()))


def test_a_straggler_is_hedged_and_the_first_result_wins() -> None:
    t = tables([[0.9, 0.9]], [[1.0, 1.0]])
    c = core(t, 5, [0.0, 100.0], policy="fastest", conc=1, batch=10, min_job_s=10.0)
    first = c.pump(0.0)
    assert [s.device for s in first] == [0]
    straggler = first[0]
    c.learner.set_reported(1, 0.0)  # device 1's queue turns out empty
    c.refresh_estimates()
    later = 1000.0  # the job on device 0 is long overdue; device 1 is idle
    hedges = c.pump(later)
    assert hedges and all(h.hedge_of == straggler.job_id for h in hedges)
    assert {h.device for h in hedges} == {1}
    assert sorted(i for h in hedges for i in h.idx.tolist()) == sorted(straggler.idx.tolist())
    # the hedge comes back first: delivered; the straggler is cancelled
    d = c.on_done(hedges[0].job_id, later + 5, queue_s=0.0, execution_s=5.0)
    assert d is not None and straggler.job_id in d.cancel
    assert c.on_done(straggler.job_id, later + 6, queue_s=0.0, execution_s=1.0) is None
    assert c.finished and c.stats.hedges_won == 1


def test_job_sizes_follow_device_speed() -> None:
    # same wait, device 1 ten times slower per circuit: smaller jobs, fewer circuits
    t = tables([[0.9, 0.9]], [[0.1, 1.0]])
    c = core(t, 2000, [60.0, 60.0], policy="fastest", conc=3, batch=1000)
    subs = c.pump(0.0)
    size = {d: max(len(s.idx) for s in subs if s.device == d) for d in (0, 1)}
    assert size[0] > 3 * size[1]


def test_placement_is_lazy_for_long_streams() -> None:
    t = tables([[0.9, 0.9]], [[1.0, 1.0]])
    c = core(t, 1_000_000, [10.0, 10.0], policy="fastest", conc=2, batch=50)
    c.pump(0.0)
    committed = int(c.state.local_count.sum() + sum(len(j.idx) for j in c.state.jobs.values()))
    assert 0 < committed < 1000  # the rest stays in the source, not in memory


@pytest.mark.parametrize("policy", ["balanced", "fastest", "most_accurate", "cheapest"])
def test_all_policies_finish(policy: str) -> None:
    t = tables(
        [[0.9, 0.95, 0.7], [0.8, 0.99, 0.99]], [[1, 2, 1], [1, 1, 3]], [[1, 2, 0], [0, 1, 1]]
    )
    nd = 3
    learner = Learner(nd, reported_wait_s=[0, 10, 5], prior_overhead_s=[1.0] * nd)
    classes = np.array(list(itertools.islice(itertools.cycle([0, 1]), 100)))
    c = Core(
        t,
        ArraySource(np.arange(100), classes),
        concurrency=[2] * nd,
        max_batch=[10] * nd,
        learner=learner,
        config=CoreConfig(policy=policy, redundancy=2),  # type: ignore[arg-type]
    )
    assert sorted(_drive(c, np.random.default_rng(1))) == list(range(100))


# ---------------------------------------------------------------------- queued copies
def test_queued_copy_wins_the_start_and_the_origin_is_cancelled() -> None:
    # both queues are about as long: a device left idle holds a queued copy of a job waiting
    # on the other; if the copy starts first, the origin is cancelled and each circuit comes
    # back once
    c = core(tables([[0.99, 0.99]], [[1.0, 1.0]]), 4, [30.0, 32.0], policy="fastest")
    subs = c.pump(0.0)
    originals = [s for s in subs if s.hedge_of is None]
    copies = [s for s in subs if s.hedge_of is not None]
    assert copies
    for s in copies:
        assert all(s.device != o.device for o in originals if o.job_id == s.hedge_of)
    copy = copies[0]
    # (a job of ours finished on the origin's device before: a device's probe is not
    # cancelled by its copy, see test_probe_copies.py)
    origin = next(s for s in originals if s.job_id == copy.hedge_of)
    c.state.learner.observe(
        origin.device, queue_s=30.0, execution_s=1.0, predicted_s=1.0, prior_wait_s=30.0
    )
    cancel = c.on_started(copy.job_id, 5.0)
    assert copy.hedge_of in cancel
    assert c.on_started(copy.job_id, 5.0) == ()  # reported twice: nothing more
    d = c.on_done(copy.job_id, 9.0, queue_s=5.0, execution_s=4.0)
    assert d is not None and sorted(d.idx.tolist()) == sorted(
        next(s for s in originals if s.job_id == copy.hedge_of).idx.tolist()
    )
    assert c.on_done(copy.hedge_of, 9.5, queue_s=0.0, execution_s=1.0) is None


def test_queued_copy_is_cancelled_when_the_origin_starts() -> None:
    c = core(tables([[0.99, 0.99]], [[1.0, 1.0]]), 4, [30.0, 32.0], policy="fastest")
    subs = c.pump(0.0)
    copy = next(s for s in subs if s.hedge_of is not None)
    assert c.on_started(copy.hedge_of, 1.0) == (copy.job_id,)
    assert copy.job_id not in c.state.jobs
    d = c.on_done(copy.hedge_of, 3.0, queue_s=1.0, execution_s=2.0)
    assert d is not None and len(d.idx) == len(copy.idx)


def test_redundancy_zero_makes_no_copies() -> None:
    c = core(tables([[0.99, 0.99]], [[1.0, 1.0]]), 4, [0.0, 10.0], policy="fastest", redundancy=0)
    assert all(s.hedge_of is None for s in c.pump(0.0))


# ---------------------------------------------------------------------- sessions
def test_a_session_device_is_opened_with_one_circuit_then_fed_as_it_runs() -> None:
    # one device whose queue is 300 s; in a session, later jobs do not queue again
    c = core(tables([[0.99]], [[1.0]]), 200, [300.0], policy="fastest", sessions=[60.0])
    subs = c.pump(0.0)
    assert [len(s.idx) for s in subs] == [1]  # the session's first job, alone in the queue
    now, delivered, sizes = 300.0, [], []
    running = subs[0]
    assert c.on_started(running.job_id, now) == ()
    inflight = c.pump(now)
    # live: the running job and the next one, no more (the rest stays movable)
    assert len(inflight) == 1 and c.state.inflight[0] == 2
    while True:
        took = len(running.idx) * 1.0 + 1.0
        now += took
        queue_s = 300.0 if not sizes else 0.0
        d = c.on_done(running.job_id, now, queue_s=queue_s, execution_s=took)
        assert d is not None
        delivered.extend(d.idx.tolist())
        sizes.append(len(running.idx))
        inflight.extend(c.pump(now))
        if not inflight:
            break
        running = inflight.pop(0)
        c.on_started(running.job_id, now)
        assert c.state.inflight[0] <= 2
    assert sorted(delivered) == list(range(200))
    assert sizes[1] > sizes[-1]  # jobs shrink as the work left does
    # session jobs start at once: their "waits" are not the queue's, which stays learned
    assert c.learner.wait()[0] > 100.0


def test_a_late_session_never_holds_the_run() -> None:
    # device 1 is the most accurate, but its session never starts; when device 0 is done
    # with everything else, the first job and anything left for device 1 move, even past
    # the fidelity budget, and every circuit comes back once
    c = core(tables([[0.95, 0.99]], [[1.0, 1.0]]), 100, [0.0, 50.0], sessions=[0.0, 60.0])
    delivered: list[int] = []
    pending = {s.job_id: s for s in c.pump(0.0)}
    now = 0.0
    for _ in range(1000):
        if c.finished:
            break
        # device 0 runs its jobs one after the other; device 1's queue never moves
        ours = sorted(j for j, s in pending.items() if s.device == 0)
        now += 1.0 if not ours else len(pending[ours[0]].idx)
        if ours:
            s = pending.pop(ours[0])
            c.on_started(s.job_id, now - len(s.idx))
            d = c.on_done(s.job_id, now, queue_s=0.0, execution_s=float(len(s.idx)))
            if d is not None:
                delivered.extend(d.idx.tolist())
                for j in d.cancel:
                    pending.pop(j, None)
        pending.update({s.job_id: s for s in c.pump(now)})
    assert c.finished and sorted(delivered) == list(range(100))
    assert now < 1000.0


def test_work_behind_a_blocked_head_of_the_line_is_still_placed() -> None:
    # family seed 5 (docs/scheduler.md, round 10): thousands of tasks that only a device
    # with a long queue may take stood first in line; placement stopped at the first chunk
    # it could not place, so a device idle and able to run what stood behind got nothing
    fits = np.array([[True, False], [True, True]])
    t = tables([[0.9, 0.9], [0.9, 0.9]], [[1.0, 1.0], [1.0, 1.0]], fits=fits)
    nd = 2
    learner = Learner(nd, reported_wait_s=[10_000.0, 0.0], prior_overhead_s=[1.0] * nd)
    cls = np.array([0] * 3000 + [1] * 40)
    c = Core(
        t,
        ArraySource(np.arange(len(cls)), cls),
        concurrency=[5, 5],
        max_batch=[300, 300],
        learner=learner,
        config=CoreConfig(policy="fastest", explore=False, redundancy=0),
    )
    per = placed(c, c.pump(0.0))
    assert per[1] == 40  # every task of the second class, at once, on the idle device
    assert 0 < per[0] < 3000  # the first class up to its device's horizon; the rest waits
    # nothing lost or doubled: the tasks set aside are back at the head of the line
    waiting = sum(len(i) for i, _ in c.state.front) + c.state.source.remaining
    assert per.sum() + waiting == len(cls)
    assert c.state.unplaced_by_class.tolist() == [3000 - per[0], 0]
