"""Pipelined synchronous training: every step a barrier, but the next batch's shards already
queued behind the running ones, so that queue waits overlap with the devices' work.

Where the time of plain synchronous training goes (measured on the benchmark's fleets,
docs/performance.md): every step pays, on top of its share of the batch, one per-job
overhead (3-18 s) and one queue wait per device, and waits for the slowest of them; with
8-16 devices the batch share of a device is 35-70 s of work, so these fixed costs are
25-45 % of a step. This loop keeps ``ahead`` batches in flight beyond the one the next step
needs (``ahead=1``: two shards per device, the second queued while the first runs):

* **Staleness exactly ``ahead``**: batch ``t + ahead`` is launched on the weights of step
  ``t``, so every gradient is ``ahead`` versions old when applied (one with ``ahead=1``),
  a fixed, stated bound that the ``staleness`` rule corrects (``"scale"`` leaves a step of
  staleness 1 unscaled).
* **Shards sized by device time, overhead included**: a batch is split so that every
  device's ``overhead_d + samples_d * sample_s_d`` is the same (water-filling on the
  measured time per sample, overhead excluded, and the per-job overhead), rounded to whole
  samples by error diffusion (a device's rounding residue is carried to its next shard),
  so no device is always the one rounded up; the pipeline absorbs the one-step imbalance.
* **Devices too slow to return in time are left out**: a device whose measured turnaround
  (submission to result) is over ``LATE`` times the median device's, or, before it is
  measured, whose 90 % queue-wait prior is over ``LATE`` times the median prior, gets no
  shard: it would hold every barrier.
* **Devices whose queue wait one running shard does not cover get their shards a batch
  early**: when a device's 90 % queue-wait prior is over ``EARLY`` times a shard's device
  time (the water level of a batch over every live device), its share of batch
  ``t + ahead + 1`` is launched with batch ``t + ahead`` (a third shard in flight, within
  its job cap), aimed at the weights predicted ``ahead + 1`` steps on; the rest of that
  batch is split over the other devices a step later. Its queue wait then
  passes behind two running shards instead of one; its gradients are ``ahead + 1``
  versions old. (The device time per sample it is judged on excludes queue waits:
  :meth:`multiqpu.qnn._workers.Workers.learn`.)
* ``backup=b`` (backup workers) also applies: a step proceeds once all but ``b`` shards of
  its batch are in; late shards are folded into the step they arrive before, and a step
  waits for the late shards of batches stepped ``LATE_STEPS`` (2) or more steps before, so
  no gradient is more than ``ahead + LATE_STEPS`` versions old (one more for an early
  shard). (``LATE_STEPS`` 1 waited for every late shard at the next step: 11.97x against
  12.07x at 16 devices on the development seeds 10-39, with weight prediction.)
* **A late shard stuck in a long queue is dropped**: a device runs its jobs in order, so a
  shard that drew a long queue wait (a lognormal tail: 250-300 s against 20-25 s medians
  on the benchmark's idle-tier Braket devices) holds that device's next shards too, and
  the step that waits for it (above) stalls every other device. When the only shards a
  step still waits for beyond its backup are on devices that hold such a late shard, the
  late shards are dropped: their samples join the next batch launched (so no sample is
  lost and no gradient gets older), and their results are discarded when they come
  (a job cannot be cancelled; the end of training still waits for it). Only when the
  pipeline carries across epochs (otherwise the next epoch's order is not drawn early).
* **Fused steps** (``FUSE`` = 2): one job a device carries a fixed overhead (3-18 s on
  the benchmark's fleets against 35-70 s of work at 16 devices: 15 % of their time), so
  when a batch gives every live device ``FUSE_MIN`` (2) samples or more, two consecutive
  batches of an epoch are launched together, each device's job holding its share of both,
  each part on the weights predicted for its own step; both steps are taken when the
  shards are in. Fused parts are 2-3 versions old (the tally counts them); the staleness
  rule does not count the steps a part was aimed ahead by design. Late shards join the
  first step of the next pair; ``LATE_STEPS`` counts pairs. (Measured, docs/qnn.md round
  7: +0.6 at 16 devices, gap unchanged or better; on batches of one sample a device,
  the Ising task at 8, fusing cost 0.04 of accuracy, so those are not fused.)
* ``extrapolate=True`` (**weight prediction**, as SpecTrain does for pipelined model
  parallelism, Chen et al. 2018, arXiv 1809.02839): a batch launched on version ``t`` is
  applied in step ``t + ahead``, so its shards are launched on the weights extrapolated by
  the last step's change, ``w_t + ahead * (w_t - w_(t-1))``, a first-order guess of the
  weights the step will move; with Adam's momentum that guess is close, and the gradient
  is taken near the point it is applied to. Versions and the staleness tally are unchanged
  (the shard still belongs to version ``t``); ``"compensate"`` corrects from the predicted
  weights, the ones the gradient was taken at.

Epoch records: a batch's samples are tallied in the epoch they belong to when its step is
taken (late shards in the epoch that absorbs them). With ``carry`` the pipeline runs across
epoch boundaries (the next epoch's first batches are launched while the last ones of this
epoch run); otherwise it drains at the end of every epoch (validation, checkpoints and the
privacy budget see the weights of a finished epoch).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from multiqpu.qnn._aggregation import (
    Aggregator,
    ParameterServer,
    _apply,
    ran_by,
    weighted_mean,
)
from multiqpu.qnn._epochs import EpochStats, Progress
from multiqpu.qnn._shares import costs, divide, split, water_fill

if TYPE_CHECKING:
    from multiqpu.qnn._executor import Completion
    from multiqpu.qnn._workers import Workers

__all__ = ["EARLY", "FUSE", "FUSE_MIN", "LATE", "LATE_STEPS", "pipelined_sync"]

#: a device is left out when its turnaround (or prior queue wait) is over LATE x the median
#: (chosen on the benchmark's development seeds: 2.5 left out idle-tier Braket devices whose
#: queues the pipeline and backup workers absorb; 6 keeps them and drops moderate tiers)
LATE = 6.0

#: a device whose 90 % queue wait is over EARLY x a shard's device time gets its shards one
#: batch early: one running shard does not cover its next shard's queue wait (inf: never)
EARLY = 1.0

#: a step waits for the late shards of the batches stepped LATE_STEPS or more steps before
LATE_STEPS = 2

#: consecutive batches of an epoch whose shards a device runs as one job (one per-job
#: overhead for FUSE steps), each part on the weights predicted for its own step
FUSE = 2

#: ...only when a batch gives every live device FUSE_MIN samples or more on average
FUSE_MIN = 2


@dataclass
class _Batch:
    epoch: int
    idx: np.ndarray
    last: bool  # the last batch of its epoch
    key: int = 0  # a serial number (the shards' tag; ids of freed objects are reused)
    started: int = 0  # shards launched
    arrived: int = 0
    results: list[Completion] = field(default_factory=list)
    given: set[int] = field(default_factory=set)  # devices holding a shard of it
    pending: list[np.ndarray] | None = None  # per step: samples not yet launched
    steps: list[np.ndarray] = field(default_factory=list)  # the samples of each step it holds


async def pipelined_sync(
    workers: Workers,
    server: ParameterServer,
    X: np.ndarray,
    y: np.ndarray,
    orders: Iterator[tuple[int, np.ndarray]],
    batch_size: int,
    finish: Callable[[int, EpochStats, float], Awaitable[None]],
    bar: Progress,
    *,
    ahead: int = 1,
    backup: int = 0,
    carry: bool = True,
    staleness: str = "scale",
    aggregator: Aggregator = weighted_mean,
    extrapolate: bool = False,
    fuse: int | None = None,
) -> None:
    """Train over the epochs ``orders`` yields ((epoch, sample order) pairs, pulled lazily),
    calling ``finish(epoch, stats, seconds)`` after each epoch's last step."""
    executor = workers.executor
    n_dev = workers.count
    outstanding = np.zeros(n_dev, dtype=int)
    cap = np.maximum(np.asarray(executor.concurrency, dtype=int), 1)
    residual = np.zeros(n_dev)
    flight: list[_Batch] = []  # launched batches whose step is not taken, in order
    late: list[Completion] = []  # shards of batches already stepped
    stats: dict[int, EpochStats] = {}
    began: dict[int, float] = {}
    feed = _batches(orders, batch_size)
    peeked: list[tuple[int, np.ndarray, bool]] = []  # a batch pulled early (see upcoming)
    stalled = False  # not carrying: the next epoch waits for this one to finish
    requeued: list[np.ndarray] = []  # samples of dropped late shards, for the next batch
    delta = server.delta.copy()  # the last step's change of the weights (0 at the start)
    serial = itertools.count(1)
    fuse = max(1, FUSE if fuse is None else fuse)
    stepped = 0  # fused steps taken (late shards are counted in these)

    def pull() -> _Batch | None:
        nonlocal stalled
        if stalled:
            return None
        nxt = peeked.pop() if peeked else next(feed, None)
        if nxt is None:
            return None
        epoch, idx, last = nxt
        steps = [idx]
        width = fuse if batch_size >= FUSE_MIN * int(_active(workers).sum()) else 1
        while len(steps) < width and not last:  # within an epoch
            more = next(feed, None)
            if more is None:
                break
            steps.append(more[1])
            last = more[2]
        if requeued:
            steps[0] = np.concatenate([*requeued, steps[0]])
            requeued.clear()
        batch = _Batch(epoch, np.concatenate(steps), last, key=next(serial), steps=steps)
        if batch.epoch not in stats:
            stats[batch.epoch] = EpochStats(n_dev)
            began[batch.epoch] = executor.now()
        batch.pending = list(steps)
        stalled = batch.last and not carry
        return batch

    group = np.zeros(n_dev, dtype=int)
    grouped: tuple[bytes, bytes] | None = None
    launched = 0
    waits = np.array([executor.job_prior(d)[1] for d in range(n_dev)])

    def send(batch: _Batch, d: int, parts: list[np.ndarray]) -> None:
        # weight prediction: the step the gradient of part ``h`` is applied in comes after
        # the steps of the ``k`` batches in flight before this one and ``h`` of its own, so
        # aim at where the weights will be by then (the last change, extrapolated); the
        # steps beyond ``k`` (fused batches) are by design, not staleness
        k = next(i for i, b in enumerate(flight) if b is batch)
        before = sum(len(b.steps) for b in flight[:k])
        groups = []
        for h, part in enumerate(parts):
            if len(part):
                ahead_h = before + h
                aim = server.weights + ahead_h * delta if extrapolate else server.weights
                groups.append(((h, ahead_h - k), part, aim))
        if not groups:
            return
        idx = workers.start_groups(d, X, groups, server.version, batch.key)
        running[id(idx)] = (idx, batch.key, d)
        batch.started += 1
        batch.given.add(d)
        outstanding[d] += 1

    def divided(batch: _Batch, shares: np.ndarray) -> list[list[np.ndarray]]:
        """Each device's share of every step of ``batch`` still pending ([device][step])."""
        assert batch.pending is not None
        each = divide(shares, [len(p) for p in batch.pending])
        per = [workers.split(p, s) for p, s in zip(batch.pending, each, strict=True)]
        return [[per[h][d] for h in range(len(per))] for d in range(n_dev)]

    def launch(batch: _Batch) -> None:
        """Every sample of ``batch`` not yet launched, water-filled over the devices."""
        nonlocal grouped, launched
        assert batch.pending is not None
        live = _active(workers)
        key = (live.tobytes(), np.isfinite(workers.circuit_s).tobytes())
        if ahead > 1 and key != grouped:  # regroup when the devices or what is known change
            group[:] = _groups(workers, live, ahead)
            grouped = key
        turn = group == launched % ahead
        launched += 1
        room = (outstanding <= ahead) & (outstanding < cap)  # within each device's job cap
        fresh = np.ones(n_dev, dtype=bool)
        fresh[list(batch.given)] = False  # devices that hold an early shard of it
        active = live & turn & room & fresh
        if not active.any():
            active = live & room & fresh
        if not active.any():
            active = live & room
        if not active.any():
            active = outstanding == outstanding.min()
        shares = split(workers, sum(len(p) for p in batch.pending), active, residual)
        # contiguous slices, or, under per-sample placement rules, every sample on a device
        # its rule allows (multiqpu.qnn._shards.assign)
        for d, parts in enumerate(divided(batch, shares)):
            send(batch, d, parts)
        batch.pending = None

    def launch_early(batch: _Batch) -> None:
        """The shards of ``batch`` for the devices whose queue wait one running shard does
        not cover (90 % queue wait over EARLY x a shard's device time), one step before
        the rest of the batch: their share of a water-fill over every device."""
        assert batch.pending is not None
        live = _active(workers)
        per, over = costs(workers)
        n = sum(len(p) for p in batch.pending)
        x = water_fill(n, per[live], over[live])  # every live device's
        level = float(np.max(over[live] + x * per[live]))  # a shard's device time
        deep = live & np.isfinite(workers.circuit_s) & (waits > EARLY * level)
        room = (outstanding <= ahead + 1) & (outstanding < cap)
        if not (deep & room).any():
            return
        kept = residual.copy()
        shares = split(workers, n, live & (room | ~deep), residual)
        residual[~deep] = kept[~deep]  # the others are split again with the rest
        rest: list[list[np.ndarray]] = [[p[:0]] for p in batch.pending]
        for d, parts in enumerate(divided(batch, shares)):
            if deep[d] and room[d]:
                send(batch, d, parts)
            else:
                for h, part in enumerate(parts):
                    rest[h].append(part)
        batch.pending = [np.concatenate(r) for r in rest]

    running: dict[int, tuple[np.ndarray, int, int]] = {}  # shards out: samples, batch, device
    dropped: set[int] = set()  # late shards whose samples went back into the feed

    def upcoming() -> bool:
        """Whether a later batch will be launched (carrying across epochs only: otherwise
        the next epoch's order is not drawn before this one is finished)."""
        if not carry:
            return False
        if not peeked:
            nxt = next(feed, None)
            if nxt is None:
                return False
            peeked.append(nxt)
        return True

    def held(batch_key: int) -> bool:
        """Whether every device that still owes a shard of batch ``batch_key`` also still
        owes a late shard (its lane is stuck behind that one: a long queue draw), and there
        is a later batch to take the late shards' samples."""
        if not upcoming():
            return False
        owing = {d for _, b, d in running.values() if b == batch_key}
        return owing <= {d for _, b, d in running.values() if b in behind}

    def requeue() -> None:
        """Drop the late shards still out: their samples join the next batch."""
        for key, (part, batch_key, _) in running.items():
            if batch_key in behind:
                dropped.add(key)
                requeued.append(part)
        behind.clear()

    behind: dict[int, int] = {}  # stepped batches' shards still running, by batch
    late_at: dict[int, int] = {}  # the version at which each batch in behind was stepped

    def overdue() -> bool:
        return any(stepped - late_at[k] >= LATE_STEPS for k in behind)

    def take(done: Completion) -> None:
        outstanding[done.device] -= 1
        key = id(done.tag[0])
        running.pop(key, None)
        if key in dropped:  # its samples were sent again with a later batch
            dropped.discard(key)
            return
        for b in flight:
            if b.key == done.tag[3]:
                b.results.append(done)
                b.arrived += 1
                return
        late.append(done)
        behind[done.tag[3]] -= 1
        if not behind[done.tag[3]]:
            del behind[done.tag[3]]

    while True:
        while len(flight) <= ahead:
            batch = pull()
            if batch is None:
                break
            flight.append(batch)
        for batch in flight[: ahead + 1]:
            if batch.pending is not None and any(len(p) for p in batch.pending):
                launch(batch)
        if len(flight) == ahead + 1 and np.isfinite(workers.circuit_s).any():
            batch = pull()  # the devices with long queue waits get it a step early
            if batch is not None:
                flight.append(batch)
                launch_early(batch)
        if not flight:
            break
        current = flight[0]
        need = max(1, current.started - backup)
        while current.arrived < need or overdue():  # late shards: at most LATE_STEPS late
            if current.arrived >= need and overdue() and held(current.key):
                requeue()  # only devices holding a late shard hold the step: drop those
                break
            take(await executor.next())
        flight.pop(0)
        if current.arrived < current.started:
            behind[current.key] = current.started - current.arrived
            late_at[current.key] = stepped
        stepped += 1
        tally = stats[current.epoch]
        steps = [_parts() for _ in current.steps]
        for done in current.results:
            _gather(workers, done, X, y, tally, bar, steps)
        for done in late:  # late shards join the first step
            _gather(workers, done, X, y, tally, bar, steps[:1])
        late.clear()
        for parts in steps:
            if parts[0]:  # (a step whose every shard is late is not taken)
                before = server.weights.copy()
                _apply(server, parts, staleness, aggregator, tally)
                delta = server.delta = server.weights - before
        if current.last:
            if not carry or not flight:  # drain the late shards into this epoch's last step
                await _drain(workers, X, y, tally, bar, server, staleness, aggregator, take,
                             late)  # fmt: skip
            await finish(current.epoch, stats.pop(current.epoch),
                         executor.now() - began.pop(current.epoch))  # fmt: skip
            stalled = False


async def _drain(
    workers: Workers,
    X: np.ndarray,
    y: np.ndarray,
    stats: EpochStats,
    bar: Progress,
    server: ParameterServer,
    staleness: str,
    aggregator: Aggregator,
    take: Callable[[Completion], None],
    late: list[Completion],
) -> None:
    while workers.executor.in_flight():
        take(await workers.executor.next())
    if late:
        parts = _parts()
        for done in late:
            _gather(workers, done, X, y, stats, bar, [parts])
        late.clear()
        _apply(server, parts, staleness, aggregator, stats)


def _parts() -> tuple[list[np.ndarray], ...]:
    """The rows of one step: gradients, weights, versions, weights taken at, samples,
    devices, versions aimed ahead by design (:func:`multiqpu.qnn._aggregation._apply`)."""
    return ([], [], [], [], [], [], [])


def _gather(
    workers: Workers,
    done: Completion,
    X: np.ndarray,
    y: np.ndarray,
    stats: EpochStats,
    bar: Progress,
    steps: list[tuple[list[np.ndarray], ...]],
) -> None:
    """A finished shard's rows (one per step it holds a part of) into ``steps`` (a part
    of a later step than ``steps`` holds goes to the last)."""
    d, version = ran_by(done), done.tag[1]
    weight = float(workers.weight(np.array([d]))[0])
    for (h, planned), g, n, then in workers.absorb_groups(done, X, y, stats, bar):
        parts = steps[min(h, len(steps) - 1)]
        for k, row in enumerate((g[None, :], [n * weight], [version], then[None, :], [n], [d],
                                 [planned])):  # fmt: skip
            parts[k].append(np.asarray(row))


def _batches(
    orders: Iterator[tuple[int, np.ndarray]], batch_size: int
) -> Iterator[tuple[int, np.ndarray, bool]]:
    for epoch, order in orders:
        for start in range(0, len(order), batch_size):
            yield epoch, order[start : start + batch_size], start + batch_size >= len(order)


def _active(workers: Workers) -> np.ndarray:
    """Devices that return in time (see the module docstring)."""
    ex = workers.executor
    off = workers.off
    out = ~off if not off.all() else np.ones(workers.count, bool)
    turn = workers.turnaround
    known = np.isfinite(turn)
    if known.sum() >= 2:
        out &= ~(known & (turn > LATE * float(np.median(turn[known]))))
    prior = np.array([ex.job_prior(d)[1] for d in range(workers.count)])
    if (prior > 0).any():
        out &= known | (prior <= LATE * float(np.median(prior)))
    return out


def _groups(workers: Workers, live: np.ndarray, count: int) -> np.ndarray:
    """``count`` groups of the devices with about equal total speed (largest first, each
    to the slowest group so far); devices left out go to group 0."""
    per = workers.circuit_s
    known = np.isfinite(per) & (per > 0)
    speed = np.where(known, 1.0 / np.where(known, per, 1.0), 0.0)
    speed = np.where(known, speed, float(np.median(speed[known])) if known.any() else 1.0)
    out = np.zeros(workers.count, dtype=int)
    load = np.zeros(count)
    for d in sorted(np.flatnonzero(live), key=lambda d: -speed[d]):
        g = int(np.argmin(load))
        out[d] = g
        load[g] += speed[d]
    return out
