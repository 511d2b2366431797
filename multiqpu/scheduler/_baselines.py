"""Baselines for the virtual clock: a fixed placement with the core's driver interface.

``least_busy`` sends every circuit to the device reporting the fewest pending jobs
(qiskit-ibm-runtime's ``least_busy()`` rule); ``round_robin`` rotates over the devices that
fit. Both behave like a careful user: a failed job is resubmitted to its device, and when a
device is lost for good its work goes to the least busy device still alive that fits it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from multiqpu.scheduler._records import Delivery, Submission
from multiqpu.scheduler._simfleet import SimDevice
from multiqpu.scheduler._stats import Stats
from multiqpu.scheduler._tables import ClassTables, TaskSource

__all__ = ["FixedCore"]


class FixedCore:
    """A baseline placer with the core's driver interface: a fixed device per task,
    jobs of ``max_circuits_per_job``, failed jobs resubmitted to the same device. Like a
    careful user, when a device is lost for good its work (queued and failed) goes to the
    next device of ``fallback`` (best first) that is still alive and fits it."""

    def __init__(
        self,
        tables: ClassTables,
        source: TaskSource,
        device_of: np.ndarray,
        devices: Sequence[SimDevice],
        fallback: Callable[[float], Sequence[int]] | None = None,
    ) -> None:
        self.t = tables
        nd = tables.n_devices
        self.fallback = fallback or (lambda now: range(nd))
        self.alive = np.ones(nd, dtype=bool)
        idx, cls = source.take(source.total)
        self.queues: list[deque[tuple[np.ndarray, np.ndarray]]] = [deque() for _ in range(nd)]
        for d in range(nd):
            sel = device_of == d
            if sel.any():
                self.queues[d].append((idx[sel], cls[sel]))
        self.conc = np.array([dev.max_concurrent_jobs for dev in devices])
        self.batch = np.array([dev.max_circuits_per_job for dev in devices])
        self.inflight = np.zeros(nd, dtype=np.int64)
        self.jobs: dict[int, Submission] = {}
        self.stats = Stats(nd, start=0.0)
        self.total = len(idx)
        self._next = 0

    def pump(self, now: float) -> list[Submission]:
        subs = []
        for d, q in enumerate(self.queues):
            while q and self.inflight[d] < self.conc[d]:
                idx, cls = q.popleft()
                b = int(self.batch[d])
                if len(idx) > b:
                    q.appendleft((idx[b:], cls[b:]))
                    idx, cls = idx[:b], cls[:b]
                sub = Submission(self._next, d, idx, cls, 0)
                self._next += 1
                self.jobs[sub.job_id] = sub
                self.inflight[d] += 1
                self.stats.submitted[d] += 1
                subs.append(sub)
        return subs

    def on_done(
        self, job_id: int, now: float, *, queue_s: float | None, execution_s: float | None
    ) -> Delivery | None:
        sub = self.jobs.pop(job_id)
        self.inflight[sub.device] -= 1
        self.stats.record(sub.device, sub.idx, sub.cls, self.t, now, queue_s, execution_s)
        return Delivery(job_id, sub.device, sub.idx, sub.cls, np.arange(len(sub.idx)))

    def on_failed(self, job_id: int, now: float, *, permanent: bool) -> tuple[int, ...]:
        sub = self.jobs.pop(job_id)
        self.inflight[sub.device] -= 1
        self.stats.failures[sub.device] += 1
        self.queues[sub.device].appendleft((sub.idx, sub.cls))
        self.stats.retries += len(sub.idx)
        if permanent:
            return self._failover(sub.device, now)
        return ()

    def _failover(self, d: int, now: float) -> tuple[int, ...]:
        """Device ``d`` is gone: resubmit its work to the next fallback device that fits."""
        if not self.alive[d]:
            return ()
        self.alive[d] = False
        self.stats.dropped.append(d)
        cancel = tuple(j for j, s in self.jobs.items() if s.device == d)
        for j in cancel:
            s = self.jobs.pop(j)
            self.inflight[d] -= 1
            self.queues[d].appendleft((s.idx, s.cls))
        order = [int(k) for k in self.fallback(now)]
        while self.queues[d]:
            idx, cls = self.queues[d].popleft()
            need = np.unique(cls)
            to = next((k for k in order if self.alive[k] and self.t.fits[need, k].all()), None)
            if to is None:  # nobody fits: the user would be stuck; so is the baseline
                raise RuntimeError(f"baseline: no device left for the work of device #{d}")
            self.queues[to].append((idx, cls))
            self.stats.failovers += len(idx)
        return cancel

    def timeouts(self, now: float) -> list[int]:
        return []

    def next_wakeup(self, now: float) -> float | None:
        return None

    @property
    def finished(self) -> bool:
        return self.stats.delivered >= self.total
