"""Data-parallel QNN training over a fleet (see docs/qnn.md).

``QNNModel`` (a parametrised circuit with inputs, weights and observables; parameter-shift
gradients), ``variational_classifier`` (a ready-made classifier), ``Trainer`` (shards per
device sized by measured throughput, synchronous or bounded-staleness asynchronous
aggregation, EQC-style quality weighting, checkpoints, progress bar, ``History.plot``), and
``VirtualDevice``/``VirtualExecutor`` (simulated devices on a virtual clock for what-if runs
and benchmarks)."""

from __future__ import annotations

from multiqpu.qnn._executor import FleetExecutor, VirtualDevice, VirtualExecutor
from multiqpu.qnn.history import EpochRecord, History
from multiqpu.qnn.model import QNNModel, variational_classifier
from multiqpu.qnn.trainer import Trainer

__all__ = [
    "EpochRecord",
    "FleetExecutor",
    "History",
    "QNNModel",
    "Trainer",
    "VirtualDevice",
    "VirtualExecutor",
    "variational_classifier",
]
