"""Data-parallel training of a :class:`~multiqpu.qnn.QNNModel` over a fleet.

Each device of the fleet is a worker. A shard of the data goes to one device, which runs the
shard's forward circuits and all their parameter-shift circuits in one go; the trainer turns
the results into the shard's loss and gradient and aggregates them with one of three
strategies (docs/qnn.md says when to use which; the default was chosen by the benchmark):

* ``aggregation="sync"`` (default): one optimizer step per mini-batch on the aggregate of
  its shards' gradients. On a fleet it is *pipelined* (``pipeline=1``, default ``"auto"``:
  1 with more than one device): the next batch's shards are queued behind the running ones
  on the weights of the step before, so queue waits overlap with work and every gradient
  is exactly one version old; shards are water-filled on measured device time and per-job
  overhead; devices too slow to return in time are left out (:mod:`multiqpu.qnn.
  _pipelined`). ``backup=b`` (``"auto"``: a quarter of the devices) lets a step proceed
  once all but ``b`` shards are in; late gradients are folded into a later step.
* ``aggregation="local"``: local-update training in the style of QUDIO. Devices take
  optimizer steps on their own copies of the weights for a round (``k`` steps, adapted so
  that the round's barrier costs at most about 10 % of it; ``local_steps`` fixes it), then
  their weight changes are aggregated; see :mod:`multiqpu.qnn._local`.
* ``aggregation="async"``: no barrier. Every device keeps several shards in flight and
  starts a new one on the newest weights as soon as one finishes; the server steps
  whenever finished shards cover ``batch_size`` samples (K-async), on exactly that many.
  Gradients more than ``max_staleness`` versions old are dropped and recomputed; younger
  ones are corrected by ``staleness`` (``"scale"``: the step divided by the mean staleness;
  ``"compensate"``: DC-ASGD's delay compensation; ``"none"``). Shard sizes and in-flight
  depths: :mod:`multiqpu.qnn._pipeline`; launch rules: :meth:`Workers.worth_starting`.

Across devices, gradients (or, for local updates, weight changes) are combined by one
``aggregator(rows, weights) -> row`` function (default: the weighted mean), so a robust or
private aggregator plugs in without touching the strategies.

A model wider than every device of the fleet is trained through cutting
(:class:`~multiqpu.qnn.CutExecutor`: every circuit estimated by the estimate pipeline).

``weighting="quality"`` scales each device's gradient by its estimated fidelity for the
model's circuits relative to the fleet's mean (the EQC weighting of Stein et al.), so noisier
devices count less; ``"size"`` (default) weights by samples only.

Checkpoints (JSON, written atomically after every epoch) hold weights, optimizer state,
history and throughput estimates; ``fit(..., resume=True)`` continues from one.

The pieces: ``_workers`` (shards, speed learning, quality weights), ``_aggregation``
(sync and async loops, staleness rules, the parameter server), ``_pipelined`` (pipelined
sync), ``_local``, ``_cut``, ``_epochs``. This module: configuration, fit, checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from multiqpu.errors import InvalidInputError
from multiqpu.qnn._aggregation import (
    Aggregator,
    ParameterServer,
    async_epochs,
    sync_epoch,
)
from multiqpu.qnn._checkpoint import checkpoint_state, load_checkpoint, save_checkpoint
from multiqpu.qnn._epochs import EpochStats, Progress
from multiqpu.qnn._executor import Executor, FleetExecutor
from multiqpu.qnn._local import local_epoch
from multiqpu.qnn._loss import Loss, loss_and_grad
from multiqpu.qnn._optim import Optimizer, make_optimizer
from multiqpu.qnn._pipelined import pipelined_sync
from multiqpu.qnn._privacy import Privacy, PrivateMean
from multiqpu.qnn._robust import RobustAggregator, check_defences
from multiqpu.qnn._shards import allowed_mask
from multiqpu.qnn._workers import Workers
from multiqpu.qnn.history import EpochRecord, History

if TYPE_CHECKING:
    from multiqpu.qnn._pipeline import Plan
    from multiqpu.qnn.model import QNNModel

__all__ = ["Trainer"]


class Trainer:
    """Train ``model`` on ``fleet`` (anything ``fleet=`` takes; default: the configured fleet,
    else the embedded default fleet) or on an explicit ``executor``.

    Args:
        shots: shots per circuit; None for exact results (the fleet's exact simulators).
        batch_size: samples per optimizer step.
        learning_rate, optimizer: ``"adam"`` (default) or ``"sgd"``.
        aggregation: ``"sync"`` (default, with backup workers), ``"local"`` or ``"async"``
            (see the module docstring).
        max_staleness: async only; default twice the largest per-device concurrency cap.
        staleness: how stale gradients are used (async, and sync's late shards):
            ``"scale"`` (default), ``"compensate"`` or ``"none"``.
        backup: sync only: shards a step need not wait for (``"auto"``: ``N // 4``).
        pipeline: sync only: batches launched ahead of the step (``"auto"``: 1 on more
            than one device, else 0, and 0 with a robust aggregator, whose rows must all be
            taken on the same weights); gradients are ``pipeline`` versions stale.
        extrapolate: pipelined sync only: launch shards on the weights extrapolated by the last
            step's change (weight prediction; None: on whenever pipelined).
        local_steps: local only: steps per round (None: adaptive, at most
            ``max_local_steps``).
        aggregator: how per-device gradients (or weight changes) are combined:
            ``"mean"`` (default), ``"median"``, ``"trimmed_mean"`` (``trim``: the fraction
            cut at each end, default 0.2; ``byzantine=f``: cut at least ``f``), ``"krum"``,
            ``"multi_krum"`` (``byzantine``: the dishonest devices assumed, default 1), or
            any ``f(rows, weights) -> row``. Named
            rules also report devices whose gradients are consistently outliers
            (``History.outliers``); ``quarantine=True`` gives them no more shards. Robust
            rules need per-device rows: sync or local training (see
            :mod:`multiqpu.qnn._robust`).
        privacy: a :class:`~multiqpu.qnn.Privacy` for DP-SGD (per-sample clipping,
            Gaussian noise, epsilon per epoch, ``max_epsilon``); sync training without
            backup workers, ``weighting="size"``, the mean aggregator.
        cut_options: options for :func:`multiqpu.pipeline.estimate` when no device fits the
            model and it is trained through cutting.
        weighting: ``"size"`` or ``"quality"`` (EQC-style).
        output_scale: logits are ``output_scale * <O_k>``.
        checkpoint: a JSON path written after each epoch.
        progress: a progress bar (rich) with each device's share; never drawn when stderr
            is not a terminal or ``MULTIQPU_PROGRESS=0``.
        concurrency: the most shards in flight per device (default min(2, the device's job
            limit)); async training picks the depth within it (see the module docstring).
        mitigation: e.g. ``[multiqpu.Readout(), multiqpu.ZNE()]``: every shard's results are
            corrected on the device that produced them (its own readout calibration, its own
            zero-noise fit) before gradients are aggregated across devices; needs ``shots``
            and a fleet (not an explicit ``executor``). See docs/mitigation.md.
        placement: a data placement rule for the whole dataset (a :class:`multiqpu.Placement`
            or a config rule's name): every circuit carrying its features (training,
            evaluation, backup copies) runs only on the devices it allows; needs a fleet
            (not an explicit ``executor``). Per-sample rules: ``fit(X, y, placement=...)``
            (and ``predict``/``score``). See docs/trust.md.
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
        aggregation: Literal["sync", "async", "local"] = "sync",
        max_staleness: int | None = None,
        staleness: Literal["scale", "compensate", "none"] = "scale",
        backup: int | Literal["auto"] = "auto",
        pipeline: int | Literal["auto"] = "auto",
        extrapolate: bool | None = None,
        local_steps: int | None = None,
        max_local_steps: int = 8,
        aggregator: Aggregator | str | None = None,
        trim: float | None = None,
        byzantine: int | None = None,
        quarantine: bool = False,
        privacy: Privacy | None = None,
        weighting: Literal["size", "quality"] = "size",
        output_scale: float = 4.0,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: bool | None = None,
        concurrency: int | None = None,
        executor: Executor | None = None,
        seed: int | None = 0,
        mitigation: Any = None,
        cut_options: dict[str, Any] | None = None,
        placement: Any = None,
    ) -> None:
        if aggregation not in ("sync", "async", "local"):
            raise InvalidInputError(f"aggregation must be sync, async or local: {aggregation!r}")
        if staleness not in ("scale", "compensate", "none"):
            raise InvalidInputError(
                f"staleness must be 'scale', 'compensate' or 'none', got {staleness!r}"
            )
        if backup not in (0, "auto") and aggregation != "sync":
            raise InvalidInputError("backup= (backup workers) applies to aggregation='sync'")
        if pipeline not in (0, "auto") and aggregation != "sync":
            raise InvalidInputError("pipeline= applies to aggregation='sync'")
        if pipeline != "auto" and (not isinstance(pipeline, int) or pipeline < 0):
            raise InvalidInputError(f"pipeline must be 'auto' or an integer >= 0, got {pipeline!r}")
        if local_steps is not None and aggregation != "local":
            raise InvalidInputError("local_steps= applies to aggregation='local'")
        if (
            (backup != "auto" and (not isinstance(backup, int) or backup < 0))
            or (local_steps is not None and local_steps < 1)
            or max_local_steps < 1
        ):
            raise InvalidInputError("backup must be >= 0, local_steps and max_local_steps >= 1")
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
        if executor is not None and placement is not None:
            raise InvalidInputError(
                "placement= restricts a fleet's devices; it cannot be combined with an "
                "explicit executor"
            )
        if executor is None:
            from multiqpu.pool import as_pool
            from multiqpu.primitives._dispatch import eligible

            pool = as_pool(fleet, default="default")
            if placement is not None:  # only the allowed devices ever see the data
                from multiqpu.placement import resolve_placement

                rule = resolve_placement(placement)
                assert rule is not None
                pool = rule.restrict(pool)
            devices = eligible(pool, model.num_qubits, exact=shots is None)
            if devices:
                executor = FleetExecutor(pool.subset(devices), concurrency=concurrency,
                                         mitigation=spec)  # fmt: skip
            elif spec is None and shots is not None and pool.devices:
                from multiqpu.qnn._cut import CutExecutor

                executor = CutExecutor(pool, model, seed=seed or 0, **(cut_options or {}))
            else:
                raise InvalidInputError(
                    f"no device of the fleet fits the model ({model.num_qubits} qubits"
                    + (", exact results" if shots is None else "")
                    + "), and cutting needs shots and no mitigation"
                )
        if backup == "auto":  # wait for the fastest three quarters of the shards
            backup = len(executor.names) // 4 if aggregation == "sync" and not privacy else 0
        if backup >= len(executor.names):
            raise InvalidInputError(
                f"backup={backup} leaves no device to wait for ({len(executor.names)} devices)"
            )
        self.executor = executor
        self.shots = shots
        self.batch_size = batch_size
        self.optimizer = make_optimizer(optimizer, learning_rate)
        self.aggregation = aggregation
        self.max_staleness = (
            max_staleness if max_staleness is not None else 2 * max(executor.concurrency)
        )
        self.weighting = weighting
        self.staleness = staleness
        self.backup: int = backup
        auto = int(aggregation == "sync" and len(executor.names) > 1)  # fleet: a batch ahead
        self.pipeline: int = auto if pipeline == "auto" else pipeline
        if extrapolate and not (aggregation == "sync" and self.pipeline):
            raise InvalidInputError("extrapolate=True applies to pipelined sync (pipeline >= 1)")
        self.extrapolate = bool(self.pipeline) if extrapolate is None else bool(extrapolate)
        self.local_steps = local_steps
        self.max_local_steps = max_local_steps
        self.privacy = privacy
        self.aggregator: Aggregator = check_defences(
            aggregator, trim, byzantine, quarantine, privacy, aggregation=aggregation,
            devices=len(executor.names), backup=backup, weighting=weighting,
        )  # fmt: skip
        robust = isinstance(self.aggregator, RobustAggregator) and self.aggregator.kind != "mean"
        if robust and pipeline == "auto":  # a robust rule compares the rows of a step: all
            self.pipeline = 0  # taken on the same weights (no early, late or stale shards)
            if extrapolate:
                raise InvalidInputError(
                    "extrapolate=True needs a pipeline: with a robust aggregator give pipeline=1"
                )
            self.extrapolate = False
        self.quarantine = quarantine
        self.rounds: list[int] = []  # local-update training: k of every round so far
        self.loss = Loss(model.num_outputs, output_scale)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.progress = progress
        self._rng = np.random.default_rng(seed)
        self.server = ParameterServer(model.init_weights(seed), self.optimizer)
        self.workers = Workers(executor, model, self.loss, shots, weighting)
        if isinstance(self.aggregator, RobustAggregator):  # quarantined: counted among f
            self.aggregator.excluded = self.workers.excluded
        self.workers.equal = robust  # equal shards: honest rows alike, so comparable
        if privacy is not None:
            self.workers.clip = privacy.clip
            self.aggregator = PrivateMean(privacy, np.random.default_rng(self._rng.integers(2**63)))
        self.history = History(devices=list(executor.names))

    # ------------------------------------------------------------------ state
    @property
    def weights(self) -> np.ndarray:
        """The current weights."""
        return self.server.weights

    @weights.setter
    def weights(self, value: np.ndarray) -> None:
        self.server.weights = value

    @property
    def version(self) -> int:
        """Optimizer steps taken so far."""
        return self.server.version

    @property
    def throughput(self) -> np.ndarray:
        """Each device's measured throughput (circuits per second, relative until measured)."""
        return self.workers.throughput

    @property
    def circuit_s(self) -> np.ndarray:
        """Each device's measured device time per circuit (per-job overhead excluded)."""
        return self.workers.circuit_s

    @property
    def plan(self) -> Plan | None:
        """The async plan (shard sizes, in-flight depths) last used, or None."""
        return self.workers.plan

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
        placement: Any = None,
    ) -> History:
        """``placement``: one rule for ``X`` or one per sample (a :class:`multiqpu.Placement`,
        a config rule's name, or None: any device); every shard of a sample goes to a device
        its rule allows (sync training; refused before anything runs when a rule allows no
        device). Validation data (``X_val``) follows the trainer's own rule only."""
        X, y = self._check_data(X, y)
        self.workers.allowed = allowed_mask(self.executor, placement, len(X), self.aggregation)
        if self.checkpoint is not None and resume and self.checkpoint.exists():
            self.load(self.checkpoint)
        if self.weighting == "quality" and self.workers.quality is None:
            self.workers.measure_quality(X, self.weights)
        start_epoch = len(self.history.epochs)
        bar = Progress(self.progress, self.executor.names, epochs - start_epoch, len(X))
        validate = X_val is not None and y_val is not None

        steps = -(-len(X) // self.batch_size)  # per epoch (sync, no backup workers)

        async def finish(record: EpochRecord) -> None:
            if self.privacy is not None:
                record = replace(record, epsilon=self.privacy.epsilon(self.batch_size / len(X),
                                                                      self.version))  # fmt: skip
            self._tally_outliers()
            if validate:
                vl, va = await self.aevaluate(X_val, y_val)
                record = record.with_validation(vl, va)
            self.history.epochs.append(record)
            bar.epoch_done(record)
            if self.checkpoint is not None:
                self.save(self.checkpoint)

        try:
            if self.aggregation == "async":
                await async_epochs(self.workers, self.server, X, y, start_epoch, epochs, finish,
                                   bar, batch_size=self.batch_size,
                                   max_staleness=self.max_staleness, rng=self._rng,
                                   barrier=validate, staleness=self.staleness,
                                   aggregator=self.aggregator)  # fmt: skip
            if self.aggregation == "sync" and self.pipeline:

                def orders() -> Iterator[tuple[int, np.ndarray]]:
                    for epoch in range(start_epoch, epochs):
                        if self._over_budget(len(X), steps):
                            return
                        yield epoch, self._rng.permutation(len(X))

                async def done(epoch: int, stats: EpochStats, seconds: float) -> None:
                    await finish(stats.record(epoch, seconds, self.version))

                await pipelined_sync(self.workers, self.server, X, y, orders(),
                                     self.batch_size, done, bar, ahead=self.pipeline,
                                     backup=self.backup, staleness=self.staleness,
                                     aggregator=self.aggregator, extrapolate=self.extrapolate,
                                     carry=not validate and self.checkpoint is None
                                     and self.privacy is None)  # fmt: skip
            stepwise = not (self.pipeline or self.aggregation == "async")  # pipeline: sync only
            for epoch in range(start_epoch, epochs if stepwise else 0):
                if self._over_budget(len(X), steps):
                    break
                order = self._rng.permutation(len(X))
                t0 = self.executor.now()
                stats = EpochStats(len(self.executor.names))
                if self.aggregation == "local":
                    self.rounds += await local_epoch(
                        self.workers, self.server, X, y, order, self.batch_size, stats, bar,
                        local_steps=self.local_steps, max_local_steps=self.max_local_steps,
                        aggregator=self.aggregator,
                    )  # fmt: skip
                else:
                    await sync_epoch(self.workers, self.server, X, y, order, self.batch_size,
                                     stats, bar, backup=self.backup, staleness=self.staleness,
                                     aggregator=self.aggregator,
                                     drain=epoch == epochs - 1 or validate)  # fmt: skip
                await finish(stats.record(epoch, self.executor.now() - t0, self.version))
        finally:
            bar.close()
            self.workers.allowed = None
            await self.executor.close()
        return self.history

    def _tally_outliers(self) -> None:
        """Report (and, with ``quarantine``, exclude) devices whose rows are outliers."""
        if isinstance(self.aggregator, RobustAggregator):
            names = self.history.devices
            self.history.outliers = [names[d] for d in self.aggregator.outliers()]
            self.history.outlier_rate = dict(zip(names, self.aggregator.rates().tolist(),
                                                 strict=True))  # fmt: skip
            bad = self.aggregator.outliers()
            if self.quarantine and len(bad) < len(names) / 2:  # a dishonest minority only
                self.workers.excluded[bad] = True
                self.history.quarantined = [names[d] for d in np.flatnonzero(
                    self.workers.excluded)]  # fmt: skip

    def _over_budget(self, n: int, steps: int) -> bool:
        """Whether the next epoch would take epsilon past ``max_epsilon`` (then say so)."""
        p = self.privacy
        if p is None or p.max_epsilon is None:
            return False
        after = p.epsilon(self.batch_size / n, self.version + steps)
        if after <= p.max_epsilon:
            return False
        self.history.stopped = (
            f"stopped after {len(self.history.epochs)} epochs: one more would reach "
            f"epsilon {after:.4g} > max_epsilon {p.max_epsilon} (delta {p.delta})"
        )
        return True

    def predict_proba(self, X: Any, placement: Any = None) -> np.ndarray:
        """Class probabilities; ``placement``: one rule or one per sample, as for fit."""
        from multiqpu._sync import run_sync

        return run_sync(self.apredict_proba(X, placement))

    def predict(self, X: Any, placement: Any = None) -> np.ndarray:
        return np.argmax(self.predict_proba(X, placement), axis=1)

    def score(self, X: Any, y: Any, placement: Any = None) -> float:
        """Accuracy on ``(X, y)`` from forward passes on the fleet."""
        X, y = self._check_data(X, y)
        return float(np.mean(self.predict(X, placement) == y))

    def exact_score(self, X: Any, y: Any) -> float:
        """Accuracy of the current weights by exact local simulation (no shot noise)."""
        X, y = self._check_data(X, y)
        f = self.model.exact_outputs(X, self.weights)
        return float(np.mean(np.argmax(self.loss.probabilities(f), axis=1) == y))

    async def apredict_proba(self, X: Any, placement: Any = None) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        mask = allowed_mask(self.executor, placement, len(X))
        f = await self.workers.forward(X, self.weights, mask)
        return self.loss.probabilities(f)

    async def aevaluate(self, X: Any, y: Any, placement: Any = None) -> tuple[float, float]:
        """(mean loss, accuracy) on ``(X, y)`` from forward passes on the fleet."""
        X, y = self._check_data(X, y)
        mask = allowed_mask(self.executor, placement, len(X))
        f = await self.workers.forward(X, self.weights, mask)
        loss, _, correct = loss_and_grad(self.loss, f, y, None)
        return float(loss.mean()), float(correct.mean())

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        return checkpoint_state(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a checkpoint atomically (a crash never leaves a half-written file),
        readable by its owner only (0600; missing folders 0700)."""
        save_checkpoint(self, path)

    def load(self, path: str | os.PathLike[str]) -> None:
        load_checkpoint(self, path)

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
