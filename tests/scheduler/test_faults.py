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

import multiqpu
from multiqpu.device import DeviceStatus, JobStatus
from multiqpu.errors import (
    DeviceUnavailableError,
    InvalidInputError,
    JobError,
    TransientProviderError,
)
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
