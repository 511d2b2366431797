"""matplotlib, imported when a picture is drawn, with a friendly error when it is missing."""

from __future__ import annotations

import os
from typing import Any

from multiqpu.errors import MultiQPUError

__all__ = ["INSTALL_HINT", "new_figure", "require_matplotlib", "save"]

INSTALL_HINT = "pip install 'multiqpu[plot]'"


def require_matplotlib() -> Any:
    """The ``matplotlib`` module; a :class:`~multiqpu.MultiQPUError` naming the install
    command when it is not installed."""
    try:
        import matplotlib
    except ImportError:
        raise MultiQPUError(
            f"drawing needs matplotlib, which is not installed; run: {INSTALL_HINT}"
        ) from None
    return matplotlib


def new_figure(width: float, height: float) -> Any:
    """A matplotlib ``Figure`` built without pyplot (no global state, no GUI backend)."""
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Any, path: str | os.PathLike[str] | None, dpi: int = 120) -> None:
    """Save ``fig`` to ``path`` (format by extension) when a path is given; the file is
    readable by its owner only (0600: a figure shows results; docs/trust.md)."""
    if path is not None:
        from multiqpu._private_files import private_output

        private_output(path)
        fig.savefig(os.fspath(path), dpi=dpi)
