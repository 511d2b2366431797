"""Local-update training in the style of QUDIO (Du, Qian & Tao, arXiv 2106.12819).

Training goes in *rounds*: in a round every device takes optimizer steps on its own copy of
the weights (and of the optimizer state), each step one job of the epoch's next samples,
with no communication; at the end of the round the devices' weight changes are aggregated
(the trainer's aggregator, by default the sample-weighted mean) into the shared weights, the
optimizer states are averaged, and the next round starts from there. Queue waits and device
speeds then only meet at the round's barrier instead of at every step.

**Round length**: ``k`` times the median device's measured time per local step (queue
included). A device starts another local step only while that step is expected to end
within the round (its first step always, unless that step alone is expected to last more
than twice the round), so a fast device takes more steps than a slow one (``k_d`` adapts
to each device) and a device whose single step is longer than two rounds (a long queue)
sits the round out instead of holding the barrier. Samples are handed out from one queue,
so every sample of the epoch is used once whoever takes it.

Step size per device: the device's plan size (:mod:`multiqpu.qnn._pipeline`: its throughput
share of a batch, grown until the per-job overhead is at most 10 % of the job), so one
device takes about as many steps per epoch as single-device training and all devices take
about as long per step.

**Adaptive k** (``local_steps=None``): the barrier costs about the spread of the devices'
finishing times, which is dominated by one queue wait (the executor's 90 % quantile
``w90``). ``k`` is the smallest number of steps for which that is at most 10 % of the round,
``k = ceil(max_d w90_d / (0.1 * min_d step_d))`` with ``step_d`` the device's measured time
per local step (queue included), capped by ``max_local_steps``; the first round, before
anything is measured, takes one step per device (devices whose prior 90 % queue wait is
over 3x the median device's wait for the next round). A fixed ``local_steps=k`` is used as given
(each device then takes at most ``k`` steps a round).
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import numpy as np

from multiqpu.qnn._aggregation import Aggregator, weighted_mean
from multiqpu.qnn._robust import combine

if TYPE_CHECKING:
    from multiqpu.qnn._aggregation import ParameterServer
    from multiqpu.qnn._epochs import EpochStats, Progress
    from multiqpu.qnn._optim import Optimizer
    from multiqpu.qnn._workers import Workers

__all__ = ["BARRIER_FRACTION", "adaptive_k", "local_epoch"]

BARRIER_FRACTION = 0.10


def adaptive_k(wait90: np.ndarray, step_s: np.ndarray, cap: int) -> int:
    """The local steps per round for which a 90 % queue wait is at most 10 % of a round."""
    known = step_s[np.isfinite(step_s) & (step_s > 0)]
    if not len(known):
        return 1
    k = math.ceil(float(np.max(wait90)) / (BARRIER_FRACTION * float(np.min(known))) - 1e-9)
    return int(min(max(k, 1), cap))


def _average_optimizers(opts: list[Optimizer], weights: np.ndarray) -> Optimizer:
    """The optimizer state after a round: moment estimates (Adam's ``m`` and ``v``)
    averaged with ``weights``, step counts the largest; other optimizers are stateless."""
    out = copy.deepcopy(opts[0])
    w = weights / weights.sum()
    for name in ("m", "v"):
        arrays = [getattr(o, name, None) for o in opts]
        if all(a is not None for a in arrays):
            setattr(out, name, np.tensordot(w, np.array(arrays), axes=1))
    if hasattr(out, "t"):
        out.t = max(int(getattr(o, "t", 0)) for o in opts)
    return out


async def local_epoch(
    workers: Workers,
    server: ParameterServer,
    X: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    batch_size: int,
    stats: EpochStats,
    bar: Progress,
    *,
    local_steps: int | None,
    max_local_steps: int,
    aggregator: Aggregator = weighted_mean,
) -> list[int]:
    """One epoch of local-update rounds over ``order``; returns the ``k`` of each round."""
    executor = workers.executor
    n_dev = workers.count
    step_s = workers.turnaround  # measured seconds per local step (queue included)
    wait90 = np.array([executor.job_prior(d)[1] for d in range(n_dev)])
    ks: list[int] = []
    sizes = workers.replan(batch_size, 10**9).sizes  # no staleness limit within a round
    feed = _Feed(order)
    while feed.left():
        k = local_steps or adaptive_k(wait90, step_s, max_local_steps)
        ks.append(k)
        known = step_s[np.isfinite(step_s)]
        length = k * float(np.median(known)) if len(known) else math.inf
        begin = executor.now()
        start_w = server.weights.copy()
        local_w = [start_w.copy() for _ in range(n_dev)]
        opts = [copy.deepcopy(server.optimizer) for _ in range(n_dev)]
        taken = np.zeros(n_dev, dtype=int)
        seen = np.zeros(n_dev)

        def launch(
            d: int,
            begin: float = begin,
            length: float = length,
            k: int = k,
            taken: np.ndarray = taken,
            local_w: list[np.ndarray] = local_w,
        ) -> None:
            if workers.off[d] or not feed.left():
                return
            if (local_steps or length == math.inf) and taken[d] >= k:
                return
            expected = float(step_s[d]) if np.isfinite(step_s[d]) else 0.0
            if expected > 2 * length or (taken[d] and executor.now() - begin + expected > length):
                return  # would overrun the round: wait for the averaging
            workers.start(d, X, feed.take(sizes[d]), local_w[d], int(taken[d]))

        # before anything is measured, a device whose expected queue wait (the executor's
        # 90 % prior) is over 3x the median device's skips the first round: it would hold
        # the first barrier; it is measured in the next one
        probe = ~np.isfinite(step_s).any()
        for d in range(n_dev):
            if not probe or wait90[d] <= 3 * np.median(wait90):
                launch(d)
        if not executor.in_flight():  # nobody fits the round: the fastest device steps
            launch(int(np.argmin(np.where(workers.off, np.inf,
                                          np.where(np.isfinite(step_s), step_s, 1e300)))),
                   length=math.inf)  # fmt: skip
        while executor.in_flight():
            done = await executor.next()
            d = done.device
            g, n = workers.absorb(done, X, y, stats, bar)
            stats.stale(np.full(n, taken[d]))
            local_w[d] = opts[d].step(local_w[d], g)
            taken[d] += 1
            seen[d] += n * float(workers.weight(np.array([d]))[0])
            launch(d)
        active = np.flatnonzero(seen > 0)
        deltas = np.array([local_w[d] - start_w for d in active])
        server.weights = start_w + combine(aggregator, deltas, seen[active], active)
        server.optimizer.load(_average_optimizers([opts[d] for d in active], seen[active]).state())
        server.version += int(max(taken))
    return ks


class _Feed:
    """The epoch's samples, handed out in order to whichever device asks."""

    def __init__(self, order: np.ndarray) -> None:
        self.order = order
        self.at = 0

    def left(self) -> bool:
        return self.at < len(self.order)

    def take(self, n: int) -> np.ndarray:
        out = self.order[self.at : self.at + n]
        self.at += len(out)
        return out
