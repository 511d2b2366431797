"""Data-parallel QNN training over a fleet (see docs/qnn.md).

``QNNModel`` (a parametrised circuit with inputs, weights and observables; parameter-shift
gradients), ``variational_classifier`` (a ready-made classifier), ``Trainer`` (shards per
device sized by measured throughput; synchronous with backup workers (the default),
local-update (QUDIO-style), or bounded-staleness asynchronous training with
staleness-aware steps;
a pluggable aggregator, robust ones (median, trimmed mean, Krum) with outlier reports and
quarantine; DP-SGD with ``Privacy`` and dp-accounting's budget; EQC-style quality weighting,
checkpoints, progress bar,
``History.plot``), ``CutExecutor`` (model parallelism: a model wider than every device
trained through cutting) and ``VirtualDevice``/``VirtualExecutor`` (simulated devices on a
virtual clock for what-if runs and benchmarks)."""

from __future__ import annotations

from multiqpu.qnn._cut import CutExecutor
from multiqpu.qnn._executor import FleetExecutor, VirtualDevice, VirtualExecutor
from multiqpu.qnn._privacy import Privacy
from multiqpu.qnn.history import EpochRecord, History
from multiqpu.qnn.model import QNNModel, variational_classifier
from multiqpu.qnn.trainer import Trainer

__all__ = [
    "CutExecutor",
    "EpochRecord",
    "FleetExecutor",
    "History",
    "Privacy",
    "QNNModel",
    "Trainer",
    "VirtualDevice",
    "VirtualExecutor",
    "variational_classifier",
]
