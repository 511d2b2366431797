"""Per-epoch bookkeeping of the trainer: the running tallies of an epoch (samples and
circuits per device, loss, accuracy, dropped shards) that become an
:class:`~multiqpu.qnn.EpochRecord`, and the progress bar that shows each device's share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from multiqpu.qnn.history import EpochRecord

__all__ = ["EpochStats", "Progress"]


class EpochStats:
    """What one epoch has done so far, per device and in total."""

    def __init__(self, devices: int) -> None:
        self.samples = np.zeros(devices, dtype=int)
        self.circuits = np.zeros(devices, dtype=int)
        self.loss = 0.0
        self.correct = 0
        self.dropped = 0
        self.stale_sum = 0.0  # sum over applied samples of their staleness
        self.stale_n = 0
        self.stale_max = 0

    def stale(self, staleness: np.ndarray) -> None:
        """Tally the staleness (versions between the weights a gradient was computed on and
        the weights it updates) of the samples of one step."""
        if len(staleness):
            self.stale_sum += float(np.sum(staleness))
            self.stale_n += len(staleness)
            self.stale_max = max(self.stale_max, int(np.max(staleness)))

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
            staleness=self.stale_sum / self.stale_n if self.stale_n else 0.0,
            max_staleness=self.stale_max,
        )


class Progress:
    """A rich progress bar over the samples of all epochs, with each device's share."""

    def __init__(self, enabled: bool | None, names: Sequence[str], epochs: int, n: int) -> None:
        from multiqpu.scheduler._progress import progress_allowed

        # never with MULTIQPU_PROGRESS=0 or when stderr is not a terminal (no ANSI in logs)
        enabled = enabled is not False and progress_allowed()
        self._bar: Any = None
        self._names = list(names)
        self._counts = [0] * len(names)
        if not enabled or epochs <= 0:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} samples"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
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
