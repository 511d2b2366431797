"""How much asynchronous work each device gets: shard size and in-flight depth.

Two costs hide a device's throughput when shards are small: a fixed overhead per job (paid
on the device, so it cannot overlap with other jobs and can only be amortised by larger
jobs) and the queue wait before a job starts (which overlaps with the device's running jobs
when more than one is in flight). The rules, per device ``d``:

* **shard size** ``s_d = max(b_d, m_d)`` capped at the batch, where ``b_d`` is the device's
  throughput share of a batch and ``m_d`` is the smallest shard whose per-job overhead is at
  most ``max_overhead`` (15 %) of its run time:
  ``m_d = ceil(overhead_d * (1 - f) / (f * sample_s_d))``;
* **in-flight depth** ``k_d = ceil(wait_d / run_d) + 1`` with ``run_d = overhead_d + s_d *
  sample_s_d`` and ``wait_d`` a high (90 %) quantile of the queue wait: enough jobs queued
  behind the running one to cover the wait; capped by the device's concurrent-job limit;
* **staleness**: a shard returns after the fleet has worked through the samples in flight
  ahead of it, i.e. about ``sum_d k_d s_d / batch_size`` parameter versions later. While that
  exceeds ``max_staleness - 1`` (one version left for the spread of queue waits), shards are
  shrunk back toward ``b_d`` first (giving up some amortisation), then depths are lowered
  (giving up queue hiding), never below one sample and one job.

A device whose time per sample is not measured yet gets ``b_d`` and one shard in flight:
its first result measures it (a device with a long queue would otherwise hold several
shards whose gradients come back too stale to use).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_OVERHEAD", "Plan", "plan"]

MAX_OVERHEAD = 0.10


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]  # samples per shard, per device
    depths: tuple[int, ...]  # shards in flight, per device
    staleness: float  # expected versions between a shard's start and its gradient's use

    def to_dict(self) -> dict[str, object]:
        return {
            "sizes": list(self.sizes),
            "depths": list(self.depths),
            "staleness": round(self.staleness, 2),
        }


def plan(
    batch_size: int,
    throughput: Sequence[float] | np.ndarray,
    sample_s: Sequence[float] | np.ndarray,
    overhead_s: Sequence[float],
    wait_s: Sequence[float],
    cap: Sequence[int],
    max_staleness: int,
    max_overhead: float = MAX_OVERHEAD,
) -> Plan:
    """The shard sizes and depths for the devices (see the module docstring)."""
    tp = np.asarray(throughput, dtype=float)
    rel = tp / tp.mean()
    n = len(tp)
    base = [int(np.clip(round(batch_size / n * r), 1, batch_size)) for r in rel]
    sizes = list(base)
    depths = [max(1, int(c)) for c in cap]
    for d in range(n):
        t = float(sample_s[d])
        if not math.isfinite(t) or t <= 0:
            depths[d] = 1  # one shard to measure the device before queueing more on it
            continue
        o = max(float(overhead_s[d]), 0.0)
        need = math.ceil(o * (1 - max_overhead) / (max_overhead * t) - 1e-9) if o else 1
        sizes[d] = min(batch_size, max(base[d], need))
        run = o + sizes[d] * t
        depths[d] = min(depths[d], math.ceil(max(float(wait_s[d]), 0.0) / run - 1e-9) + 1)

    def stale() -> float:
        return sum(k * s for k, s in zip(depths, sizes, strict=True)) / batch_size

    bound = max(max_staleness - 1, 0)
    while stale() > bound:
        extra = [s - b for s, b in zip(sizes, base, strict=True)]
        if max(extra) > 0:
            sizes[int(np.argmax(extra))] -= 1
        elif max(depths) > 1:
            depths[int(np.argmax(depths))] -= 1
        else:
            break
    return Plan(tuple(sizes), tuple(depths), stale())
