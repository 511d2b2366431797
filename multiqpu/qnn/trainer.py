"""Data-parallel training of a :class:`~multiqpu.qnn.QNNModel` over a fleet.

Each device of the fleet is a worker. A shard of the data goes to one device, which runs the
shard's forward circuits and all their parameter-shift circuits in one go; the trainer turns
the results into the shard's loss and gradient and aggregates:

* ``aggregation="sync"``: every mini-batch is split over the devices in proportion to each
  device's measured throughput (circuits per second, learned from its finished shards), all
  shards are awaited, and one optimizer step uses their weighted mean gradient.
* ``aggregation="async"``: no barrier. Every device keeps several shards in flight (hiding
  its queue wait) and starts a new shard on the newest weights as soon as one finishes. The
  parameter server steps as soon as finished shards cover ``batch_size`` samples (the
  K-async rule: whichever devices are done first) on exactly ``batch_size`` of them, the
  rest waiting for the next step, so the number of updates per epoch is the same as with
  one device. A gradient computed on weights more than ``max_staleness``
  updates old is dropped and its shard recomputed (bounded staleness). Shard size and
  in-flight depth follow the rules of :mod:`multiqpu.qnn._pipeline`: the device's
  throughput share of a batch, grown until the per-job overhead is at most 15 % of the
  shard's measured run time; ``ceil(queue wait / shard run time) + 1`` shards in flight,
  within the device's job limit; both reduced while the expected staleness
  (samples in flight / batch size) exceeds ``max_staleness - 1``.

``weighting="quality"`` scales each device's gradient by its estimated fidelity for the
model's circuits relative to the fleet's mean (the EQC weighting of Stein et al.), so noisier
devices count less; ``"size"`` (default) weights by samples only.

Checkpoints (JSON, written atomically after every epoch) hold weights, optimizer state,
history and throughput estimates; ``fit(..., resume=True)`` continues from one.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from multiqpu.errors import InvalidInputError
from multiqpu.qnn._executor import Completion, Executor, FleetExecutor
from multiqpu.qnn._loss import Loss, loss_and_grad
from multiqpu.qnn._optim import Optimizer, make_optimizer
from multiqpu.qnn._pipeline import Plan, plan
from multiqpu.qnn.history import EpochRecord, History

if TYPE_CHECKING:
    from multiqpu.qnn.model import QNNModel

__all__ = ["Trainer"]


class Trainer:
    """Train ``model`` on ``fleet`` (anything ``fleet=`` takes; default: the configured fleet,
    else the embedded default fleet) or on an explicit ``executor``.

    Args:
        shots: shots per circuit; None for exact results (the fleet's exact simulators).
        batch_size: samples per optimizer step.
        learning_rate, optimizer: ``"adam"`` (default) or ``"sgd"``.
        aggregation: ``"sync"`` or ``"async"`` (see the module docstring).
        max_staleness: async only; default twice the largest per-device concurrency cap.
        weighting: ``"size"`` or ``"quality"`` (EQC-style).
        output_scale: logits are ``output_scale * <O_k>``.
        checkpoint: a JSON path written after each epoch.
        progress: a progress bar (rich); None: only when stderr is a terminal.
        concurrency: the most shards in flight per device (default min(2, the device's job
            limit)); async training picks the depth within it (see the module docstring).
        mitigation: e.g. ``[multiqpu.Readout(), multiqpu.ZNE()]``: every shard's results are
            corrected on the device that produced them (its own readout calibration, its own
            zero-noise fit) before gradients are aggregated across devices; needs ``shots``
            and a fleet (not an explicit ``executor``). See docs/mitigation.md.
    """

    def __init__(
        self,
        model: QNNModel,
        fleet: Any = None,
        *,
        shots: int | None = 1024,
        batch_size: int = 16,
        learning_rate: float = 0.1,
        optimizer: str | Optimizer = "adam",
        aggregation: Literal["sync", "async"] = "sync",
        max_staleness: int | None = None,
        weighting: Literal["size", "quality"] = "size",
        output_scale: float = 4.0,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: bool | None = None,
        concurrency: int | None = None,
        executor: Executor | None = None,
        seed: int | None = 0,
        mitigation: Any = None,
    ) -> None:
        if aggregation not in ("sync", "async"):
            raise InvalidInputError(f"aggregation must be 'sync' or 'async', got {aggregation!r}")
        if weighting not in ("size", "quality"):
            raise InvalidInputError(f"weighting must be 'size' or 'quality', got {weighting!r}")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        spec = None
        if mitigation is not None:
            from multiqpu.primitives._mitigated import check_spec, shots_needed

            spec = check_spec(mitigation)
            shots_needed([shots], "Trainer(shots=None)")
            if executor is not None and spec is not None:
                raise InvalidInputError(
                    "mitigation= runs shards on a fleet's devices; it cannot be combined "
                    "with an explicit executor"
                )
        if executor is None:
            from multiqpu.pool import as_pool
            from multiqpu.primitives._dispatch import eligible

            pool = as_pool(fleet, default="default")
            devices = eligible(pool, model.num_qubits, exact=shots is None)
            if not devices:
                raise InvalidInputError(
                    f"no device of the fleet fits the model ({model.num_qubits} qubits"
                    + (", exact results" if shots is None else "")
                    + ")"
                )
            executor = FleetExecutor(pool.subset(devices), concurrency=concurrency,
                                     mitigation=spec)  # fmt: skip
        self.executor = executor
        self.shots = shots
        self.batch_size = batch_size
        self.optimizer = make_optimizer(optimizer, learning_rate)
        self.aggregation = aggregation
        self.max_staleness = (
            max_staleness if max_staleness is not None else 2 * max(executor.concurrency)
        )
        self.weighting = weighting
        self.loss = Loss(model.num_outputs, output_scale)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.progress = progress
        self._rng = np.random.default_rng(seed)
        self.weights: np.ndarray = model.init_weights(seed)
        self.history = History(devices=list(executor.names))
        n = len(executor.names)
        self.throughput = np.ones(n)  # circuits per second (relative until measured)
        self._measured = np.zeros(n, dtype=bool)
        self.circuit_s = np.full(n, np.nan)  # device seconds per circuit, overhead excluded
        self._last_finish = np.full(n, -np.inf)
        self.plan: Plan | None = None  # the async plan last used
        self._quality: np.ndarray | None = None
        self.version = 0

    # ------------------------------------------------------------------ public API
    def fit(self, X: Any, y: Any, epochs: int = 1, **kwargs: Any) -> History:
        """Train for ``epochs`` (see :meth:`afit`); safe to call from a notebook."""
        from multiqpu._sync import run_sync

        return run_sync(self.afit(X, y, epochs, **kwargs))

    async def afit(
        self,
        X: Any,
        y: Any,
        epochs: int = 1,
        *,
        X_val: Any = None,
        y_val: Any = None,
        resume: bool = True,
    ) -> History:
        X, y = self._check_data(X, y)
        if self.checkpoint is not None and resume and self.checkpoint.exists():
            self.load(self.checkpoint)
        if self.weighting == "quality" and self._quality is None:
            q = np.asarray(self.executor.quality(self.model.work(X[:1], self.weights,
                                                                  gradients=False)))  # fmt: skip
            self._quality = q / q.mean()
        start_epoch = len(self.history.epochs)
        bar = _Progress(self.progress, self.executor.names, epochs - start_epoch, len(X))
        validate = X_val is not None and y_val is not None

        async def finish(record: EpochRecord) -> None:
            if validate:
                vl, va = await self.aevaluate(X_val, y_val)
                record = record.with_validation(vl, va)
            self.history.epochs.append(record)
            bar.epoch_done(record)
            if self.checkpoint is not None:
                self.save(self.checkpoint)

        try:
            if self.aggregation == "async":
                await self._async_epochs(X, y, start_epoch, epochs, finish, bar,
                                         barrier=validate)  # fmt: skip
            for epoch in range(start_epoch, epochs if self.aggregation == "sync" else 0):
                order = self._rng.permutation(len(X))
                t0 = self.executor.now()
                stats = _EpochStats(len(self.executor.names))
                await self._sync_epoch(X, y, order, stats, bar)
                await finish(stats.record(epoch, self.executor.now() - t0, self.version))
        finally:
            bar.close()
            await self.executor.close()
        return self.history

    def predict_proba(self, X: Any) -> np.ndarray:
        from multiqpu._sync import run_sync

        return run_sync(self.apredict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on ``(X, y)`` from forward passes on the fleet."""
        X, y = self._check_data(X, y)
        return float(np.mean(self.predict(X) == y))

    def exact_score(self, X: Any, y: Any) -> float:
        """Accuracy of the current weights by exact local simulation (no shot noise)."""
        X, y = self._check_data(X, y)
        f = self.model.exact_outputs(X, self.weights)
        return float(np.mean(np.argmax(self.loss.probabilities(f), axis=1) == y))

    async def apredict_proba(self, X: Any) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        f = await self._forward(X)
        return self.loss.probabilities(f)

    async def aevaluate(self, X: Any, y: Any) -> tuple[float, float]:
        """(mean loss, accuracy) on ``(X, y)`` from forward passes on the fleet."""
        X, y = self._check_data(X, y)
        f = await self._forward(X)
        loss, _, correct = loss_and_grad(self.loss, f, y, None)
        return float(loss.mean()), float(correct.mean())

    # ------------------------------------------------------------------ epochs
    def _shares(self, n: int) -> np.ndarray:
        """Split n samples over the devices in proportion to their throughput."""
        tp = self.throughput / self.throughput.sum()
        raw = tp * n
        share = np.floor(raw).astype(int)
        for d in np.argsort(-(raw - share))[: n - share.sum()]:
            share[d] += 1
        return share

    async def _sync_epoch(
        self, X: np.ndarray, y: np.ndarray, order: np.ndarray, stats: _EpochStats, bar: Any
    ) -> None:
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            shares = self._shares(len(batch))
            at = 0
            for d, k in enumerate(shares):
                if k:
                    idx = batch[at : at + k]
                    at += k
                    self._start(d, X, idx)
            grads, sizes, ds = [], [], []
            while self.executor.in_flight():
                done = await self.executor.next()
                g, n = self._absorb(done, X, y, stats, bar)
                grads.append(g)
                sizes.append(n)
                ds.append(done.device)
            w = np.array(sizes, dtype=float) * self._weight(np.array(ds))
            grad = np.tensordot(w / w.sum(), np.array(grads), axes=1)
            self._step(grad)

    async def _async_epochs(
        self,
        X: np.ndarray,
        y: np.ndarray,
        first: int,
        last: int,
        finish: Callable[[EpochRecord], Awaitable[None]],
        bar: Any,
        *,
        barrier: bool,
    ) -> None:
        """Epochs ``first..last-1`` without a barrier between them (unless ``barrier``: then
        each epoch drains before the next starts, e.g. to validate on the fleet)."""
        n_dev = len(self.executor.names)
        queue: deque[tuple[int, int]] = deque()  # (epoch, sample)
        inflight = [0] * n_dev

        def free(d: int) -> bool:
            self.plan = self._plan()
            return inflight[d] < self.plan.depths[d]

        # accepted per-sample gradients, their weight, the weights' version they were taken at
        pending: list[tuple[np.ndarray, float, int]] = []
        stats: dict[int, _EpochStats] = {}
        left: dict[int, int] = {}
        started: dict[int, float] = {}
        next_epoch = first

        def refill() -> None:
            nonlocal next_epoch
            if next_epoch < last and (not barrier or not left):
                e = next_epoch
                next_epoch += 1
                queue.extend((e, int(i)) for i in self._rng.permutation(len(X)))
                stats[e], left[e] = _EpochStats(n_dev), len(X)
                started[e] = self.executor.now()

        def launch(d: int) -> None:
            if not queue:
                refill()
            assert self.plan is not None
            size = min(self.plan.sizes[d], len(queue))
            items = [queue.popleft() for _ in range(size)]
            if items:
                idx = np.array([i for _, i in items])
                self._start(d, X, idx, epochs=np.array([e for e, _ in items]))
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
            room = self.batch_size if full else len(X) * (last + 1)
            for g, w, v in pending:
                forced = self.version + 1 - v > self.max_staleness
                k = len(g) if forced else max(0, min(room, len(g)))
                rows.append(g[:k])
                weights.append(np.full(k, w))
                room -= k
                if k < len(g):
                    keep.append((g[k:], w, v))
            wt = np.concatenate(weights)
            self._step(np.tensordot(wt / wt.sum(), np.concatenate(rows), axes=1))
            pending = keep

        refill()
        for d in range(n_dev):
            while free(d) and (queue or next_epoch < last):
                launch(d)
        while self.executor.in_flight():
            done = await self.executor.next()
            d = done.device
            inflight[d] -= 1
            epochs_of = done.tag[3]
            if self.version - done.tag[1] > self.max_staleness:
                stats[int(epochs_of[0])].dropped += 1  # too stale: recompute on fresh weights
                queue.extendleft(zip(reversed(epochs_of.tolist()), reversed(done.tag[0].tolist()),
                                     strict=True))  # fmt: skip
                self._learn(done)
            else:
                per = self._absorb_split(done, X, y, bar)
                g = per.pop("grad")
                pending.append((g, float(self._weight(np.array([d]))[0]), int(done.tag[1])))
                while sum(len(p[0]) for p in pending) >= self.batch_size:
                    flush(full=True)
                for e, (k, loss, correct, circuits) in per.items():
                    stats[e].add(d, k, loss, correct, circuits)
                    left[e] -= k
                for e in sorted(e for e, k in left.items() if k == 0):
                    if e == min(left):  # epochs complete in order
                        flush()
                        del left[e]
                        record = stats.pop(e).record(e, self.executor.now() - started[e],
                                                     self.version)  # fmt: skip
                        if e + 1 in started:
                            started[e + 1] = max(started[e + 1], self.executor.now())
                        await finish(record)
            while free(d) and (queue or (next_epoch < last and (not barrier or not left))):
                launch(d)
            if not self.executor.in_flight():
                for d2 in range(n_dev):
                    while free(d2) and (queue or (next_epoch < last and not left)):
                        launch(d2)
        flush()

    def _plan(self) -> Plan:
        """Async shard sizes and in-flight depths from what is measured so far."""
        priors = [self.executor.job_prior(d) for d in range(len(self.executor.names))]
        return plan(
            self.batch_size,
            self.throughput,
            self.circuit_s * self.model.circuits_per_sample,
            [o for o, _ in priors],
            [w for _, w in priors],
            self.executor.concurrency,
            self.max_staleness,
        )

    def _start(
        self, d: int, X: np.ndarray, idx: np.ndarray, epochs: np.ndarray | None = None
    ) -> None:
        work = self.model.work(X[idx], self.weights, gradients=True)
        tag = (idx, self.version, self.weights.copy(), epochs)
        self.executor.start(d, work, self.shots, tag)

    def _absorb_split(
        self, done: Completion, X: np.ndarray, y: np.ndarray, bar: Any
    ) -> dict[Any, Any]:
        """Like :meth:`_absorb`, with the bookkeeping split by the epoch of each sample."""
        idx, _, weights, epochs = done.tag
        out = self.model.outputs(X[idx], weights, done.results, gradients=True)
        loss, grad, correct = loss_and_grad(self.loss, out.f, y[idx], out.jac)
        self._learn(done)
        bar.advance(done.device, len(idx))
        per: dict[Any, Any] = {"grad": grad}  # one row per sample
        per_circuit = len(done.results) / len(idx)
        for e in np.unique(epochs):
            mask = epochs == e
            per[int(e)] = (int(mask.sum()), float(loss[mask].sum()), int(correct[mask].sum()),
                           round(per_circuit * mask.sum()))  # fmt: skip
        return per

    def _absorb(
        self, done: Completion, X: np.ndarray, y: np.ndarray, stats: _EpochStats, bar: Any
    ) -> tuple[np.ndarray, int]:
        idx, _, weights, _ = done.tag
        out = self.model.outputs(X[idx], weights, done.results, gradients=True)
        loss, grad, correct = loss_and_grad(self.loss, out.f, y[idx], out.jac)
        self._learn(done)
        stats.add(done.device, len(idx), float(loss.sum()), int(correct.sum()), len(done.results))
        bar.advance(done.device, len(idx))
        return grad.mean(axis=0), len(idx)

    def _learn(self, done: Completion) -> None:
        """Throughput: circuits per second of wall (or virtual) time, queue included."""
        d = done.device
        # device time of this job: from when it could start (submitted, or the device's
        # previous job finished) to its end, less the per-job overhead, per circuit
        service = done.finished - max(done.submitted, self._last_finish[d])
        self._last_finish[d] = max(self._last_finish[d], done.finished)
        overhead = self.executor.job_prior(d)[0]
        per = max(service - overhead, 0.1 * service) / max(len(done.results), 1)
        old = self.circuit_s[d]
        self.circuit_s[d] = per if np.isnan(old) else 0.7 * old + 0.3 * per
        rate = len(done.results) / max(done.finished - done.submitted, 1e-9)
        if self._measured[d]:
            self.throughput[d] = 0.7 * self.throughput[d] + 0.3 * rate
        else:
            self.throughput[d] = rate
            self._measured[d] = True
            if not self._measured.all():  # unmeasured devices: assume the mean of the known
                known = self.throughput[self._measured].mean()
                self.throughput[~self._measured] = known

    def _weight(self, devices: np.ndarray) -> np.ndarray:
        if self.weighting == "quality" and self._quality is not None:
            return self._quality[devices]
        return np.ones(len(devices))

    def _step(self, grad: np.ndarray) -> None:
        self.weights = self.optimizer.step(self.weights, grad)
        self.version += 1

    async def _forward(self, X: np.ndarray) -> np.ndarray:
        """Outputs for X, shards spread over the devices by throughput."""
        shares = self._shares(len(X))
        at = 0
        parts: dict[int, tuple[np.ndarray, Completion]] = {}
        for d, k in enumerate(shares):
            if k:
                idx = np.arange(at, at + k)
                at += k
                work = self.model.work(X[idx], self.weights, gradients=False)
                self.executor.start(d, work, self.shots, (idx, d))
        while self.executor.in_flight():
            done = await self.executor.next()
            self._learn(done)
            parts[done.device] = (done.tag[0], done)
        f = np.zeros((len(X), self.model.num_outputs))
        for idx, done in parts.values():
            f[idx] = self.model.outputs(X[idx], self.weights, done.results, gradients=False).f
        return f

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        return {
            "format": "multiqpu.qnn.checkpoint/1",
            "weights": self.weights.tolist(),
            "version": self.version,
            "optimizer": self.optimizer.state(),
            "throughput": self.throughput.tolist(),
            "measured": self._measured.tolist(),
            "devices": list(self.executor.names),
            "history": self.history.to_dict(),
            "rng": self._rng.bit_generator.state,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a checkpoint atomically (a crash never leaves a half-written file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.state()))
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike[str]) -> None:
        data = json.loads(Path(path).read_text())
        if data.get("format") != "multiqpu.qnn.checkpoint/1":
            raise InvalidInputError(f"{path} is not a multiqpu QNN checkpoint")
        weights = np.asarray(data["weights"], dtype=float)
        if weights.shape != self.weights.shape:
            raise InvalidInputError(
                f"checkpoint {path} holds {weights.size} weights, the model has {self.weights.size}"
            )
        self.weights = weights
        self.version = int(data["version"])
        self.optimizer.load(data["optimizer"])
        if list(data["devices"]) == list(self.executor.names):
            self.throughput = np.asarray(data["throughput"], dtype=float)
            self._measured = np.asarray(data["measured"], dtype=bool)
        self.history = History.from_dict(data["history"])
        self._rng.bit_generator.state = data["rng"]

    # ------------------------------------------------------------------ checks
    def _check_data(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        y = np.asarray(y).reshape(-1)
        if len(X) != len(y):
            raise InvalidInputError(f"{len(X)} samples but {len(y)} labels")
        if not len(X):
            raise InvalidInputError("no data")
        classes = max(2, self.model.num_outputs)
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= classes:
            raise InvalidInputError(f"labels must be integers in [0, {classes})")
        return X, y.astype(int)


class _EpochStats:
    def __init__(self, devices: int) -> None:
        self.samples = np.zeros(devices, dtype=int)
        self.circuits = np.zeros(devices, dtype=int)
        self.loss = 0.0
        self.correct = 0
        self.dropped = 0

    def add(self, d: int, n: int, loss: float, correct: int, circuits: int) -> None:
        self.samples[d] += n
        self.circuits[d] += circuits
        self.loss += loss
        self.correct += correct

    def record(self, epoch: int, seconds: float, version: int) -> EpochRecord:
        total = max(int(self.samples.sum()), 1)
        return EpochRecord(
            epoch=epoch,
            loss=self.loss / total,
            accuracy=self.correct / total,
            seconds=seconds,
            samples=tuple(int(s) for s in self.samples),
            circuits=tuple(int(c) for c in self.circuits),
            updates=version,
            dropped=self.dropped,
        )


class _Progress:
    """A rich progress bar over the samples of all epochs, with each device's share."""

    def __init__(self, enabled: bool | None, names: Sequence[str], epochs: int, n: int) -> None:
        import sys

        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar: Any = None
        self._names = list(names)
        self._counts = [0] * len(names)
        if not enabled or epochs <= 0:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} samples"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self._task = self._bar.add_task("train", total=epochs * n, info="")
        self._bar.start()

    def advance(self, d: int, n: int) -> None:
        if self._bar is None:
            return
        self._counts[d] += n
        total = max(sum(self._counts), 1)
        info = " ".join(
            f"{name.split(':')[-1]} {100 * c / total:.0f}%"
            for name, c in zip(self._names, self._counts, strict=True)
            if c
        )
        self._bar.update(self._task, advance=n, info=info)

    def epoch_done(self, record: EpochRecord) -> None:
        if self._bar is not None:
            self._bar.console.print(
                f"epoch {record.epoch + 1}: loss {record.loss:.3f} acc {record.accuracy:.3f} "
                f"({record.seconds:.1f} s)"
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
