"""Fault injection: FaultyDevice on its own, then end to end through ``fleet.sample``.

Every end-to-end test checks that each circuit's result comes back exactly once, that nothing
is lost, and that the counts are physically right (each outcome within 5 standard errors of its
exact statevector probability; the tagged circuits make a result returned for the wrong circuit
fail that check).
"""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest
from _physics import assert_matches_exact, tagged_circuit
from qiskit import QuantumCircuit

import multiqpu
from multiqpu._transpile import circuit_key
from multiqpu.device import DeviceStatus, JobStatus
from multiqpu.errors import (
    DeviceUnavailableError,
    InvalidInputError,
    JobError,
    TransientProviderError,
)
from multiqpu.journal import Journal
from multiqpu.scheduler import SampleResult
from multiqpu.testing.faults import FaultyDevice

SHOTS = 2000


@pytest.fixture(scope="module")
def ideal() -> multiqpu.Device:
    return multiqpu.device("local:ideal", num_qubits=8, seed=11)


# ---------------------------------------------------------------------- the device on its own
async def test_transient_failures_by_count_then_normal_results(ideal: multiqpu.Device) -> None:
    dev = FaultyDevice(ideal, transient_failures=2)
    circuit = tagged_circuit(5)
    for _ in range(2):
        with pytest.raises(TransientProviderError, match="injected"):
            await dev.submit([circuit], SHOTS)
    result = await dev.run([circuit], SHOTS)
    assert result.device == dev.spec == "local:ideal-faulty"
    assert_matches_exact(circuit, result[0].counts, SHOTS)
    assert (dev.attempts, dev.transient_raised, len(dev.submissions)) == (3, 2, 1)


async def test_transient_failures_by_probability_are_seeded(ideal: multiqpu.Device) -> None:
    async def pattern(seed: int) -> list[bool]:
        dev = FaultyDevice(ideal, transient_failures=0.3, seed=seed, hang=True)
        outcome = []
        for _ in range(300):
            try:
                job = await dev.submit([tagged_circuit(1)], 10)
            except TransientProviderError:
                outcome.append(False)
            else:
                await job.cancel()
                outcome.append(True)
        return outcome

    first, again, other = await pattern(1), await pattern(1), await pattern(2)
    assert first == again and first != other
    failures = first.count(False)
    assert abs(failures - 90) <= 5 * math.sqrt(300 * 0.3 * 0.7)  # binomial(300, 0.3)


async def test_device_lost_after_n_jobs(ideal: multiqpu.Device) -> None:
    dev = FaultyDevice(ideal, fail_after=2, name="dies")
    circuits = [tagged_circuit(i) for i in range(2)]
    results = [await dev.run([c], SHOTS) for c in circuits]
    for c, r in zip(circuits, results, strict=True):
        assert_matches_exact(c, r[0].counts, SHOTS)
    assert await dev.status() is DeviceStatus.ONLINE and not dev.lost
    for _ in range(2):
        with pytest.raises(DeviceUnavailableError, match="went offline after 2 jobs"):
            await dev.submit(circuits, SHOTS)
    assert dev.lost and await dev.status() is DeviceStatus.OFFLINE
    with pytest.raises(DeviceUnavailableError):
        await dev.retrieve("anything")


async def test_device_loss_fails_jobs_in_flight(ideal: multiqpu.Device) -> None:
    dev = FaultyDevice(ideal, fail_after=1, fail_in_flight=True, delay_s=30.0)
    job = await dev.submit([tagged_circuit(2)], 100)
    with pytest.raises(DeviceUnavailableError):
        await dev.submit([tagged_circuit(3)], 100)
    with pytest.raises(DeviceUnavailableError, match="lost"):
        await job.result()
    assert await job.status() is JobStatus.FAILED


async def test_random_delays_make_results_arrive_out_of_order(ideal: multiqpu.Device) -> None:
    dev = FaultyDevice(ideal, delay_s=(0.0, 1.0), seed=48)
    circuits = [tagged_circuit(i) for i in range(5)]
    jobs = [await dev.submit([c], SHOTS) for c in circuits]
    delays = [s.delay_s for s in dev.submissions]
    by_delay = sorted(range(5), key=lambda i: delays[i])
    gaps = [delays[b] - delays[a] for a, b in itertools.pairwise(by_delay)]
    assert min(gaps) > 0.15 and by_delay != list(range(5))  # the seed gives a clear shuffle

    arrivals: list[int] = []

    async def wait(i: int) -> None:
        result = await jobs[i].result()
        arrivals.append(i)
        assert_matches_exact(circuits[i], result[0].counts, SHOTS)

    await asyncio.gather(*(wait(i) for i in range(5)))
    assert arrivals == by_delay


async def test_hanging_jobs_never_return_until_cancelled(ideal: multiqpu.Device) -> None:
    dev = FaultyDevice(ideal, hang=True, name="stuck")
    job = await dev.submit([tagged_circuit(1)], 100)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(job.result(), timeout=0.2)
    assert await job.status() is JobStatus.QUEUED
    await job.cancel()
    assert await job.status() is JobStatus.CANCELLED
    with pytest.raises(JobError, match="cancelled"):
        await job.result()


async def test_identity_and_delegation(ideal: multiqpu.Device) -> None:
    a = FaultyDevice(ideal, name="a")
    b = FaultyDevice(ideal, name="b")
    fleet = multiqpu.Fleet([a, b, ideal])
    assert [d.spec for d in fleet] == ["local:a", "local:b", "local:ideal"]
    assert a.exact and a.num_qubits == 8 and a.target == ideal.target
    assert a.calibration().fingerprint() == ideal.calibration().fingerprint()
    exact = await a.run([tagged_circuit(3)], None)
    assert exact[0].probabilities is not None
    expected = {k: v for k, v in exact[0].probabilities.items() if v > 1e-12}
    assert expected.keys() == {"00011", "10011"}  # index 3 in qubits 0-3, coin on 4
    with pytest.raises(JobError):  # local simulators cannot re-attach
        await a.retrieve("local-123")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"transient_failures": 1.5},
        {"transient_failures": -1},
        {"transient_failures": True},
        {"fail_after": -1},
        {"delay_s": (2.0, 1.0)},
        {"delay_s": -1.0},
    ],
)
def test_bad_fault_settings_are_refused(ideal: multiqpu.Device, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        FaultyDevice(ideal, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- end to end: fleet.sample
FAST = {"backoff_s": 0.01, "progress": False}


def small_jobs(**kwargs: object) -> multiqpu.Device:
    """A local ideal simulator that takes at most two circuits per job (so runs have many jobs)."""
    limits = multiqpu.DeviceLimits(max_circuits_per_job=2, max_concurrent_jobs=2)
    return multiqpu.device("local:ideal", num_qubits=8, limits=limits, **kwargs)  # type: ignore[arg-type]


def check_every_result_once(
    result: SampleResult, circuits: list[QuantumCircuit], journal: Journal
) -> None:
    """One result per circuit, in order, physically right, and the journal agrees."""
    assert [r.index for r in result.results] == list(range(len(circuits)))
    for circuit, task in zip(circuits, result.results, strict=True):
        assert_matches_exact(circuit, task.counts, SHOTS)
    done = journal.done_results(result.run_id)
    assert sorted(done) == list(range(len(circuits)))
    for i, task in enumerate(result.results):
        assert done[i] == (task.device, task.result)
    assert journal.open_jobs(result.run_id) == []
    assert journal.run_info(result.run_id).state == "done"


async def jobs_settle(device: FaultyDevice) -> None:
    """Wait (up to 5 s) for the cancellations the scheduler sent in the background to land;
    fail if a job of ``device`` is still running then."""
    for _ in range(500):
        if device.in_flight == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{device.in_flight} job(s) of {device.spec} were never cancelled")


async def test_transient_errors_are_retried_and_nothing_is_lost() -> None:
    flaky = FaultyDevice(small_jobs(seed=1), name="flaky", transient_failures=3)
    coin = FaultyDevice(small_jobs(seed=2), name="coin", transient_failures=0.3, seed=1)
    circuits = [tagged_circuit(i) for i in range(12)]
    journal = Journal(":memory:")
    result = await multiqpu.Fleet([flaky, coin]).sample(
        circuits, shots=SHOTS, journal=journal, hedging=False, **FAST
    )
    check_every_result_once(result, circuits, journal)
    # flaky fails its first 3 submissions; coin's seed makes its first draw a failure
    assert flaky.transient_raised == 3 and coin.transient_raised >= 1
    assert result.report.retries >= flaky.transient_raised + coin.transient_raised
    # a retried submission is not duplicated: (no hedging here) each circuit was accepted once
    keys = [k for d in (flaky, coin) for s in d.submissions for k in s.circuit_keys]
    assert sorted(keys) == sorted(circuit_key(c) for c in circuits)


async def test_permanent_device_loss_mid_run_moves_its_work() -> None:
    dies = FaultyDevice(
        small_jobs(seed=3), name="dies", fail_after=1, fail_in_flight=True, delay_s=0.3
    )
    ok = FaultyDevice(small_jobs(seed=4), name="ok", delay_s=(0.0, 0.1), seed=1)
    circuits = [tagged_circuit(i) for i in range(16)]
    journal = Journal(":memory:")
    result = await multiqpu.Fleet([dies, ok]).sample(circuits, shots=SHOTS, journal=journal, **FAST)
    check_every_result_once(result, circuits, journal)
    assert dies.lost and "local:dies" in result.report.dropped_devices
    # the lost device delivered nothing after the loss; the healthy one did the rest
    assert sum(task.device == "local:ok" for task in result.results) >= 16 - 2
    failed = [j for j in journal.jobs(result.run_id) if j.state == "failed"]
    assert failed and all(j.device == "local:dies" for j in failed)


async def test_hanging_device_times_out_and_its_work_moves() -> None:
    stuck = FaultyDevice(small_jobs(seed=5), name="stuck", hang=True)
    ok = FaultyDevice(small_jobs(seed=6), name="ok")
    circuits = [tagged_circuit(i) for i in range(8)]
    journal = Journal(":memory:")
    result = await multiqpu.Fleet([stuck, ok]).sample(
        circuits, shots=SHOTS, journal=journal, job_timeout_s=0.5, hedging=False, **FAST
    )
    check_every_result_once(result, circuits, journal)
    assert all(task.device == "local:ok" for task in result.results)
    await jobs_settle(stuck)  # its hung jobs were cancelled, not abandoned
    stuck_jobs = [j for j in journal.jobs(result.run_id) if j.device == "local:stuck"]
    assert stuck_jobs and all(j.state == "failed" for j in stuck_jobs)
    assert all("timed out" in (j.error or "") for j in stuck_jobs)


async def test_hedging_rescues_stragglers_without_a_timeout() -> None:
    stuck = FaultyDevice(small_jobs(seed=7), name="stuck", hang=True)
    ok = FaultyDevice(small_jobs(seed=8), name="ok")
    circuits = [tagged_circuit(i) for i in range(6)]
    journal = Journal(":memory:")
    result = await multiqpu.Fleet([stuck, ok]).sample(
        circuits, shots=SHOTS, journal=journal, hedging=True, **FAST
    )
    check_every_result_once(result, circuits, journal)
    assert result.report.hedges_won >= 1
    await jobs_settle(stuck)
    stuck_jobs = [j for j in journal.jobs(result.run_id) if j.device == "local:stuck"]
    assert stuck_jobs and all(j.state == "cancelled" for j in stuck_jobs)


async def test_a_deadline_cancels_the_run_and_its_jobs() -> None:
    stuck = FaultyDevice(small_jobs(seed=9), name="stuck", hang=True)
    circuits = [tagged_circuit(i) for i in range(4)]
    journal = Journal(":memory:")
    with pytest.raises(JobError, match=r"deadline_s=0.5.*in the journal \(run ") as err:
        await multiqpu.Fleet([stuck]).sample(
            circuits, shots=SHOTS, journal=journal, deadline_s=0.5, **FAST
        )
    assert stuck.submissions and stuck.in_flight == 0
    (info,) = journal.runs()
    assert info.run_id in str(err.value)
    assert info.state in ("failed", "cancelled") and info.n_done == 0
    assert {j.state for j in journal.jobs(info.run_id)} <= {"cancelled", "failed"}


async def test_a_deadline_without_a_journal_does_not_point_to_one() -> None:
    stuck = FaultyDevice(small_jobs(seed=9), name="stuck", hang=True)
    with pytest.raises(JobError, match=r"deadline_s=0.5.*no journal.*not kept") as err:
        await multiqpu.Fleet([stuck]).sample(
            [tagged_circuit(i) for i in range(2)],
            shots=SHOTS,
            journal=False,
            deadline_s=0.5,
            **FAST,
        )
    assert "in the journal" not in str(err.value)
    assert stuck.in_flight == 0


async def test_results_arriving_out_of_order_land_on_the_right_circuit() -> None:
    devices = [
        FaultyDevice(small_jobs(seed=10 + k), name=f"d{k}", delay_s=(0.0, 0.5), seed=k)
        for k in range(3)
    ]
    circuits = [tagged_circuit(i) for i in range(24)]
    journal = Journal(":memory:")
    result = await multiqpu.Fleet(devices).sample(circuits, shots=SHOTS, journal=journal, **FAST)
    check_every_result_once(result, circuits, journal)
    jobs = [j for j in journal.jobs(result.run_id) if j.state == "done"]
    by_finish = sorted(jobs, key=lambda j: j.finished_at or 0.0)
    assert [j.job_row for j in by_finish] != [j.job_row for j in jobs]  # really out of order


async def test_a_job_that_overruns_its_estimate_is_hedged_and_the_fast_copy_wins() -> None:
    # "slow" is as fast as the others by every estimate, but holds each result for 30 s:
    # its first jobs overrun (after about 2 s on the prior's wait spread) while work is
    # still queued (the fast devices hold each result 0.1 s, so 320 circuits keep them busy
    # for about 4 s on any machine; without that hold-back a fast machine emptied the queue
    # before the overrun and the tail's hedges, not the overrun, rescued the run), their
    # circuits are copied to a fast device, the copies win, the slow jobs are cancelled
    slow = FaultyDevice(small_jobs(seed=21), name="slow", delay_s=30.0)
    fast = [FaultyDevice(small_jobs(seed=22 + k), name=f"fast{k}", delay_s=0.1) for k in range(2)]
    circuits = [tagged_circuit(i) for i in range(320)]
    journal = Journal(":memory:")
    result = await multiqpu.Fleet([slow, *fast]).sample(
        circuits, shots=SHOTS, journal=journal, **FAST
    )
    check_every_result_once(result, circuits, journal)
    report = result.report
    assert report.overrun_hedges >= 1 and report.hedges_won >= 1
    assert slow.submissions  # it was given work ...
    assert all(task.device != "local:slow" for task in result.results)  # ... copied away
    assert report.makespan_s < 30.0  # the run never waited for a slow result
    await jobs_settle(slow)
    slow_jobs = [j for j in journal.jobs(result.run_id) if j.device == "local:slow"]
    assert slow_jobs and all(j.state == "cancelled" for j in slow_jobs)
