"""Module-level functions the engine tests send to worker processes (importable there)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

__all__ = ["die_once", "square"]


def square(x: int) -> int:
    return x * x


def die_once(args: tuple[str, int]) -> tuple[int, int]:
    """Kill this worker process the first time item ``i`` runs (a marker file remembers);
    afterwards return ``(i, pid)``."""
    folder, i = args
    marker = Path(folder) / f"ran-{i}"
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return i, os.getpid()
