"""The one precedence rule for device options: argument > environment > file > default.

Private to :mod:`multiqpu.config` (which re-exports :func:`resolve_options`).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from multiqpu import _config_parse as _p
from multiqpu.errors import ConfigError
from multiqpu.providers import Provider
from multiqpu.secrets import Secret

__all__ = ["ResolvedOptions", "resolve_options"]


@dataclass(frozen=True)
class ResolvedOptions:
    """Options ready for ``provider.device(name, **options)`` and where each came from
    (``"argument"``, ``"env VAR"``, ``"<file>: devices.<label>.<key>"``)."""

    options: Mapping[str, Any]
    sources: Mapping[str, str]


class _Environ(Mapping[str, str]):
    """A read-only view of the environment whose repr shows nothing (tracebacks printed with
    local variables would otherwise show every variable, credentials included)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ

    def __getitem__(self, key: str) -> str:
        return self._env[key]

    def __iter__(self) -> Any:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)

    def __repr__(self) -> str:
        return "<environment>"


def resolve_options(
    provider: Provider,
    file_options: Mapping[str, Any] | None = None,
    explicit_options: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    source: str | None = None,
    label: str | None = None,
    inherited: Collection[str] = (),
) -> ResolvedOptions:
    """Merge one device's options: explicit > environment > file > (adapter default).

    * ``file_options``: the file layer; ``x_env = "VAR"`` there means "x is the value of the
      environment variable VAR" (an error if VAR is unset, unless a higher layer sets x).
    * environment: ``provider.env_options`` (option -> variable); empty variables are unset.
    * ``explicit_options``: keyword arguments; ``None`` values count as not given.
    * every option in ``provider.secret_options`` (or named like a secret) that is a string
      becomes a :class:`~multiqpu.Secret` remembering its origin.

    ``inherited`` names the file options that came from the ``[providers.<name>]`` table (for
    the sources only).
    """
    env = _Environ(os.environ if environ is None else environ)
    del environ  # keep the raw mapping out of this frame's locals
    where = f"devices.{label}" if label else "options"
    origin = f"{source}: {where}" if source else "file"
    shared = f"{source}: providers.{provider.name}" if source else "file"
    options: dict[str, Any] = {}
    sources: dict[str, str] = {}
    missing: dict[str, tuple[str, str]] = {}  # option -> (file key, variable)

    for key, value in (file_options or {}).items():
        table = shared if key in inherited else origin
        if key.endswith("_env") and isinstance(value, str):
            base = key.removesuffix("_env")
            got = _from_env(env, value, base, provider, f"env {value}")
            if got is None:
                missing[base] = (key, value)
            else:
                options[base], sources[base] = got, f"{table}.{key} (env {value})"
        else:
            options[key], sources[key] = value, f"{table}.{key}"

    for option, var in provider.env_options.items():
        got = _from_env(env, var, option, provider, f"env {var}")
        if got is not None:
            options[option], sources[option] = got, f"env {var}"
            missing.pop(option, None)

    for key, value in (explicit_options or {}).items():
        if value is None:
            continue
        options[key], sources[key] = value, "argument"
        missing.pop(key, None)

    if missing:
        option, (key, var) = next(iter(missing.items()))
        raise ConfigError(
            f"the environment variable {var} is not set (the config reads '{option}' from it); "
            f"set it, e.g. export {var}=..., or remove {key}",
            source=source or "options",
            key=f"{where}.{key}",
        )

    for key, value in options.items():
        if isinstance(value, str) and _p.is_secret_key(key, provider):
            options[key] = Secret(value, origin=sources[key])
    return ResolvedOptions(MappingProxyType(options), MappingProxyType(sources))


def _from_env(
    env: Mapping[str, str], var: str, option: str, provider: Provider, origin: str
) -> str | Secret | None:
    """The variable's value (a Secret for secret options), or None if unset or empty."""
    if not env.get(var):
        return None
    if _p.is_secret_key(option, provider):
        return Secret(env[var], origin=origin)
    return env[var]
