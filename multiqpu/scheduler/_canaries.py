"""The executor's side of :mod:`multiqpu.trust`: canaries mixed into jobs, the sequential
test per device as results arrive, and what to run again when a device is flagged.

A canary rides in a job with the run's circuits (same device, same shots, as wide as the
job's widest circuit, about half as deep before its mirror), so a device cannot tell it apart
by where or when it runs. A fresh canary is drawn for every job. Its result is taken out of
the job's results before anything is recorded or delivered; it updates the test of the device
that ran it, against the prediction of that device's own calibration.

Shot budget: the run may spend ``canary_rate / (1 - canary_rate)`` times its circuits' shots
on canaries (so canaries are at most ``canary_rate`` of all shots). A device's first canary
may take up to an equal share of that budget (one canary in flight until it came back, so
every device of the run gets checked early); later ones ride while the device's own canary
shots stay within ``canary_rate`` of its shots. A canary rides inline (one more circuit of the
job, same shots) when the job's shots fit what it may spend, else in a companion job on the
same device with fewer shots (at least ``MIN_CANARY_SHOTS``).
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from multiqpu._canary import Canary, canary_failures, make_canary, predicted_fidelity
from multiqpu.trust import (
    CanaryTest,
    Consistency,
    DeviceVerdict,
    Trust,
    TrustReport,
    consistency,
)

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult, Device, RunResult
    from multiqpu.pool import DevicePool
    from multiqpu.scheduler._costmodel import Item
    from multiqpu.scheduler._report import SampleResult, TaskResult
    from multiqpu.scheduler._submission import Submitter

__all__ = [
    "MIN_CANARY_SHOTS",
    "Flag",
    "Monitor",
    "Ride",
    "cross_checks",
    "finish_trust",
    "monitor_for",
    "split_canary",
]


@dataclass(frozen=True)
class Flag:
    """A device the test just flagged, and the run's circuits to run again elsewhere."""

    device: int
    reason: str
    rerun: tuple[int, ...]


#: the fewest shots a canary runs with (fewer say too little to be worth a job)
MIN_CANARY_SHOTS = 100


@dataclass
class Ride:
    """A canary for one job: ``inline`` (one more circuit of the job, with its shots) or in a
    companion job of ``shots`` on the same device, submitted right after it."""

    canary: Canary
    shots: int
    inline: bool
    _task: asyncio.Task[RunResult] | None = None

    def circuits(self) -> list[QuantumCircuit]:
        """What to add to the job."""
        return [self.canary.circuit] if self.inline else []

    def launch(self, device: Device, submitter: Submitter) -> None:
        """Submit the companion job (if any) through the run's throttle and retries."""
        if not self.inline and self._task is None:
            self._task = asyncio.ensure_future(self._companion(device, submitter))
            # a failure is read by companion_result(), or never: do not warn about it
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _companion(self, device: Device, submitter: Submitter) -> RunResult:
        job = await submitter.submit(device, [self.canary.circuit], self.shots)
        return await job.result()

    async def companion_result(self) -> CircuitResult | None:
        if self._task is None:
            return None
        try:
            return (await asyncio.shield(self._task))[0]
        except asyncio.CancelledError:
            raise
        except Exception:  # a failed canary job says nothing about the results
            return None

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()


@dataclass
class _DeviceState:
    test: CanaryTest
    user_shots: int = 0
    canary_shots: int = 0
    in_flight: int = 0
    unverified: list[int] = field(default_factory=list)
    rerun: list[int] = field(default_factory=list)
    reason: str | None = None
    handled: bool = False  # this run acted on the device's flag


class Monitor:
    """The canaries of one run."""

    def __init__(self, trust: Trust, pool: DevicePool, user_shots: int) -> None:
        self.trust = trust
        self.devices = list(pool)
        self.ratio = trust.canary_rate / (1.0 - trust.canary_rate)
        self.budget = self.ratio * user_shots
        self.spent = 0
        # the tests live in the pool: a device flagged in one run stays flagged in the next
        tests = pool.canary_tests
        self.state = [
            _DeviceState(
                tests.setdefault(d.spec, CanaryTest(alpha=trust.alpha, min_flip=trust.min_flip))
            )
            for d in self.devices
        ]
        self._rng = np.random.default_rng([trust.seed, 0xCA])

    def pick(self, d: int, circuits: Sequence[QuantumCircuit], shots: int | None) -> Ride | None:
        """A canary for a job of ``circuits`` on device ``d``, or None: inline (in the job)
        when its shots fit the budget, else in a companion job with fewer shots."""
        device = self.devices[d]
        st = self.state[d]
        if shots is None or st.test.flagged:
            return None
        st.user_shots += shots * len(circuits)
        allowance = self.budget - self.spent
        if st.test.canaries == 0:
            if st.in_flight:  # one at a time until the device's first canary came back
                return None
            allowance = min(allowance, self.budget / len(self.devices))  # a fair first share
        else:
            allowance = min(allowance, self.ratio * st.user_shots - st.canary_shots)
        inline = shots <= allowance and len(circuits) < device.limits.max_circuits_per_job
        cshots = shots if inline else min(shots, int(allowance))
        if cshots < MIN_CANARY_SHOTS:
            return None
        width = min(max(c.num_qubits for c in circuits), device.num_qubits)
        depth = statistics.median(c.depth() for c in circuits)
        layers = int(min(self.trust.max_layers, max(1, depth // 4)))
        self.spent += cshots
        st.canary_shots += cshots
        st.in_flight += 1
        return Ride(make_canary(width, layers, self._rng), cshots, inline)

    def release(self, d: int, ride: Ride) -> None:
        """A job that carried ``ride`` was cancelled or failed: no result, no shots spent."""
        ride.cancel()
        st = self.state[d]
        st.in_flight -= 1
        st.canary_shots -= ride.shots
        self.spent -= ride.shots

    def on_delivery(
        self,
        d: int,
        delivered: Sequence[int],
        canary: Canary | None,
        result: CircuitResult | None,
    ) -> list[Flag]:
        """A job of device ``d`` came back: the run's circuits it delivered, and its canary
        with the canary's result (if it carried one). Returns the devices flagged since this
        run last asked (this one, or others flagged by concurrent runs on the pool)."""
        st = self.state[d]
        if canary is not None:
            st.in_flight -= 1
        if not st.handled:
            st.unverified.extend(delivered)
        if canary is not None and result is not None and not st.test.flagged:
            fidelity = predicted_fidelity(self.devices[d], canary.circuit)
            failures, shots = canary_failures(result.counts, canary.expected)
            q0 = self.trust.predicted_failure(fidelity)
            if st.test.update(failures, shots, q0, canary.width) and not st.test.flagged:
                st.unverified.clear()  # a passed check: what came before it is verified
        return self.newly_flagged()

    def newly_flagged(self) -> list[Flag]:
        """Devices whose test is flagged (by this run or another on the pool) that this run
        has not acted on yet, with the results to run again."""
        out = []
        for d, st in enumerate(self.state):
            if st.test.flagged and not st.handled:
                st.handled = True
                st.reason = st.test.why()
                rerun = tuple(st.unverified)
                st.unverified.clear()
                if self.trust.mode == "quarantine":
                    st.rerun.extend(rerun)
                out.append(Flag(d, st.reason, rerun))
        return out

    def report(self, checks: tuple[tuple[int, str, str, Consistency], ...] = ()) -> TrustReport:
        verdicts = []
        unchecked = []
        for dev, st in zip(self.devices, self.state, strict=True):
            t = st.test
            if t.canaries == 0:
                unchecked.append(dev.spec)
                continue
            verdicts.append(
                DeviceVerdict(
                    dev.spec,
                    t.canaries,
                    t.shots,
                    t.failures,
                    round(t.expected_failures, 3),
                    round(t.statistic, 3),
                    t.flagged,
                    st.reason,
                    tuple(st.rerun),
                )
            )
        return TrustReport(
            self.trust.mode,
            sum(st.test.shots for st in self.state),
            sum(st.user_shots for st in self.state),
            tuple(verdicts),
            tuple(unchecked),
            checks,
        )


def monitor_for(
    trust: Trust | None, pool: DevicePool, items: Sequence[Item], resumed: bool
) -> Monitor | None:
    """The run's monitor; None without ``trust``, for exact results, or on a resumed run."""
    if trust is None or resumed or trust.canary_rate == 0:
        return None
    user = sum(int(it.shots) for it in items if it.shots is not None)
    return Monitor(trust, pool, user) if user else None


def cross_checks(
    keys: Sequence[str], results: Sequence[TaskResult | None], alpha: float
) -> tuple[tuple[int, str, str, Consistency], ...]:
    """Compare each circuit of the run (by circuit key) that ran on two devices, once per key:
    (index of the second, device of the first, device of the second, comparison)."""
    first: dict[str, TaskResult] = {}
    done: set[str] = set()
    out = []
    for key, r in zip(keys, results, strict=True):
        if r is None or not r.result.counts or key in done:
            continue
        prev = first.setdefault(key, r)
        if prev.device != r.device:
            done.add(key)
            check = consistency(
                prev.result.counts,
                r.result.counts,
                fidelity_a=prev.estimated_fidelity or 1.0,
                fidelity_b=r.estimated_fidelity or 1.0,
                alpha=alpha,
            )
            out.append((r.index, prev.device, r.device, check))
    return tuple(out)


def finish_trust(out: SampleResult, monitor: Monitor, items: Sequence[Item]) -> SampleResult:
    """The result with the trust report attached."""
    from multiqpu._transpile import circuit_key

    keys = [circuit_key(it.circuit) for it in items]
    checks = cross_checks(keys, out.results, monitor.trust.alpha)
    return replace(out, report=replace(out.report, trust=monitor.report(checks)))


async def split_canary(
    result: RunResult, ride: Ride | None, tasks: int
) -> tuple[RunResult, CircuitResult | None]:
    """A job's results without its canary's (an inline canary rode last), and the canary's
    (None when it has none or its companion job failed)."""
    if ride is None:
        return result, None
    if not ride.inline:
        return result, await ride.companion_result()
    if len(result.results) != tasks + 1:
        return result, None
    return replace(result, results=result.results[:-1]), result.results[-1]
