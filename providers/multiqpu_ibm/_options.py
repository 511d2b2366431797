"""Device options of the IBM provider, checked once when a device is built."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from multiqpu.provider_api import ConfigError, DeviceLimits, Secret

__all__ = ["CHANNELS", "ENGINES", "MODES", "IBMOptions", "parse_options"]

MODES = ("job", "batch", "session")
ENGINES = ("fast", "runtime")
CHANNELS = ("ibm_quantum_platform", "ibm_cloud")
ACCEPTED = ("account", "channel", "engine", "instance", "limits", "mode", "seed", "token")


@dataclass(frozen=True)
class IBMOptions:
    """Validated options. ``token`` is always a :class:`Secret` (or None)."""

    account: str | None = None
    token: Secret | None = None
    instance: str | None = None
    channel: str | None = None
    mode: str = "job"
    engine: str = "fast"
    seed: int | None = None
    limits: DeviceLimits | None = None


def _str_or_none(key: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ConfigError(f"expected a string, got {type(value).__name__}", key=key)


def _choice(key: str, value: Any, choices: Sequence[str], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(
            f"expected one of {', '.join(repr(c) for c in choices)}, got {value!r}", key=key
        )
    return value


def unknown_device(name: str, known: Sequence[str]) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(
        f"unknown IBM fake backend '{name}'{hint} Offline devices are the {len(known)} fake "
        "backends of qiskit-ibm-runtime (e.g. fake_torino, fake_kyiv, fake_manila); real "
        "backends are named like 'ibm_torino'"
    )


def parse_options(name: str, options: Mapping[str, Any], *, fake: bool) -> IBMOptions:
    """Check ``options`` for device ``name``; raise ConfigError naming the bad one."""
    unknown = sorted(set(options) - set(ACCEPTED))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(repr(u) for u in unknown)} for IBM device '{name}'; "
            f"accepted: {', '.join(ACCEPTED)}",
            key=unknown[0],
        )
    token = options.get("token")
    if token is not None and not isinstance(token, Secret):
        if not isinstance(token, str):
            raise ConfigError(f"expected a string, got {type(token).__name__}", key="token")
        token = Secret(token, origin="argument") if token else None
    channel = _str_or_none("channel", options.get("channel"))
    if channel == "ibm_quantum":
        raise ConfigError(
            "the 'ibm_quantum' channel was retired by IBM in 2025; use 'ibm_quantum_platform' "
            "(or 'ibm_cloud')",
            key="channel",
        )
    if channel is not None and channel not in CHANNELS and not (fake and channel == "local"):
        raise ConfigError(
            f"expected one of {', '.join(repr(c) for c in CHANNELS)}, got {channel!r}",
            key="channel",
        )
    engine = options.get("engine")
    if engine is not None and not fake:
        raise ConfigError(
            f"'engine' applies to fake backends only; '{name}' is a real backend", key="engine"
        )
    seed = options.get("seed")
    if seed is not None:
        if not fake:
            raise ConfigError(
                f"'seed' applies to simulators only; '{name}' is a real backend", key="seed"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"expected a non-negative integer, got {seed!r}", key="seed")
    limits = options.get("limits")
    if limits is not None and not isinstance(limits, DeviceLimits):
        raise ConfigError(
            f"expected multiqpu.DeviceLimits, got {type(limits).__name__}", key="limits"
        )
    return IBMOptions(
        account=_str_or_none("account", options.get("account")),
        token=token,
        instance=_str_or_none("instance", options.get("instance")),
        channel=channel,
        mode=_choice("mode", options.get("mode"), MODES, "job"),
        engine=_choice("engine", engine, ENGINES, "fast"),
        seed=seed,
        limits=limits,
    )
