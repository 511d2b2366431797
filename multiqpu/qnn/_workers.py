"""The devices of an executor as the workers of data-parallel training.

:class:`Workers` hands shards of samples to devices and turns what comes back into losses and
gradients, and learns from every finished shard how fast each device is:

* **throughput** (circuits per second of wall, or virtual, time, queue included): the share
  of a batch each device gets; unmeasured devices are assumed as fast as the mean of the
  measured ones;
* **time per circuit** (device time, the per-job overhead and queue waits excluded: the
  least of the device's last ``RECENT`` jobs, as a queue wait only ever adds to a job's
  span): with the job priors it sizes pipelined sync shards (:mod:`multiqpu.qnn._pipelined`),
  async shards and in-flight depths (:mod:`multiqpu.qnn._pipeline`);
* **quality** (``weighting="quality"``): each device's estimated fidelity for the model's
  circuits relative to the mean, which scales its gradients (EQC weighting).

It holds no weights: the parameter server (:mod:`multiqpu.qnn._aggregation`) does, and passes
them to :meth:`Workers.start` with their version.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from multiqpu.qnn._loss import Loss, loss_and_grad
from multiqpu.qnn._pipeline import Plan, plan
from multiqpu.qnn._privacy import clip_rows
from multiqpu.qnn._shards import assign
from multiqpu.qnn.model import Work

if TYPE_CHECKING:
    from multiqpu.qnn._epochs import EpochStats, Progress
    from multiqpu.qnn._executor import Completion, Executor
    from multiqpu.qnn.model import QNNModel

__all__ = ["FLOOR", "RECENT", "Workers"]

#: the device time per circuit is the least of a device's last RECENT jobs' (see learn),
#: but at least FLOOR x their average
RECENT = 5
FLOOR = 0.4


class Workers:
    """Shards on the devices of ``executor`` and what is learned about their speed."""

    def __init__(
        self,
        executor: Executor,
        model: QNNModel,
        loss: Loss,
        shots: int | None,
        weighting: str,
    ) -> None:
        self.executor = executor
        self.model = model
        self.loss = loss
        self.shots = shots
        self.weighting = weighting
        n = len(executor.names)
        self.throughput = np.ones(n)  # circuits per second (relative until measured)
        self.measured = np.zeros(n, dtype=bool)
        self.circuit_s = np.full(n, np.nan)  # device seconds per circuit, overhead excluded
        self._last_finish = np.full(n, -np.inf)
        self._recent: dict[int, list[float]] = {}  # the last RECENT jobs' device time
        self._mean_s = np.full(n, np.nan)  # their exponential average (queue waits included)
        self.turnaround = np.full(n, np.nan)  # seconds from a shard's start to its result
        self.plan: Plan | None = None  # the async plan last used
        self.quality: np.ndarray | None = None  # relative fidelity per device
        self.excluded = np.zeros(n, dtype=bool)  # quarantined: no more shards
        self.clip: float | None = None  # DP-SGD: per-sample gradient clip norm
        # per-sample placement (samples x devices, see _shards); None: any device
        self.allowed: np.ndarray | None = None
        # every live device the same share (robust aggregation: rows alike in variance)
        self.equal = False

    @property
    def count(self) -> int:
        return len(self.executor.names)

    @property
    def off(self) -> np.ndarray:
        """Devices that get no shards: quarantined (:attr:`excluded`) or lost for good."""
        off = self.excluded.copy()
        off[list(self.executor.lost_devices())] = True
        return off

    # ------------------------------------------------------------------ sizing
    def shares(self, n: int, idle: np.ndarray | None = None) -> np.ndarray:
        """Split n samples over the devices (the ``idle`` ones only, when given) in
        proportion to their throughput."""
        speed = np.ones(self.count) if self.equal else self.throughput
        tp = speed if idle is None else np.where(idle, speed, 0.0)
        off = self.off
        if off.any() and not off.all():  # quarantined or lost devices: none
            tp = np.where(off, 0.0, tp)
            if not tp.sum():
                tp = np.where(off, 0.0, speed)
        tp = tp / tp.sum()
        raw = tp * n
        share = np.floor(raw).astype(int)
        for d in np.argsort(-(raw - share))[: n - share.sum()]:
            share[d] += 1
        return share

    def split(self, batch: np.ndarray, shares: np.ndarray) -> list[np.ndarray]:
        """``batch`` split over the devices by ``shares``, every sample on a device its
        placement rule allows (:func:`multiqpu.qnn._shards.assign`)."""
        return assign(batch, shares, self.allowed, ~self.off)

    def replan(self, batch_size: int, max_staleness: int) -> Plan:
        """Async shard sizes and in-flight depths from what is measured so far (kept as
        :attr:`plan`)."""
        priors = [self.executor.job_prior(d) for d in range(self.count)]
        self.plan = plan(
            batch_size,
            self.throughput,
            self.circuit_s * self.model.circuits_per_sample,
            [o for o, _ in priors],
            [w for _, w in priors],
            self.executor.concurrency,
            max_staleness,
        )
        return self.plan

    def measure_quality(self, X: np.ndarray, weights: np.ndarray) -> None:
        """Each device's estimated fidelity for the model's circuits, relative to the mean."""
        work = self.model.work(X[:1], weights, gradients=False)
        q = np.asarray(self.executor.quality(work))
        self.quality = q / q.mean()

    def weight(self, devices: np.ndarray) -> np.ndarray:
        """The gradient weight of each device in ``devices`` (1 unless weighting by quality)."""
        if self.weighting == "quality" and self.quality is not None:
            return self.quality[devices]
        return np.ones(len(devices))

    def worth_starting(
        self,
        d: int,
        remaining: int,
        batch_size: int,
        max_staleness: int,
    ) -> bool:
        """Whether a new asynchronous shard on device ``d`` is worth starting, judged by its
        measured turnaround (start to result, queue included); unmeasured devices always are.

        * **Staleness**: not when the server would take more than ``max_staleness`` steps
          while it runs (the fleet's measured rate in samples per second over
          ``batch_size``): its gradient would be dropped on arrival.
        * **End game**: not when ``d`` is slow to return (turnaround over twice the
          median device's) and the devices that are not would work through the
          ``remaining`` samples not yet started before a shard on ``d`` came back, so a
          device with a long queue never holds the last step.
        """
        if np.isnan(self.turnaround[d]):
            return True
        per = max(self.model.circuits_per_sample, 1)
        if self.turnaround[d] * self.throughput.sum() / per / batch_size > max_staleness:
            return False
        known = self.turnaround[np.isfinite(self.turnaround)]
        fast = np.isfinite(self.turnaround) & (self.turnaround <= 2 * np.median(known))
        if fast[d] or not fast.any():
            return True
        rate = self.throughput[fast].sum() / per
        return bool(remaining > rate * self.turnaround[d])

    # ------------------------------------------------------------------ shards
    def start(
        self,
        d: int,
        X: np.ndarray,
        idx: np.ndarray,
        weights: np.ndarray,
        version: int,
        epochs: Any = None,
    ) -> None:
        """Hand samples ``idx`` (with their gradients) to device ``d`` on ``weights``
        (``epochs``: what the strategy tags the shard with, e.g. each sample's epoch)."""
        work = self.model.work(X[idx], weights, gradients=True)
        tag = (idx, version, weights.copy(), epochs)
        self.executor.start(d, work, self.shots, tag)

    def start_groups(
        self,
        d: int,
        X: np.ndarray,
        groups: list[tuple[Any, np.ndarray, np.ndarray]],
        version: int,
        key: int,
    ) -> np.ndarray:
        """One job on device ``d`` for several ``(label, samples, weights)`` groups, each on
        its own weights (the fused steps of :mod:`multiqpu.qnn._pipelined`); returns the
        job's samples (its tag's first element)."""
        works = [self.model.work(X[idx], w, gradients=True) for _, idx, w in groups]
        work = works[0] if len(works) == 1 else Work(
            works[0].templates, np.concatenate([w.template for w in works]),
            np.concatenate([w.values for w in works]))  # fmt: skip
        idx = np.concatenate([i for _, i, _ in groups])
        heads = [(h, len(i), w.copy()) for h, i, w in groups]
        self.executor.start(d, work, self.shots, (idx, version, heads[0][2], key, heads))
        return idx

    def absorb_groups(
        self, done: Completion, X: np.ndarray, y: np.ndarray, stats: EpochStats, bar: Progress
    ) -> list[tuple[Any, np.ndarray, int, np.ndarray]]:
        """:meth:`absorb` for each group of a job of :meth:`start_groups` (as a job of its
        own: its samples, weights and results): ``(label, mean gradient, samples,
        weights)`` per group; the device is learned from once, on the whole job."""
        idx_all, version, _, key, heads = done.tag
        per = len(done.results) // max(len(idx_all), 1)  # circuits per sample
        self.learn(done)
        ran = done.device if done.ran_on is None else done.ran_on  # (learned: not again)
        out, at = [], 0
        for label, n, w in heads:
            res = done.results
            if len(heads) > 1:
                cut = getattr(res, "rows", None)
                a, b = at * per, (at + n) * per
                res = cut(a, b) if cut else list(res[a:b])
            part = replace(done, tag=(idx_all[at : at + n], version, w, key), results=res,
                           ran_on=ran)  # fmt: skip
            g, m = self.absorb(part, X, y, stats, bar)
            out.append((label, g, m, w))
            at += n
        return out

    def absorb(
        self, done: Completion, X: np.ndarray, y: np.ndarray, stats: EpochStats, bar: Progress
    ) -> tuple[np.ndarray, int]:
        """The mean gradient of a finished shard and its size; tallies it in ``stats``."""
        idx, _, weights, _ = done.tag
        out = self.model.outputs(X[idx], weights, done.results, gradients=True)
        loss, grad, correct = loss_and_grad(self.loss, out.f, y[idx], out.jac)
        if self.clip is not None:  # DP-SGD: every sample's gradient clipped before the sum
            grad = clip_rows(grad, self.clip)
        self.learn(done)
        ran = done.device if done.ran_on is None else done.ran_on
        stats.add(ran, len(idx), float(loss.sum()), int(correct.sum()), len(done.results))
        bar.advance(ran, len(idx))
        return grad.mean(axis=0), len(idx)

    def absorb_split(
        self, done: Completion, X: np.ndarray, y: np.ndarray, bar: Progress
    ) -> dict[Any, Any]:
        """Like :meth:`absorb`, with the bookkeeping split by the epoch of each sample:
        ``{"grad": per-sample gradients, epoch: (samples, loss, correct, circuits)}``."""
        idx, _, weights, epochs = done.tag
        out = self.model.outputs(X[idx], weights, done.results, gradients=True)
        loss, grad, correct = loss_and_grad(self.loss, out.f, y[idx], out.jac)
        self.learn(done)
        bar.advance(done.device if done.ran_on is None else done.ran_on, len(idx))
        per: dict[Any, Any] = {"grad": grad}  # one row per sample
        per_circuit = len(done.results) / len(idx)
        for e in np.unique(epochs):
            mask = epochs == e
            per[int(e)] = (int(mask.sum()), float(loss[mask].sum()), int(correct[mask].sum()),
                           round(per_circuit * mask.sum()))  # fmt: skip
        return per

    def learn(self, done: Completion) -> None:
        """Throughput: circuits per second of wall (or virtual) time, queue included."""
        if done.ran_on is not None:  # a lost device's shard, run elsewhere: timed by neither
            return
        d = done.device
        # device time of this job: from when it could start (submitted, or the device's
        # previous job finished) to its end, less the per-job overhead, per circuit
        # (a job learned after a later one of its device, e.g. a late shard absorbed a step
        # late: that later job's span covered both, so this one adds nothing)
        if done.finished >= self._last_finish[d]:
            service = done.finished - max(done.submitted, self._last_finish[d])
            self._last_finish[d] = done.finished
            overhead = self.executor.job_prior(d)[0]
            per = max(service - overhead, 0.1 * service) / max(len(done.results), 1)
            # a queue wait only ever adds to that (whenever the device's lane ran dry before
            # the job was ready: on a long-queue device, most jobs), so the device time is the
            # lower envelope of its recent jobs, not their mean (which learned queue waits);
            # but not under FLOOR x that mean: on a device that runs jobs side by side (a
            # local simulator) spans overlap, and their lower envelope is near nothing
            recent = self._recent.setdefault(d, [])
            recent.append(per)
            del recent[:-RECENT]
            old = self._mean_s[d]
            self._mean_s[d] = per if np.isnan(old) else 0.7 * old + 0.3 * per
            self.circuit_s[d] = max(min(recent), FLOOR * self._mean_s[d])
        spent = done.finished - done.submitted
        old_t = self.turnaround[d]
        self.turnaround[d] = spent if np.isnan(old_t) else 0.7 * old_t + 0.3 * spent
        rate = len(done.results) / max(spent, 1e-9)
        if self.measured[d]:
            self.throughput[d] = 0.7 * self.throughput[d] + 0.3 * rate
        else:
            self.throughput[d] = rate
            self.measured[d] = True
            if not self.measured.all():  # unmeasured devices: assume the mean of the known
                known = self.throughput[self.measured].mean()
                self.throughput[~self.measured] = known

    async def forward(
        self, X: np.ndarray, weights: np.ndarray, allowed: np.ndarray | None = None
    ) -> np.ndarray:
        """Outputs for X on ``weights``, shards spread over the devices by throughput
        (each sample on a device ``allowed`` allows, when given)."""
        split = assign(np.arange(len(X)), self.shares(len(X)), allowed, ~self.off)
        parts: dict[int, tuple[np.ndarray, Completion]] = {}
        for d, idx in enumerate(split):
            if len(idx):
                work = self.model.work(X[idx], weights, gradients=False)
                self.executor.start(d, work, self.shots, (idx, d))
        while self.executor.in_flight():
            done = await self.executor.next()
            self.learn(done)
            parts[done.device] = (done.tag[0], done)
        f = np.zeros((len(X), self.model.num_outputs))
        for idx, done in parts.values():
            f[idx] = self.model.outputs(X[idx], weights, done.results, gradients=False).f
        return f
