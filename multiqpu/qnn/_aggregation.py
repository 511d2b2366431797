"""The trainer's two aggregation strategies and the parameter server they step.

* :func:`sync_epoch`: every mini-batch is split over the devices in proportion to their
  measured throughput, all shards are awaited, and one optimizer step uses their weighted
  mean gradient.
* :func:`async_epochs`: no barrier. Every device keeps several shards in flight and starts a
  new shard on the newest weights as soon as one finishes; the server steps whenever finished
  shards cover ``batch_size`` samples (K-async), on exactly ``batch_size`` of them. A gradient
  computed on weights more than ``max_staleness`` updates old is dropped and its shard
  recomputed (bounded staleness).

See :mod:`multiqpu.qnn.trainer` for the full rules; both work on :class:`~multiqpu.qnn.
_workers.Workers` (the devices) and a :class:`ParameterServer` (the weights).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import numpy as np

from multiqpu.qnn._epochs import EpochStats, Progress

if TYPE_CHECKING:
    from multiqpu.qnn._optim import Optimizer
    from multiqpu.qnn._workers import Workers
    from multiqpu.qnn.history import EpochRecord

__all__ = ["ParameterServer", "async_epochs", "sync_epoch"]


class ParameterServer:
    """The weights, their version (the number of optimizer steps taken) and the optimizer."""

    def __init__(self, weights: np.ndarray, optimizer: Optimizer) -> None:
        self.weights = weights
        self.optimizer = optimizer
        self.version = 0

    def step(self, grad: np.ndarray) -> None:
        self.weights = self.optimizer.step(self.weights, grad)
        self.version += 1


async def sync_epoch(
    workers: Workers,
    server: ParameterServer,
    X: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    batch_size: int,
    stats: EpochStats,
    bar: Progress,
) -> None:
    """One epoch over ``order`` in mini-batches, a barrier after each."""
    executor = workers.executor
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        shares = workers.shares(len(batch))
        at = 0
        for d, k in enumerate(shares):
            if k:
                idx = batch[at : at + k]
                at += k
                workers.start(d, X, idx, server.weights, server.version)
        grads, sizes, ds = [], [], []
        while executor.in_flight():
            done = await executor.next()
            g, n = workers.absorb(done, X, y, stats, bar)
            grads.append(g)
            sizes.append(n)
            ds.append(done.device)
        w = np.array(sizes, dtype=float) * workers.weight(np.array(ds))
        grad = np.tensordot(w / w.sum(), np.array(grads), axes=1)
        server.step(grad)


async def async_epochs(
    workers: Workers,
    server: ParameterServer,
    X: np.ndarray,
    y: np.ndarray,
    first: int,
    last: int,
    finish: Callable[[EpochRecord], Awaitable[None]],
    bar: Progress,
    *,
    batch_size: int,
    max_staleness: int,
    rng: np.random.Generator,
    barrier: bool,
) -> None:
    """Epochs ``first..last-1`` without a barrier between them (unless ``barrier``: then
    each epoch drains before the next starts, e.g. to validate on the fleet)."""
    executor = workers.executor
    n_dev = workers.count
    queue: deque[tuple[int, int]] = deque()  # (epoch, sample)
    inflight = [0] * n_dev

    def free(d: int) -> bool:
        return inflight[d] < workers.replan(batch_size, max_staleness).depths[d]

    # accepted per-sample gradients, their weight, the weights' version they were taken at
    pending: list[tuple[np.ndarray, float, int]] = []
    stats: dict[int, EpochStats] = {}
    left: dict[int, int] = {}
    started: dict[int, float] = {}
    next_epoch = first

    def refill() -> None:
        nonlocal next_epoch
        if next_epoch < last and (not barrier or not left):
            e = next_epoch
            next_epoch += 1
            queue.extend((e, int(i)) for i in rng.permutation(len(X)))
            stats[e], left[e] = EpochStats(n_dev), len(X)
            started[e] = executor.now()

    def launch(d: int) -> None:
        if not queue:
            refill()
        assert workers.plan is not None
        size = min(workers.plan.sizes[d], len(queue))
        items = [queue.popleft() for _ in range(size)]
        if items:
            idx = np.array([i for _, i in items])
            epochs = np.array([e for e, _ in items])
            workers.start(d, X, idx, server.weights, server.version, epochs=epochs)
            inflight[d] += 1

    def flush(full: bool = False) -> None:
        """One step on the first ``batch_size`` pending samples (on all of them unless
        ``full``), so steps hold a batch each as with one device; the rest waits for the
        next step, except samples that would then be staler than the bound."""
        nonlocal pending
        if not pending:
            return
        rows: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        keep: list[tuple[np.ndarray, float, int]] = []
        room = batch_size if full else len(X) * (last + 1)
        for g, w, v in pending:
            forced = server.version + 1 - v > max_staleness
            k = len(g) if forced else max(0, min(room, len(g)))
            rows.append(g[:k])
            weights.append(np.full(k, w))
            room -= k
            if k < len(g):
                keep.append((g[k:], w, v))
        wt = np.concatenate(weights)
        server.step(np.tensordot(wt / wt.sum(), np.concatenate(rows), axes=1))
        pending = keep

    refill()
    for d in range(n_dev):
        while free(d) and (queue or next_epoch < last):
            launch(d)
    while executor.in_flight():
        done = await executor.next()
        d = done.device
        inflight[d] -= 1
        epochs_of = done.tag[3]
        if server.version - done.tag[1] > max_staleness:
            stats[int(epochs_of[0])].dropped += 1  # too stale: recompute on fresh weights
            queue.extendleft(zip(reversed(epochs_of.tolist()), reversed(done.tag[0].tolist()),
                                 strict=True))  # fmt: skip
            workers.learn(done)
        else:
            per = workers.absorb_split(done, X, y, bar)
            g = per.pop("grad")
            pending.append((g, float(workers.weight(np.array([d]))[0]), int(done.tag[1])))
            while sum(len(p[0]) for p in pending) >= batch_size:
                flush(full=True)
            for e, (k, loss, correct, circuits) in per.items():
                stats[e].add(d, k, loss, correct, circuits)
                left[e] -= k
            for e in sorted(e for e, k in left.items() if k == 0):
                if e == min(left):  # epochs complete in order
                    flush()
                    del left[e]
                    record = stats.pop(e).record(e, executor.now() - started[e], server.version)
                    if e + 1 in started:
                        started[e + 1] = max(started[e + 1], executor.now())
                    await finish(record)
        while free(d) and (queue or (next_epoch < last and (not barrier or not left))):
            launch(d)
        if not executor.in_flight():
            for d2 in range(n_dev):
                while free(d2) and (queue or (next_epoch < last and not left)):
                    launch(d2)
    flush()
