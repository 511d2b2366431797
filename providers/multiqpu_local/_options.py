"""Checking the keyword options of ``provider.device(name, **options)``.

Every rejection is a :class:`multiqpu.ConfigError` that names the option (``key``), says what
was expected and, for an unknown option, lists the accepted ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from multiqpu.provider_api import ConfigError, DeviceLimits

__all__ = ["check_known", "int_option", "limits_option", "probability_option", "seed_option"]


def check_known(spec: str, options: Mapping[str, Any], accepted: Iterable[str]) -> None:
    """Reject options the device does not take, naming them and the accepted ones."""
    allowed = sorted(accepted)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"device '{spec}' does not take the option(s) {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(allowed)}",
            key=unknown[0],
        )


def int_option(name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"expected an integer >= {minimum}, got {value!r}", key=name)
    return value


def probability_option(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"expected a probability (a number in [0, 1]), got {value!r}", key=name)
    number = float(value)
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise ConfigError(f"expected a probability in [0, 1], got {value!r}", key=name)
    return number


def seed_option(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"expected a non-negative integer or None, got {value!r}", key="seed")
    return value


def limits_option(value: Any, default: DeviceLimits) -> DeviceLimits:
    if value is None:
        return default
    if not isinstance(value, DeviceLimits):
        raise ConfigError(
            f"expected a multiqpu.DeviceLimits, got {type(value).__name__}", key="limits"
        )
    return value
