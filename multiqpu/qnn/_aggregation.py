"""The trainer's aggregation strategies and the parameter server they step.

* :func:`sync_epoch`: every mini-batch is split over the devices in proportion to their
  measured throughput and one optimizer step uses the aggregate of their gradients. With
  ``backup=b`` the step proceeds once the fastest ``N - b`` shards of the batch are in
  (backup workers, Chen et al. 2016); the late shards are not wasted: their gradients are
  carried over into the next step (one or more versions stale, scaled or compensated like
  asynchronous gradients); a device still running two shards gets no new one until one is
  back (the batch goes to the others), so no device falls more than a step behind.
* :func:`async_epochs`: no barrier. Every device keeps several shards in flight and starts a
  new shard on the newest weights as soon as one finishes; the server steps whenever finished
  shards cover ``batch_size`` samples (K-async), on exactly ``batch_size`` of them. A gradient
  computed on weights more than ``max_staleness`` updates old is dropped and its shard
  recomputed (bounded staleness); fresher stale gradients are corrected by the
  ``staleness`` rule (:func:`correct_stale`).
* local-update training (QUDIO): :mod:`multiqpu.qnn._local`.

Aggregation across devices is one pluggable function, :data:`Aggregator`: it takes the
gradients of a step (one row per sample or per shard) and their weights and returns the
gradient to apply. :func:`weighted_mean` is the default; a robust aggregator (median,
trimmed mean) or a privatising one replaces it without touching the strategies.

See :mod:`multiqpu.qnn.trainer` for the full rules; all work on :class:`~multiqpu.qnn.
_workers.Workers` (the devices) and a :class:`ParameterServer` (the weights).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import numpy as np

from multiqpu.qnn._epochs import EpochStats, Progress
from multiqpu.qnn._robust import combine

if TYPE_CHECKING:
    from multiqpu.qnn._optim import Optimizer
    from multiqpu.qnn._workers import Workers
    from multiqpu.qnn.history import EpochRecord

__all__ = [
    "COMPENSATION",
    "Aggregator",
    "ParameterServer",
    "async_epochs",
    "correct_stale",
    "drain_late",
    "sync_epoch",
    "weighted_mean",
]

#: gradients (m, P) and their weights (m,) -> the gradient to apply (P,)
Aggregator = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: lambda of the delay compensation g + lambda g*g*(w_now - w_then) (DC-ASGD's default)
COMPENSATION = 0.04


def weighted_mean(grads: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The default aggregator: the weighted mean of the rows."""
    w = np.asarray(weights, dtype=float)
    return np.tensordot(w / w.sum(), grads, axes=1)


def correct_stale(
    rule: str, grads: np.ndarray, staleness: np.ndarray, then: np.ndarray, now: np.ndarray
) -> tuple[np.ndarray, float]:
    """Apply the staleness rule to per-row gradients computed on weights ``then`` (one row
    of weights per gradient row) and used on ``now``: returns the gradients and the factor
    the step is scaled by.

    * ``"scale"``: the step is divided by the mean staleness of its samples when that is
      above 1 (staleness-aware asynchronous SGD, Zhang et al. IJCAI'16: a gradient ``tau``
      versions old moves the weights ``1/tau`` as far);
    * ``"compensate"``: each gradient gets the first-order delay correction
      ``g + lambda g*g*(w_now - w_then)`` (DC-ASGD, Zheng et al. ICML'17);
    * ``"none"``: used as they are.
    """
    if rule == "scale":
        return grads, 1.0 / max(1.0, float(np.mean(staleness)))
    if rule == "compensate":
        return grads + COMPENSATION * grads * grads * (now[None, :] - then), 1.0
    return grads, 1.0


class ParameterServer:
    """The weights, their version (the number of optimizer steps taken) and the optimizer."""

    def __init__(self, weights: np.ndarray, optimizer: Optimizer) -> None:
        self.weights = weights
        self.optimizer = optimizer
        self.version = 0
        #: the last change of the weights weight prediction extrapolates (pipelined sync
        #: keeps it here, so a checkpoint carries it over a resume)
        self.delta = np.zeros_like(weights)

    def step(self, grad: np.ndarray, factor: float = 1.0) -> None:
        """One optimizer step; ``factor`` scales the step the optimizer takes (not the
        gradient: Adam would undo that)."""
        new = self.optimizer.step(self.weights, grad)
        self.weights = new if factor == 1.0 else self.weights + factor * (new - self.weights)
        self.version += 1


def _apply(
    server: ParameterServer,
    parts: tuple[list[np.ndarray], ...],
    rule: str,
    aggregator: Aggregator,
    stats: EpochStats | None,
) -> None:
    """One step on ``parts`` = (gradient rows, their weights, the versions and weights they
    were taken at, the samples each row stands for: for the staleness tally[, the device of
    each row: for the outlier tally[, the versions each row was aimed ahead by design,
    which the staleness rule does not count]])."""
    grads, weights, versions, thens, counts = parts[:5]
    devices = np.concatenate(parts[5]) if len(parts) > 5 else None
    # the versions a row's weights were aimed ahead by design (fused steps), not stale
    planned = np.concatenate(parts[6]) if len(parts) > 6 else 0
    g = np.concatenate(grads)
    wt = np.concatenate(weights)
    tau = server.version - np.concatenate(versions)
    then = np.concatenate(thens)
    if stats is not None:
        stats.stale(np.repeat(tau, np.concatenate(counts)))
    g, factor = correct_stale(rule, g, tau - planned, then, server.weights)
    agg = aggregator(g, wt) if devices is None else combine(aggregator, g, wt, devices)
    server.step(agg, factor)


async def sync_epoch(
    workers: Workers,
    server: ParameterServer,
    X: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    batch_size: int,
    stats: EpochStats,
    bar: Progress,
    *,
    backup: int = 0,
    staleness: str = "scale",
    aggregator: Aggregator = weighted_mean,
    drain: bool = True,
) -> None:
    """One epoch over ``order`` in mini-batches, a barrier after each: on every shard of
    the batch, or (``backup=b``) on the fastest ``N - b`` of them, shards still running
    being folded into a later step (and all of them into a last step when ``drain``)."""
    executor = workers.executor
    busy = np.zeros(workers.count, dtype=int)  # late shards still running, per device
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        idle = busy < 2
        shares = workers.shares(len(batch), idle if idle.any() else None)
        started = 0
        for d, idx in enumerate(workers.split(batch, shares)):
            if len(idx):
                workers.start(d, X, idx, server.weights, server.version)
                started += 1
                busy[d] += 1
        need, fresh = max(1, started - backup), 0
        parts: tuple[list[np.ndarray], ...] = ([], [], [], [], [], [])
        while fresh < need:
            done = await executor.next()
            fresh += int(done.tag[1] == server.version)
            busy[done.device] -= 1
            _collect(workers, done, X, y, stats, bar, parts)
        _apply(server, parts, staleness, aggregator, stats)
    if drain:
        await drain_late(workers, server, X, y, stats, bar, staleness, aggregator)


def _collect(
    workers: Workers,
    done: object,
    X: np.ndarray,
    y: np.ndarray,
    stats: EpochStats,
    bar: Progress,
    parts: tuple[list[np.ndarray], ...],
) -> None:
    """Absorb a finished sync shard into the step being gathered (one row per shard)."""
    g, n = workers.absorb(done, X, y, stats, bar)  # type: ignore[arg-type]
    version, then = done.tag[1], done.tag[2]  # type: ignore[attr-defined]
    d = ran_by(done)
    parts[0].append(g[None, :])
    parts[1].append(np.array([n * float(workers.weight(np.array([d]))[0])]))
    parts[2].append(np.array([version]))
    parts[3].append(then[None, :])
    parts[4].append(np.array([n]))
    parts[5].append(np.array([d]))


def ran_by(done: object) -> int:
    """The device whose gradient a finished shard holds: the one that ran it (a lost
    device's shard is moved, ``Completion.ran_on``), for its weight and the outlier tally."""
    ran = done.ran_on  # type: ignore[attr-defined]
    return done.device if ran is None else int(ran)  # type: ignore[attr-defined]


async def drain_late(
    workers: Workers,
    server: ParameterServer,
    X: np.ndarray,
    y: np.ndarray,
    stats: EpochStats,
    bar: Progress,
    staleness: str = "scale",
    aggregator: Aggregator = weighted_mean,
) -> None:
    """Await the shards still running (backup workers' late shards) and use them in one
    more step, so that no sample of the epoch is lost."""
    parts: tuple[list[np.ndarray], ...] = ([], [], [], [], [], [])
    while workers.executor.in_flight():
        _collect(workers, await workers.executor.next(), X, y, stats, bar, parts)
    if parts[0]:
        _apply(server, parts, staleness, aggregator, stats)


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
    staleness: str = "scale",
    aggregator: Aggregator = weighted_mean,
) -> None:
    """Epochs ``first..last-1`` without a barrier between them (unless ``barrier``: then
    each epoch drains before the next starts, e.g. to validate on the fleet)."""
    executor = workers.executor
    n_dev = workers.count
    queue: deque[tuple[int, int]] = deque()  # (epoch, sample)
    inflight = [0] * n_dev

    def free(d: int) -> bool:
        if workers.off[d]:
            return False
        if inflight[d] >= workers.replan(batch_size, max_staleness).depths[d]:
            return False
        remaining = len(queue) + (last - next_epoch) * len(X)
        return not executor.in_flight() or workers.worth_starting(
            d, remaining, batch_size, max_staleness
        )

    # accepted per-sample gradients, their weight, the version and weights they were taken at
    pending: list[tuple[np.ndarray, float, int, np.ndarray]] = []
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
        parts: tuple[list[np.ndarray], ...] = ([], [], [], [], [])
        keep: list[tuple[np.ndarray, float, int, np.ndarray]] = []
        room = batch_size if full else len(X) * (last + 1)
        for g, w, v, then in pending:
            forced = server.version + 1 - v > max_staleness
            k = len(g) if forced else max(0, min(room, len(g)))
            parts[0].append(g[:k])
            parts[1].append(np.full(k, w))
            parts[2].append(np.full(k, v))
            parts[3].append(np.broadcast_to(then, (k, len(then))))
            parts[4].append(np.ones(k, dtype=int))
            room -= k
            if k < len(g):
                keep.append((g[k:], w, v, then))
        _apply(server, parts, staleness, aggregator, stats[min(stats)] if stats else None)
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
            ran = ran_by(done)
            pending.append((g, float(workers.weight(np.array([ran]))[0]), int(done.tag[1]),
                            done.tag[2]))  # fmt: skip
            while sum(len(p[0]) for p in pending) >= batch_size:
                flush(full=True)
            for e, (k, loss, correct, circuits) in per.items():
                stats[e].add(ran, k, loss, correct, circuits)
                left[e] -= k
            for e in sorted(e for e, k in left.items() if k == 0):
                if e == min(left):  # epochs complete in order
                    flush()
                    del left[e]
                    record = stats.pop(e).record(e, executor.now() - started[e], server.version)
                    if e + 1 in started:
                        started[e + 1] = max(started[e + 1], executor.now())
                    await finish(record)
        for d2 in (d, *range(n_dev)):  # this device first, then any other one left idle
            while free(d2) and (queue or (next_epoch < last and (not barrier or not left))):
                launch(d2)
        if not executor.in_flight():
            for d2 in range(n_dev):
                while free(d2) and (queue or (next_epoch < last and not left)):
                    launch(d2)
    flush()
