"""The executor's side of :mod:`multiqpu.trust`: canaries mixed into jobs, the sequential
test per device as results arrive, and what to run again when a device is flagged.

A canary rides in a job with the run's circuits (same device, same shots, as wide as the
job's widest circuit, about half as deep before its mirror), so a device cannot tell it apart
by where or when it runs. A fresh canary is drawn for every job. Its result is taken out of
the job's results before anything is recorded or delivered; it updates the test of the device
that ran it, against the prediction of that device's own calibration.

Shot budget: the run may spend ``canary_rate / (1 - canary_rate)`` times its circuits' shots
on canaries (so canaries are at most ``canary_rate`` of all shots). Until a device's first
canary has come back, each of its jobs gets one while the run's budget allows; after that a
job gets one while the device's own canary shots stay within that share of its shots.
"""

from __future__ import annotations

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

    from multiqpu.device import CircuitResult, RunResult
    from multiqpu.pool import DevicePool
    from multiqpu.scheduler._costmodel import Item
    from multiqpu.scheduler._report import SampleResult, TaskResult

__all__ = ["Flag", "Monitor", "cross_checks", "finish_trust", "monitor_for", "split_canary"]


@dataclass(frozen=True)
class Flag:
    """A device the test just flagged, and the run's circuits to run again elsewhere."""

    device: int
    reason: str
    rerun: tuple[int, ...]


@dataclass
class _DeviceState:
    test: CanaryTest
    user_shots: int = 0
    canary_shots: int = 0
    in_flight: int = 0
    unverified: list[int] = field(default_factory=list)
    rerun: list[int] = field(default_factory=list)
    reason: str | None = None


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

    def pick(self, d: int, circuits: Sequence[QuantumCircuit], shots: int | None) -> Canary | None:
        """A canary to add to a job of ``circuits`` on device ``d``, or None."""
        device = self.devices[d]
        st = self.state[d]
        if shots is None or st.test.flagged:
            return None
        if len(circuits) + 1 > device.limits.max_circuits_per_job:
            return None
        st.user_shots += shots * len(circuits)
        if self.spent + shots > self.budget:
            return None
        if st.test.canaries == 0:
            if st.in_flight:  # one at a time until the device's first canary came back
                return None
        elif st.canary_shots + shots > self.ratio * st.user_shots:
            return None
        width = min(max(c.num_qubits for c in circuits), device.num_qubits)
        depth = statistics.median(c.depth() for c in circuits)
        layers = int(min(self.trust.max_layers, max(1, depth // 4)))
        self.spent += shots
        st.canary_shots += shots
        st.in_flight += 1
        return make_canary(width, layers, self._rng)

    def flagged_before(self) -> list[Flag]:
        """Devices flagged by an earlier run on this pool."""
        return [
            Flag(d, f"flagged by an earlier run: {st.test.why()}", ())
            for d, st in enumerate(self.state)
            if st.test.flagged
        ]

    def release(self, d: int, canary: Canary | None, shots: int | None) -> None:
        """A job that carried ``canary`` was cancelled or failed: no result, no shots spent."""
        if canary is not None and shots is not None:
            st = self.state[d]
            st.in_flight -= 1
            st.canary_shots -= shots
            self.spent -= shots

    def on_delivery(
        self,
        d: int,
        delivered: Sequence[int],
        canary: Canary | None,
        result: CircuitResult | None,
    ) -> Flag | None:
        """A job of device ``d`` came back: the run's circuits it delivered, and its canary
        with the canary's result (if it carried one)."""
        st = self.state[d]
        if canary is not None:
            st.in_flight -= 1
        if st.test.flagged:
            return None
        st.unverified.extend(delivered)
        if canary is None or result is None:
            return None
        fidelity = predicted_fidelity(self.devices[d], canary.circuit)
        failures, shots = canary_failures(result.counts, canary.expected)
        passed = st.test.update(
            failures, shots, self.trust.predicted_failure(fidelity), canary.width
        )
        if not st.test.flagged:
            if passed:
                st.unverified.clear()
            return None
        st.reason = st.test.why()
        rerun = tuple(st.unverified)
        st.unverified.clear()
        if self.trust.mode == "quarantine":
            st.rerun.extend(rerun)
        return Flag(d, st.reason, rerun)

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


def split_canary(
    result: RunResult, canary: Canary | None, tasks: int
) -> tuple[RunResult, CircuitResult | None]:
    """A job's results without its canary's (the canary rode last), and the canary's."""
    if canary is None or len(result.results) != tasks + 1:
        return result, None
    return replace(result, results=result.results[:-1]), result.results[-1]
