"""The chaos run and the load run on the real async executor (shared by the tests and
tests/benchmarks/chaos.py, which runs them at full size).

Chaos: ``n`` circuits (one per job) over seven local ideal simulators, each wrapped in a
:class:`~multiqpu.testing.faults.FaultyDevice`; every device fails 20 % of its submissions
with a transient error, and on top one throttles (Retry-After), one is lost mid-run with its
jobs in flight, one hangs, one delivers late results and ignores cancellation, and two lose
acknowledgements (the provider runs the job, the submitter retries: duplicated work). The
circuits ask for exact probabilities (``shots=None``), so a fault-free run on plain devices
gives the very same answer for every circuit: the chaos run must return each one exactly
once and equal to it.

Load: ``n`` circuits through the executor against devices grouped into three providers
with rate limits; every submit call's time is recorded and each provider's calls in every
window of its period are counted.
"""

from __future__ import annotations

import asyncio
import math
import os
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qiskit import QuantumCircuit

import multiqpu
from multiqpu.journal import Journal
from multiqpu.testing.faults import FaultyDevice

__all__ = [
    "ChaosOutcome",
    "LoadOutcome",
    "chaos_circuits",
    "rate_limit_violations",
    "run_chaos",
    "run_load",
]

#: the scheduler options of the chaos run: quick retries, a timeout for hung and late jobs
CHAOS_OPTIONS: dict[str, Any] = {
    "retries": 12,
    "backoff_s": 0.002,
    "job_timeout_s": 0.5,
    "hedging": True,
    "cache": False,
    "progress": False,
    "rate_limits": {},
}


def chaos_circuits(n: int, seed: int, *, width: int = 5) -> list[QuantumCircuit]:
    """``n`` distinct small circuits (an index tag in binary, one seeded rotation)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        qc = QuantumCircuit(width, name=f"c{seed}-{i}")
        for b in range(width - 1):
            if (i >> b) & 1:
                qc.x(b)
        qc.ry(float(rng.uniform(0.1, 3.0)), width - 1)
        qc.cx(width - 1, 0)
        qc.measure_all()
        out.append(qc)
    return out


def _ideal(seed: int, width: int = 5) -> multiqpu.Device:
    limits = multiqpu.DeviceLimits(max_circuits_per_job=1, max_concurrent_jobs=8)
    return multiqpu.device(
        "local:ideal", num_qubits=width, limits=limits, seed=seed, label=f"ideal-{seed}"
    )


def chaos_devices(
    n: int, seed: int, fail_after: int | None = None, dies_delay_s: float = 0.05
) -> list[FaultyDevice]:
    """The seven faulty devices of a chaos run of ``n`` circuits (``dies`` is lost after
    ``fail_after`` jobs, default ``n // 20``; it holds each result back up to
    ``dies_delay_s``, so it has jobs in flight when it is lost)."""
    p = 0.2  # every device: 20 % transient failures
    return [
        FaultyDevice(_ideal(seed), name="flaky", transient_failures=p, seed=seed),
        FaultyDevice(
            _ideal(seed + 1), name="throttled", transient_failures=p, throttle=0.3,
            retry_after_s=0.01, seed=seed + 1,
        ),
        FaultyDevice(
            _ideal(seed + 2), name="dies", transient_failures=p,
            fail_after=fail_after or max(n // 20, 2), fail_in_flight=True,
            delay_s=(0.0, dies_delay_s), seed=seed + 2,
        ),
        FaultyDevice(_ideal(seed + 3), name="stuck", transient_failures=p, hang=True, seed=seed),
        FaultyDevice(
            _ideal(seed + 4), name="late", transient_failures=p, late_results=0.1, late_s=1.0,
            seed=seed + 4,
        ),
        FaultyDevice(
            _ideal(seed + 5), name="dup", transient_failures=p, lost_acks=0.2, seed=seed + 5
        ),
        FaultyDevice(
            _ideal(seed + 6), name="dup-late", transient_failures=p, lost_acks=0.1,
            late_results=0.05, late_s=1.0, delay_s=(0.0, 0.02), seed=seed + 6,
        ),
    ]  # fmt: skip


@dataclass
class ChaosOutcome:
    """What a chaos run returned, checked against the fault-free run."""

    circuits: int
    jobs: int  # jobs the providers accepted (retries, duplicates and hedges included)
    faults: dict[str, int]
    results_lost: int  # circuits without a result, or whose result differs from fault-free
    duplicates: int  # circuits returned more than once (by the run or in the journal)
    max_abs_diff: float  # largest probability difference from the fault-free run
    wall_s: float
    devices: list[str] = field(default_factory=list)


async def run_chaos(
    n: int,
    seed: int,
    journal_path: str | None = None,
    *,
    fail_after: int | None = None,
    dies_delay_s: float = 0.05,
) -> ChaosOutcome:
    """One chaos run of ``n`` circuits (see the module docstring) and its checks."""
    circuits = chaos_circuits(n, seed)
    clean = multiqpu.Fleet([_ideal(seed + k) for k in range(7)])
    reference = await clean.sample(
        circuits, shots=None, journal=None, **{**CHAOS_OPTIONS, "job_timeout_s": None}
    )
    devices = chaos_devices(n, seed, fail_after, dies_delay_s)
    with Journal(journal_path or ":memory:") as journal:
        t0 = time.perf_counter()
        result = await multiqpu.Fleet(devices).sample(
            circuits, shots=None, journal=journal, **CHAOS_OPTIONS
        )
        wall = time.perf_counter() - t0
        await asyncio.sleep(0)
        done = journal.done_results(result.run_id)
        done_jobs = [j for j in journal.jobs(result.run_id) if j.state == "done"]
    seen = Counter(task.index for task in result.results)
    per_task = Counter(i for j in done_jobs for i in j.task_indices)
    # a hedge's losing copy may finish too: the journal then keeps the first (done_results)
    duplicates = sum(k > 1 for k in seen.values()) + sum(
        1 for i in range(n) if i in done and done[i][1] != result.results[i].result
    )
    lost, worst = 0, 0.0
    for i in range(n):
        if seen[i] == 0 or per_task[i] == 0:
            lost += 1
            continue
        got = result.results[i].result.probabilities or {}
        want = reference.results[i].result.probabilities or {}
        diff = max((abs(got.get(k, 0.0) - want.get(k, 0.0)) for k in {*got, *want}), default=0.0)
        worst = max(worst, diff)
        lost += diff > 1e-9
    faults: Counter[str] = Counter()
    for d in devices:
        faults.update(d.faults)
    return ChaosOutcome(
        circuits=n,
        jobs=sum(len(d.submissions) for d in devices),
        faults=dict(sorted(faults.items())),
        results_lost=lost,
        duplicates=duplicates,
        max_abs_diff=worst,
        wall_s=wall,
        devices=[d.spec for d in devices],
    )


def rate_limit_violations(times: Sequence[float], calls: int, period: float) -> int:
    """Windows that saw more than ``calls`` submit calls within ``period`` seconds: the
    number of ``i`` with ``times[i + calls] - times[i] <= period`` (times sorted)."""
    t = sorted(times)
    return sum(t[i + calls] - t[i] <= period for i in range(len(t) - calls))


@dataclass
class LoadOutcome:
    circuits: int
    jobs: int
    submit_calls: dict[str, int]
    rate_limit_violations: int
    max_calls_per_window: dict[str, int]
    limits: dict[str, tuple[int, float]]
    peak_rss_mb: float
    rss_growth_mb: float  # the load run's peak resident memory minus what it started with
    wall_s: float


#: the load run's providers and their limits (calls, period_s)
LOAD_LIMITS: dict[str, tuple[int, float]] = {
    "prov-a": (40, 0.1),
    "prov-b": (25, 0.1),
    "prov-c": (60, 0.2),
}


def _window_max(times: Sequence[float], period: float) -> int:
    t = sorted(times)
    best, lo = 0, 0
    for hi in range(len(t)):
        while t[hi] - t[lo] > period:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _rss_mb() -> float:
    """This process's resident memory now (Linux ``/proc``; else the peak so far)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _sample_rss(peak: list[float], every_s: float = 0.05) -> None:
    while True:
        peak[0] = max(peak[0], _rss_mb())
        await asyncio.sleep(every_s)


async def run_load(n: int, seed: int, *, batch: int = 10) -> LoadOutcome:
    """``n`` circuits (``batch`` per job) over six devices in three rate-limited providers,
    every one with 10 % throttling responses."""
    circuits = chaos_circuits(n, seed)
    limits = multiqpu.DeviceLimits(max_circuits_per_job=batch, max_concurrent_jobs=16)
    devices = []
    for k, provider in enumerate(["prov-a", "prov-a", "prov-b", "prov-b", "prov-c", "prov-c"]):
        inner = multiqpu.device("local:ideal", num_qubits=5, limits=limits, seed=seed + k)
        dev = FaultyDevice(inner, name=f"load{k}", throttle=0.1, retry_after_s=0.01, seed=k)
        dev.provider = provider  # three pretend providers, each with its own rate limit
        devices.append(dev)
    before = _rss_mb()
    during = [before]
    sampler = asyncio.ensure_future(_sample_rss(during))
    t0 = time.perf_counter()
    result = await multiqpu.Fleet(devices).sample(
        circuits, shots=100, journal=None, cache=False, progress=False, hedging=False,
        retries=20, backoff_s=0.005, rate_limits=LOAD_LIMITS,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    sampler.cancel()
    during[0] = max(during[0], _rss_mb())
    assert len(result.results) == n
    times: dict[str, list[float]] = {p: [] for p in LOAD_LIMITS}
    for d in devices:
        times[d.provider].extend(d.attempt_times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return LoadOutcome(
        circuits=n,
        jobs=sum(len(d.submissions) for d in devices),
        submit_calls={p: len(t) for p, t in times.items()},
        rate_limit_violations=sum(
            rate_limit_violations(times[p], c, per) for p, (c, per) in LOAD_LIMITS.items()
        ),
        max_calls_per_window={p: _window_max(times[p], LOAD_LIMITS[p][1]) for p in LOAD_LIMITS},
        limits=LOAD_LIMITS,
        peak_rss_mb=round(peak, 1),
        rss_growth_mb=round(during[0] - before, 1),
        wall_s=wall,
    )


@dataclass
class TrustOutcome:
    """A sampled chaos run with one more device that corrupts every result, trust on."""

    circuits: int
    shots: int
    jobs: int
    flagged: bool  # the corrupting device was quarantined
    rerun: int  # its results withdrawn and run again elsewhere
    kept_from_corrupt: int  # final results still from the corrupting device
    off_exact: int  # circuits whose counts miss the exact distribution by > 5 sigma
    results_lost: int
    duplicates: int
    faults: dict[str, int]


def off_exact(
    circuit: QuantumCircuit, counts: dict[str, int], shots: int, n_sigma: float = 5.0
) -> bool:
    """Some outcome frequency is more than ``n_sigma`` standard errors (plus one count) from
    its exact probability, or an impossible outcome appears."""
    from qiskit.quantum_info import Statevector

    exact = Statevector(circuit.remove_final_measurements(inplace=False)).probabilities_dict()
    if any(exact.get(k, 0.0) < 1e-12 for k in counts):
        return True
    return any(
        abs(counts.get(k, 0) / shots - p) > n_sigma * math.sqrt(p * (1 - p) / shots) + 1 / shots
        for k, p in exact.items()
        if p > 1e-12
    )


async def run_chaos_trust(
    n: int, seed: int, shots: int = 400, *, flip: float = 0.05
) -> TrustOutcome:
    """The chaos devices plus ``liar`` (``BitFlips(flip)`` on every result, 20 % transient
    failures), sampled with ``trust=multiqpu.Trust()``: canaries flag the liar, its results
    run again elsewhere, every final result must match the exact distribution."""
    from multiqpu.testing.faults import BitFlips

    circuits = chaos_circuits(n, seed)
    liar = FaultyDevice(
        _ideal(seed + 7), name="liar", corrupt=BitFlips(flip), transient_failures=0.2,
        seed=seed + 7,
    )  # fmt: skip
    devices = [*chaos_devices(n, seed), liar]
    result = await multiqpu.Fleet(devices).sample(
        circuits, shots=shots, journal=None, trust=multiqpu.Trust(), **CHAOS_OPTIONS
    )
    trust = result.report.trust
    assert trust is not None
    verdict = next((v for v in trust.verdicts if v.device == liar.spec), None)
    seen = Counter(task.index for task in result.results)
    faults: Counter[str] = Counter()
    for d in devices:
        faults.update(d.faults)
    faults["corrupted"] += len(liar.corrupted)
    return TrustOutcome(
        circuits=n,
        shots=shots,
        jobs=sum(len(d.submissions) for d in devices),
        flagged=liar.spec in trust.flagged,
        rerun=len(verdict.rerun) if verdict is not None else 0,
        kept_from_corrupt=sum(t.device == liar.spec for t in result.results),
        off_exact=sum(
            off_exact(circuits[t.index], dict(t.result.counts), shots) for t in result.results
        ),
        results_lost=sum(seen[i] == 0 for i in range(n)),
        duplicates=sum(k > 1 for k in seen.values()),
        faults=dict(sorted(faults.items())),
    )
