"""Simulated queues: the model's statistics and the QueuedDevice wrapper."""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from qiskit import QuantumCircuit

from multiqpu import (
    Calibration,
    CircuitResult,
    CostEstimate,
    Device,
    DeviceStatus,
    DeviceTarget,
    DeviceUnavailableError,
    Job,
    JobError,
    JobStatus,
    QueueEstimate,
    ThreadJob,
)
from multiqpu.errors import ConfigError
from multiqpu.queue_model import QueuedDevice, QueuedJob, QueueModel, Window

N = 20_000
# A day at 00:00 UTC: hour h of that day is DAY0 + h * 3600.
DAY0 = datetime(2025, 3, 4, tzinfo=UTC).timestamp()


def at_hour(h: float) -> float:
    return DAY0 + h * 3600.0


# ---------------------------------------------------------------------------- a real inner device
class StatevectorDevice(Device):
    """A small exact sampler (qiskit Statevector) run in a worker thread: the inner device."""

    def __init__(self, num_qubits: int = 5, *, fail: bool = False) -> None:
        super().__init__("statevector", "test")
        self._n = num_qubits
        self._fail = fail
        self.submitted = 0

    @property
    def num_qubits(self) -> int:
        return self._n

    @property
    def target(self) -> DeviceTarget:
        return DeviceTarget(self._n, ("rz", "sx", "x", "cx"))

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        from qiskit.quantum_info import Statevector

        self.submitted += 1

        def work() -> tuple[list[CircuitResult], Mapping[str, Any]]:
            if self._fail:
                raise JobError("the simulator broke")
            out = []
            for circ in circuits:
                sv = Statevector(circ.remove_final_measurements(inplace=False))
                sv.seed(7)
                counts = sv.sample_counts(shots or 1)
                out.append(
                    CircuitResult(counts={k: int(v) for k, v in counts.items()}, shots=shots)
                )
            return out, {"engine": "statevector"}

        return ThreadJob(self.spec, work)

    async def status(self) -> DeviceStatus:
        return DeviceStatus.ONLINE

    async def queue_estimate(self) -> QueueEstimate:
        return QueueEstimate(0, 0.0, "live")

    def calibration(self) -> Calibration:
        return Calibration.ideal(self._n)

    def estimate_cost(self, circuits: Sequence[QuantumCircuit], shots: int) -> CostEstimate:
        return CostEstimate(0.0, tasks=len(circuits), shots=shots * len(circuits))


def ghz(n: int = 3) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    qc.measure_all()
    return qc


# ---------------------------------------------------------------------------- the pure model
def test_waits_are_heavy_tailed_around_the_median() -> None:
    model = QueueModel(median_wait_s=600.0, sigma=1.3, daily_amplitude=0.0, max_wait_s=1e9)
    rng = model.rng()
    waits = [model.sample_wait(DAY0, rng) for _ in range(N)]
    median = statistics.median(waits)
    # log-median standard error: 1.2533 * sigma / sqrt(N) = 0.0115; allow 4 of them
    assert abs(math.log(median / 600.0)) < 4 * 1.2533 * 1.3 / math.sqrt(N)
    assert statistics.mean(waits) > 2 * median  # exp(1.3**2 / 2) = 2.33
    assert max(waits) > 50 * median  # the tail reaches far


def test_expected_wait_is_the_capped_mean() -> None:
    model = QueueModel(median_wait_s=300.0, sigma=1.2, max_wait_s=3000.0, daily_amplitude=0.0)
    rng = model.rng()
    waits = [model.sample_wait(DAY0, rng) for _ in range(N)]
    assert max(waits) == pytest.approx(3000.0)
    se = statistics.stdev(waits) / math.sqrt(N)
    assert abs(statistics.mean(waits) - model.expected_wait(DAY0)) < 4 * se
    assert model.expected_wait(DAY0, ahead=3) == pytest.approx(
        model.expected_wait(DAY0) + 3 * model.run_s
    )


def test_seeded_and_reproducible_per_device() -> None:
    a = QueueModel.for_device("ibm:fake_torino", style="ibm", index=0)
    b = QueueModel.for_device("ibm:fake_torino", style="ibm", index=0)
    c = QueueModel.for_device("ibm:fake_kyiv", style="ibm", index=0)
    assert a == b
    assert a.seed != c.seed and a.median_wait_s != c.median_wait_s
    ra, rb = a.rng(), b.rng()
    assert [a.sample_wait(DAY0, ra) for _ in range(50)] == [
        b.sample_wait(DAY0, rb) for _ in range(50)
    ]
    assert a.pending_jobs(at_hour(9)) == b.pending_jobs(at_hour(9))


def test_default_fleet_profiles_differ_some_busy_some_idle() -> None:
    ibm = [
        QueueModel.for_device(f"ibm:{name}", style="ibm", index=i)
        for i, name in enumerate(["fake_torino", "fake_marrakesh", "fake_kyiv", "fake_manila"])
    ]
    medians = [m.median_wait_s for m in ibm]
    assert len(set(medians)) == 4
    assert max(medians) > 30 * min(medians)
    assert min(medians) < 120 < 1800 < max(medians)  # an idle one and a very busy one
    local = QueueModel.for_device("local:ideal", style="local", index=0)
    assert local.median_wait_s == 0 and local.pending_jobs(DAY0) == 0
    assert local.queue_estimate(DAY0, own=2).pending_jobs == 2
    odd = QueueModel.for_device("acme:qpu", style="acme", index=1)
    assert odd.style == "ibm"
    # with the default time scale a very busy device's mean wait stays under a second
    assert all(m.scaled(m.expected_wait(at_hour(m.peak_hour_utc))) < 2.0 for m in ibm)


def test_daily_cycle_is_visible() -> None:
    model = QueueModel(median_wait_s=600.0, daily_amplitude=0.6, peak_hour_utc=15.0)
    rng = model.rng()
    peak = statistics.median(model.sample_wait(at_hour(15), rng) for _ in range(5000))
    trough = statistics.median(model.sample_wait(at_hour(3), rng) for _ in range(5000))
    # load 1.6 vs 0.4: the medians differ fourfold (log se of each ~0.023)
    assert 3.4 < peak / trough < 4.7
    assert model.load(at_hour(15)) == pytest.approx(1.6)
    assert model.load(at_hour(3)) == pytest.approx(0.4)
    assert model.pending_jobs(at_hour(15)) > 2 * model.pending_jobs(at_hour(3))
    assert model.expected_wait(at_hour(15)) > 3 * model.expected_wait(at_hour(3))


def test_braket_reports_capped_strings() -> None:
    busy = QueueModel(style="braket", pending_mean=9000.0, daily_amplitude=0.0)
    est = busy.queue_estimate(DAY0)
    assert est == QueueEstimate(4000, est.expected_wait_s, "model", raw=">4000", capped=True)
    quiet = QueueModel(style="braket", pending_mean=12.0, daily_amplitude=0.0)
    est = quiet.queue_estimate(DAY0, own=1)
    assert est.raw == str(est.pending_jobs) and not est.capped
    assert est.pending_jobs is not None and est.pending_jobs >= 1
    ibm = QueueModel(style="ibm", pending_mean=9000.0).queue_estimate(DAY0)
    assert isinstance(ibm.pending_jobs, int) and ibm.pending_jobs > 4000
    assert ibm.raw is None and not ibm.capped and ibm.source == "model"
    # the default Braket device crosses the cap at its peak and not at its trough
    emu = QueueModel.for_device("braket:emulator", style="braket", index=0)
    assert emu.queue_estimate(at_hour(emu.peak_hour_utc)).capped
    assert not emu.queue_estimate(at_hour(emu.peak_hour_utc + 12)).capped


def test_time_scale_scales_reported_waits() -> None:
    model = QueueModel(median_wait_s=1000.0, daily_amplitude=0.0)
    fast = model.with_time_scale(1e-3)
    assert fast.queue_estimate(DAY0).expected_wait_s == pytest.approx(
        1e-3 * model.queue_estimate(DAY0).expected_wait_s  # type: ignore[operator]
    )
    assert fast.sample_wait(DAY0, fast.rng()) == model.sample_wait(DAY0, model.rng())


def test_windows_status_and_start_times() -> None:
    weekly = Window(at_hour(10), at_hour(12), DeviceStatus.MAINTENANCE, every=7 * 86400.0)
    outage = Window(at_hour(30), at_hour(31), DeviceStatus.OFFLINE)
    model = QueueModel(median_wait_s=0.0).with_windows(weekly, outage)
    assert model.status_at(at_hour(9.99)) is DeviceStatus.ONLINE
    assert model.status_at(at_hour(11)) is DeviceStatus.MAINTENANCE
    assert model.status_at(at_hour(11 + 7 * 24)) is DeviceStatus.MAINTENANCE
    assert model.status_at(at_hour(30.5)) is DeviceStatus.OFFLINE
    assert model.next_available(at_hour(11)) == at_hour(12)
    # a job that would start inside the window starts when it ends
    busy = QueueModel(median_wait_s=3600.0, sigma=0.0, daily_amplitude=0.0).with_windows(weekly)
    assert busy.start_time(at_hour(9.5), busy.rng()) == at_hour(12)
    assert busy.start_time(at_hour(7), busy.rng()) == at_hour(8)


def test_invalid_models_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="daily_amplitude"):
        QueueModel(daily_amplitude=1.5)
    with pytest.raises(ConfigError, match="time_scale"):
        QueueModel(time_scale=-1.0)
    with pytest.raises(ConfigError, match="style"):
        QueueModel(style="dwave")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="end after"):
        Window(10.0, 5.0)


# ---------------------------------------------------------------------------- QueuedDevice
def fixed(median_wall_s: float, *, time_scale: float = 1e-3, **kw: Any) -> QueueModel:
    """A model whose wait is exactly ``median_wall_s`` caller seconds (sigma 0, no cycle)."""
    return QueueModel(
        median_wait_s=median_wall_s / time_scale,
        sigma=0.0,
        daily_amplitude=0.0,
        time_scale=time_scale,
        max_wait_s=1e9,
        **kw,
    )


async def test_queued_device_delegates_to_inner() -> None:
    inner = StatevectorDevice(4)
    dev = QueuedDevice(inner, QueueModel.for_device("test:statevector", style="ibm", index=3))
    assert dev.spec == "test:statevector" and dev.inner is inner
    assert dev.num_qubits == 4 and dev.target == inner.target
    assert dev.calibration().num_qubits == 4
    assert dev.estimate_cost([ghz()], 100) == inner.estimate_cost([ghz()], 100)
    assert dev.transpile(ghz()) is inner.transpile(ghz())
    assert await dev.status() is DeviceStatus.ONLINE
    est = await dev.queue_estimate()
    assert est.source == "model" and isinstance(est.pending_jobs, int)
    assert est.expected_wait_s is not None and est.expected_wait_s > 0
    with pytest.raises(JobError):
        await dev.retrieve("nope")


async def test_run_waits_in_the_queue_and_reports_it() -> None:
    inner = StatevectorDevice()
    dev = QueuedDevice(inner, fixed(0.05))
    result = await dev.run([ghz()], shots=400)
    counts = result[0].counts
    assert set(counts) == {"000", "111"} and sum(counts.values()) == 400
    assert result.device == dev.spec and result.job_id.startswith("queued-")
    assert result.metadata["queue_wait_s"] >= 0.045
    assert result.metadata["queue_virtual_wait_s"] == pytest.approx(50.0)
    assert result.timings.queue_s is not None and result.timings.queue_s >= 0.045
    assert result.timings.execution_s is not None and result.timings.execution_s >= 0
    assert result.metadata["engine"] == "statevector"
    assert dev.own_jobs == 0


async def test_an_inner_failure_reaches_the_caller() -> None:
    dev = QueuedDevice(StatevectorDevice(fail=True), fixed(0.01))
    job = await dev.submit([ghz()], 10)
    with pytest.raises(JobError, match="simulator broke"):
        await job.result()
    assert await job.status() is JobStatus.FAILED and dev.own_jobs == 0


async def test_concurrent_submissions_see_a_growing_queue() -> None:
    inner = StatevectorDevice()
    model = fixed(0.05, pending_mean=10.0, run_s=20.0)
    dev = QueuedDevice(inner, model)
    before = await dev.queue_estimate()
    jobs = [await dev.submit([ghz()], 100) for _ in range(3)]
    after = await dev.queue_estimate()
    assert dev.own_jobs == 3
    assert after.pending_jobs == before.pending_jobs + 3  # type: ignore[operator]
    assert after.expected_wait_s > before.expected_wait_s  # type: ignore[operator]
    waits = [j.wait_s for j in jobs if isinstance(j, QueuedJob)]
    assert waits == sorted(waits) and waits[2] == pytest.approx(0.05 + 2 * 20.0 * 1e-3)
    results = await asyncio.gather(*(j.result() for j in jobs))
    assert [await j.status() for j in jobs] == [JobStatus.DONE] * 3
    assert all(sum(r[0].counts.values()) == 100 for r in results)
    assert dev.own_jobs == 0


async def test_waits_are_reproducible_per_device() -> None:
    model = QueueModel.for_device("ibm:fake_torino", style="ibm", index=0)
    a = QueuedDevice(StatevectorDevice(), model, clock=lambda: 0.0, epoch=at_hour(8))
    b = QueuedDevice(StatevectorDevice(), model, clock=lambda: 0.0, epoch=at_hour(8))
    ja = [await a.submit([ghz()], 10) for _ in range(3)]
    jb = [await b.submit([ghz()], 10) for _ in range(3)]
    assert [j.wait_s for j in ja] == [j.wait_s for j in jb]  # type: ignore[attr-defined]
    assert len({j.wait_s for j in ja}) == 3  # type: ignore[attr-defined]
    for j in ja + jb:
        await j.cancel()


async def test_cancel_during_the_queue_wait() -> None:
    inner = StatevectorDevice()
    dev = QueuedDevice(inner, fixed(30.0))
    job = await dev.submit([ghz()], 100)
    assert await job.status() is JobStatus.QUEUED
    await asyncio.sleep(0.01)
    await job.cancel()
    assert await job.status() is JobStatus.CANCELLED
    with pytest.raises(JobError, match="cancelled"):
        await job.result()
    assert inner.submitted == 0 and dev.own_jobs == 0


async def test_cancelling_run_cancels_the_queued_job() -> None:
    inner = StatevectorDevice()
    dev = QueuedDevice(inner, fixed(30.0))
    task = asyncio.ensure_future(dev.run([ghz()], 100))
    await asyncio.sleep(0.01)
    assert dev.own_jobs == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert inner.submitted == 0 and dev.own_jobs == 0


async def test_submit_during_maintenance_raises_and_status_says_so() -> None:
    window = Window(at_hour(10), at_hour(12), DeviceStatus.MAINTENANCE)
    model = fixed(0.01).with_windows(window)
    dev = QueuedDevice(StatevectorDevice(), model, clock=lambda: 0.0, epoch=at_hour(11))
    assert await dev.status() is DeviceStatus.MAINTENANCE
    with pytest.raises(DeviceUnavailableError, match="maintenance until 2025-03-04 12:00 UTC"):
        await dev.submit([ghz()], 10)
    assert dev.own_jobs == 0
    later = QueuedDevice(StatevectorDevice(), model, clock=lambda: 0.0, epoch=at_hour(13))
    assert await later.status() is DeviceStatus.ONLINE


def test_virtual_clock_runs_faster_by_the_time_scale() -> None:
    now = [100.0]
    dev = QueuedDevice(StatevectorDevice(), fixed(1.0, time_scale=1e-3), clock=lambda: now[0])
    v0 = dev.virtual_now()
    now[0] += 0.5
    assert dev.virtual_now() - v0 == pytest.approx(500.0)


async def test_time_scale_zero_never_waits_but_still_reports() -> None:
    model = QueueModel.for_device("ibm:fake_kyiv", style="ibm", index=2).with_time_scale(0.0)
    dev = QueuedDevice(StatevectorDevice(), model)
    est = await dev.queue_estimate()
    assert est.expected_wait_s == 0.0 and est.pending_jobs is not None and est.pending_jobs > 100
    job = await dev.submit([ghz()], 50)
    assert isinstance(job, QueuedJob) and job.wait_s == 0.0 and job.virtual_wait_s > 0
    assert sum((await job.result())[0].counts.values()) == 50
