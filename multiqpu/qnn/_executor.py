"""Where the trainer's shards run: real devices of a fleet, or simulated devices on a virtual
clock. Both offer the same small event interface, so synchronous and asynchronous
aggregation are written once:

* ``start(d, work, shots, tag)`` hands a shard's circuits to device ``d`` and returns at once;
* ``await next()`` returns the next finished shard (its results, when it was submitted and
  when it finished, on the executor's clock);
* ``now()`` is that clock: wall time for :class:`FleetExecutor`, virtual seconds for
  :class:`VirtualExecutor`, whose devices wait in lognormal queues and run at a set speed
  while their results are computed at once by exact simulation and multinomial sampling.
"""

from __future__ import annotations

import abc
import asyncio
import heapq
import itertools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from multiqpu.errors import DeviceUnavailableError, InvalidInputError, MultiQPUError

if TYPE_CHECKING:
    from multiqpu.device import CircuitResult, Device, RunResult
    from multiqpu.mitigation import MitigatedCircuit, MitigationSpec
    from multiqpu.pool import DevicePool
    from multiqpu.primitives._pauli import Basis, Estimate, Term
    from multiqpu.qnn._simulate import SampledRows
    from multiqpu.qnn.model import Work
    from multiqpu.scheduler._options import Options

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MitigatedShardResult:
    """One circuit of a mitigated shard: the device's corrected result, read as sums of
    Z-parities with standard errors (see :mod:`multiqpu.primitives._mitigated`)."""

    item: MitigatedCircuit
    num_clbits: int

    @property
    def counts(self) -> Any:
        return self.item.counts

    def estimate(self, basis: Basis, terms: Sequence[Term]) -> Estimate:
        from multiqpu.primitives._mitigated import parity_sum
        from multiqpu.primitives._pauli import Estimate, measured_qubits, term_masks

        if not terms:
            return Estimate(0.0, 0.0)
        masks = term_masks(basis, terms)
        offset = self.num_clbits - len(measured_qubits(basis))
        pairs = [(int(m), t.coeff) for m, t in zip(masks, terms, strict=True)]
        value, se = parity_sum(self.item, pairs, offset)
        return Estimate(value, se * se)


__all__ = [
    "Completion",
    "Executor",
    "FleetExecutor",
    "MitigatedShardResult",
    "VirtualDevice",
    "VirtualExecutor",
]


@dataclass(frozen=True)
class Completion:
    tag: Any
    device: int
    results: Sequence[CircuitResult]
    submitted: float
    finished: float
    #: the device that ran it, when not ``device`` (that one was lost: the shard moved)
    ran_on: int | None = None


class Executor(abc.ABC):
    """See the module docstring."""

    names: list[str]
    concurrency: list[int]

    @abc.abstractmethod
    def now(self) -> float: ...

    @abc.abstractmethod
    def start(self, d: int, work: Work, shots: int | None, tag: Any) -> None: ...

    @abc.abstractmethod
    async def next(self) -> Completion: ...

    @abc.abstractmethod
    def in_flight(self) -> int: ...

    def quality(self, work: Work) -> list[float]:
        """Estimated fidelity of the model's circuits on each device (1.0 when unknown)."""
        return [1.0] * len(self.names)

    def job_prior(self, d: int) -> tuple[float, float]:
        """Prior (per-job overhead, high queue wait) of device ``d`` in seconds: what the
        trainer assumes when it sizes shards and picks how many to keep in flight."""
        return 0.0, 0.0

    def lost_devices(self) -> frozenset[int]:
        """Devices lost for good during training (they get no more shards)."""
        return frozenset()

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to cancel by default
        """Cancel whatever is still running."""


class FleetExecutor(Executor):
    """Shards run on the devices of a pool with ``device.run`` (large shards are split into
    jobs within each device's ``max_circuits_per_job``). ``concurrency`` caps the shards in
    flight per device (default 2), always within the device's ``max_concurrent_jobs``.
    Submissions are throttled per provider and retried on transient provider errors as the
    scheduler's are (``options``: a :class:`~multiqpu.scheduler.Options`, for its
    ``retries``, ``backoff_s`` and ``rate_limits``); a job that fails after it was accepted
    runs again on its device, up to ``retries`` times in all (bad input is final).
    ``job_retries`` counts those reruns, ``submitter.retries`` the retried submissions.
    A device lost for good (``DeviceUnavailableError``) gets no more shards
    (:meth:`lost_devices`); its shard runs again on the live device that fits it with the
    fewest shards in flight (``Completion.ran_on``; ``moved`` counts them). Training ends
    only when no live device fits.

    ``devices`` is a :class:`~multiqpu.pool.DevicePool` or a list of devices (made into a
    pool). With ``mitigation`` (a resolved :class:`~multiqpu.mitigation.MitigationSpec`), each
    shard goes through :func:`multiqpu.mitigation.sample` on the one-device subset of that
    pool (``pool.subset([device])``, which shares what the pool learned about its devices): it
    runs on the device the trainer chose for it (with the scheduler's retries and throttling)
    and is corrected there with that device's own readout calibration and zero-noise fit,
    before its gradients meet any other device's."""

    def __init__(
        self,
        devices: DevicePool | Sequence[Device],
        *,
        concurrency: int | None = None,
        mitigation: MitigationSpec | None = None,
        options: Options | None = None,
    ) -> None:
        from multiqpu.pool import DevicePool
        from multiqpu.scheduler._options import Options
        from multiqpu.scheduler._submission import Submitter

        if not devices:
            raise InvalidInputError("the trainer needs at least one device")
        self.mitigation = mitigation
        self.pool = devices if isinstance(devices, DevicePool) else DevicePool(devices)
        self.devices = list(self.pool)
        self.names = [d.spec for d in self.devices]
        self.concurrency = [
            max(1, min(concurrency or 2, d.limits.max_concurrent_jobs)) for d in self.devices
        ]
        self._tasks: set[asyncio.Task[Completion]] = set()
        self._t0 = time.perf_counter()
        self.options = options or Options()
        self.submitter = Submitter(self.options)
        self.job_retries = 0
        self.lost: set[int] = set()
        self.moved = 0  # shards of a lost device that ran elsewhere
        self._busy = [0] * len(self.devices)

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def start(self, d: int, work: Work, shots: int | None, tag: Any) -> None:
        task = asyncio.ensure_future(self._run(d, work, shots, tag))
        self._tasks.add(task)

    def lost_devices(self) -> frozenset[int]:
        return frozenset(self.lost)

    async def _run(self, d: int, work: Work, shots: int | None, tag: Any) -> Completion:
        submitted = self.now()
        circuits = work.circuits()
        width = max((c.num_qubits for c in circuits), default=0)
        target = d
        while True:
            running = target
            self._busy[running] += 1
            try:
                results = await self._run_on(running, circuits, shots)
            except DeviceUnavailableError as exc:
                self.lost.add(target)
                live = [
                    i
                    for i, dev in enumerate(self.devices)
                    if i not in self.lost and dev.num_qubits >= width
                ]
                if not live:
                    raise DeviceUnavailableError(
                        f"no device left for the trainer's {width}-qubit circuits: "
                        f"{', '.join(self.names[i] for i in sorted(self.lost))} lost ({exc})"
                    ) from exc
                _log.warning("%s lost; its shard moves to another device", self.names[target])
                target = min(live, key=lambda i: (self._busy[i], i))
                self.moved += 1
                continue
            finally:
                self._busy[running] -= 1
            ran_on = None if target == d else target
            return Completion(tag, d, results, submitted, self.now(), ran_on)

    async def _run_on(self, d: int, circuits: list[Any], shots: int | None) -> list[Any]:
        device = self.devices[d]
        if self.mitigation is not None:
            from multiqpu.mitigation import sample

            if shots is None:
                raise InvalidInputError("mitigation corrects sampled results: give shots")
            mitigated = await sample(
                self.pool.subset([device]), circuits, mitigation=self.mitigation, shots=shots
            )
            return [
                MitigatedShardResult(item, c.num_clbits)
                for item, c in zip(mitigated.circuits, circuits, strict=True)
            ]
        size = max(1, device.limits.max_circuits_per_job)
        chunks = [circuits[i : i + size] for i in range(0, len(circuits), size)]
        runs = await asyncio.gather(*(self._job(device, c, shots) for c in chunks))
        return [r for run in runs for r in run.results]

    async def _job(self, device: Device, circuits: list[Any], shots: int | None) -> RunResult:
        """One job of a shard: submitted through the submitter, rerun if it fails."""
        from multiqpu.scheduler._submission import cancel_job

        for attempt in range(1, self.options.retries + 1):
            job = await self.submitter.submit(device, circuits, shots)
            try:
                return await job.result()
            except asyncio.CancelledError:
                await asyncio.shield(cancel_job(job))
                raise
            except (InvalidInputError, DeviceUnavailableError):
                raise
            except MultiQPUError:
                if attempt == self.options.retries:
                    raise
                self.job_retries += 1
        raise AssertionError("unreachable")  # pragma: no cover

    async def next(self) -> Completion:
        if not self._tasks:
            raise InvalidInputError("no shard is running")
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        task = min(done, key=id)
        self._tasks.discard(task)
        return task.result()

    def in_flight(self) -> int:
        return len(self._tasks)

    def job_prior(self, d: int) -> tuple[float, float]:
        # the scheduler's priors: simulators start at once, a QPU's job costs seconds of
        # set-up and waits in a queue (learned from the first shards either way)
        return (5.0, 30.0) if self.devices[d].imitates_qpu else (0.05, 0.0)

    def quality(self, work: Work) -> list[float]:
        out = []
        circuit = work.circuits()[0] if len(work) else None
        for device in self.devices:
            if circuit is None or device.exact:
                out.append(1.0)
                continue
            try:
                out.append(
                    float(device.calibration().estimated_fidelity(device.transpile(circuit)))
                )
            except Exception:  # a calibration that cannot score the circuit: no preference
                out.append(1.0)
        return out

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


_Z90 = 1.2816  # standard normal 90 % quantile


@dataclass(frozen=True)
class VirtualDevice:
    """A simulated QPU: lognormal queue wait per job (median, shape), a fixed overhead per
    job and a time per shot; results are exact simulations sampled with ``shots`` (or exact
    when shots is None), optionally with a uniform readout flip probability."""

    name: str
    queue_median_s: float = 5.0
    queue_sigma: float = 0.8
    overhead_s: float = 2.0
    shot_s: float = 2e-4
    concurrency: int = 2
    fidelity: float = 1.0
    readout_error: float = 0.0


@dataclass(order=True)
class _Pending:
    finished: float
    seq: int
    completion: Completion = field(compare=False)


class VirtualExecutor(Executor):
    """Devices on a virtual clock (see :class:`VirtualDevice`). Each device executes one job
    at a time in submission order; a job becomes ready after its queue wait."""

    def __init__(self, devices: Sequence[VirtualDevice], *, seed: int = 0) -> None:
        if not devices:
            raise InvalidInputError("the trainer needs at least one device")
        self.spec = list(devices)
        self.names = [d.name for d in devices]
        self.concurrency = [d.concurrency for d in devices]
        self._rng = np.random.default_rng(seed)
        self._clock = 0.0
        self._lane_free = [0.0] * len(devices)
        self._heap: list[_Pending] = []
        self._seq = itertools.count()
        self.busy_s = [0.0] * len(devices)

    def now(self) -> float:
        return self._clock

    def start(self, d: int, work: Work, shots: int | None, tag: Any) -> None:
        from multiqpu.qnn._simulate import probabilities_array

        dev = self.spec[d]
        wait = dev.queue_median_s * math.exp(dev.queue_sigma * self._rng.standard_normal())
        ready = self._clock + wait
        run_s = dev.overhead_s + len(work) * (shots or 1000) * dev.shot_s
        begin = max(ready, self._lane_free[d])
        finished = begin + run_s
        self._lane_free[d] = finished
        self.busy_s[d] += run_s
        probs = probabilities_array(work, single=shots is not None)
        results = _results(probs, work, shots, dev.readout_error, self._rng)
        completion = Completion(tag, d, results, self._clock, finished)
        heapq.heappush(self._heap, _Pending(finished, next(self._seq), completion))

    async def next(self) -> Completion:
        if not self._heap:
            raise InvalidInputError("no shard is running")
        item = heapq.heappop(self._heap)
        self._clock = max(self._clock, item.finished)
        return item.completion

    def in_flight(self) -> int:
        return len(self._heap)

    def quality(self, work: Work) -> list[float]:
        return [d.fidelity for d in self.spec]

    def job_prior(self, d: int) -> tuple[float, float]:
        """The device's stated overhead and the 90 % quantile of its queue wait."""
        dev = self.spec[d]
        return dev.overhead_s, dev.queue_median_s * math.exp(_Z90 * dev.queue_sigma)


def _results(
    probs: np.ndarray,
    work: Work,
    shots: int | None,
    readout_error: float,
    rng: np.random.Generator,
) -> SampledRows:
    from multiqpu.qnn._simulate import SampledRows

    width = max(t.num_clbits for t in work.templates)
    if readout_error:
        probs = _flip(probs, width, readout_error)
    return SampledRows(probs, width, shots, rng)


def _flip(probs: np.ndarray, width: int, p: float) -> np.ndarray:
    """Independent symmetric readout flips with probability ``p`` on every bit."""
    out = probs.reshape((len(probs),) + (2,) * width)
    flip = np.array([[1 - p, p], [p, 1 - p]])
    for axis in range(1, width + 1):
        out = np.moveaxis(np.tensordot(out, flip, axes=([axis], [0])), -1, axis)
    return out.reshape(len(probs), -1)
