"""A rich progress display for long runs: one bar per device plus the total."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["Progress", "wants_progress"]


def wants_progress(option: bool | None, n_circuits: int) -> bool:
    """The ``progress`` option resolved: None means "if stderr is a terminal and the run
    is long"."""
    if option is not None:
        return option
    return n_circuits > 200 and sys.stderr.isatty()


class Progress:
    """Circuits done per device (bar total: circuits submitted there so far)."""

    def __init__(self, devices: Sequence[str], total: int, *, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._total = self._bar.add_task("all devices", total=total)
        self._tasks = [self._bar.add_task(f"  {name}", total=0) for name in devices]
        self._bar.start()

    def submitted(self, device: int, n: int) -> None:
        if self._bar is not None:
            task = self._tasks[device]
            self._bar.update(task, total=(self._bar.tasks[task].total or 0) + n)

    def done(self, device: int, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._tasks[device], n)
            self._bar.advance(self._total, n)

    def preset(self, n: int) -> None:
        """Circuits already done before the run (cache, journal)."""
        if self._bar is not None:
            self._bar.advance(self._total, n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
