"""A rich progress display for long runs: one bar per device plus the total.

Never drawn when ``MULTIQPU_PROGRESS=0`` or when standard error is not a terminal (logs,
CI, pipes): no ANSI escape codes reach them. Only one live display can be on screen, so a
run started while another draws its bars runs without (concurrent runs of one estimate).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["ENV_VAR", "Progress", "progress_allowed", "wants_progress"]

#: ``MULTIQPU_PROGRESS=0`` turns every progress display off
ENV_VAR = "MULTIQPU_PROGRESS"


def progress_allowed() -> bool:
    """Whether a live display may be drawn at all: not with ``MULTIQPU_PROGRESS=0`` (or
    ``false``/``no``/``off``), and only when standard error is a terminal."""
    if os.environ.get(ENV_VAR, "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return sys.stderr.isatty()


def wants_progress(option: bool | None, n_circuits: int) -> bool:
    """The ``progress`` option resolved: None means "if the run is long"; either way only
    when :func:`progress_allowed`."""
    if option is False or not progress_allowed():
        return False
    return True if option else n_circuits > 200


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
        from rich.errors import LiveError

        try:
            self._bar.start()
        except LiveError:  # another run's bars are on screen
            self._bar = None
            self.enabled = False

    def submitted(self, device: int, n: int) -> None:
        if self._bar is not None:
            task = self._tasks[device]
            self._bar.update(task, total=(self._bar.tasks[task].total or 0) + n)

    def done(self, device: int, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._tasks[device], n)
            self._bar.advance(self._total, n)

    def expect(self, n: int) -> None:
        """``n`` more circuits to come (a request whose stages add work as they go)."""
        if self._bar is not None:
            total = self._bar.tasks[self._total].total or 0
            self._bar.update(self._total, total=total + n)

    def preset(self, n: int) -> None:
        """Circuits already done before the run (cache, journal)."""
        if self._bar is not None:
            self._bar.advance(self._total, n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
