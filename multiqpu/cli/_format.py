"""Small text formatters shared by the CLI commands (no heavy imports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "STATUS_STYLE",
    "console",
    "non_negative_int",
    "one_line",
    "percent",
    "plain_output",
    "positive_int",
    "seconds",
    "usd",
]

STATUS_STYLE = {
    "online": "green",
    "offline": "red",
    "maintenance": "yellow",
    "unknown": "dim",
    "error": "red",
}


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def _int_at_least(text: str, low: int, what: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def plain_output() -> bool:
    """``MULTIQPU_PROGRESS=0`` (or false/no/off): plain text for logs, no live displays
    and no colours even on a terminal. (Off a terminal rich writes plain text anyway.)"""
    import os

    return os.environ.get("MULTIQPU_PROGRESS", "").strip().lower() in ("0", "false", "no", "off")


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    if plain_output():
        return Console(stderr=stderr, highlight=False, color_system=None)
    return Console(stderr=stderr, highlight=False)


def seconds(value: float | None) -> str:
    """``0.27 s``, ``4.5 min``, ``2.1 h``, ``3.0 d``; ``-`` when unknown."""
    if value is None:
        return "-"
    if value < 1e-3:
        return "0 s" if value <= 0 else f"{value * 1e3:.2f} ms"
    if value < 1:
        return f"{value * 1e3:.0f} ms"
    if value < 120:
        return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    if value < 2 * 86400:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"


def percent(value: float | None, digits: int = 2) -> str:
    """An error rate as a percentage (``0.29%``); ``-`` when unknown."""
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def usd(value: float) -> str:
    if value == 0:
        return "$0"
    if value >= 0.01:
        return f"${value:,.2f}"
    return f"${value:.5f}".rstrip("0")


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
