"""Reading and checking a multiqpu config file (TOML) into plain validated pieces.

Private to :mod:`multiqpu.config`. Every error names the file and the dotted key and says
what was expected. Secret values are wrapped in :class:`~multiqpu.secrets.Secret` right after
parsing, before anything can fail, so no traceback (even one printed with local variables)
shows them; no message ever quotes the value of an unknown or secret key.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import stat
import tomllib
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from multiqpu.device import DeviceLimits
from multiqpu.errors import ConfigError, CredentialsError, MultiQPUError
from multiqpu.providers import Provider
from multiqpu.secrets import Secret

NAME_KEYS = ("backend", "arn", "name")
LIMIT_KEYS: Mapping[str, type] = {
    "max_shots": int,
    "max_circuits_per_job": int,
    "max_concurrent_jobs": int,
    "max_cost_usd": float,
}
#: options every provider accepts (CONTRACTS.md); ``limits`` is written as the keys above
COMMON_OPTIONS = frozenset({"limits", "seed"})
#: value types checked here for well-known options; anything else goes to the adapter as is
_STR_OPTIONS = frozenset(
    {
        "account",
        "instance",
        "channel",
        "mode",
        "engine",
        "aws_profile",
        "region",
        "s3_bucket",
        "s3_prefix",
    }
)
_INT_OPTIONS = frozenset({"seed", "num_qubits"})
_FLEET_KEYS: Mapping[str, str] = {
    "include_default": "true or false",
    "queue_time_scale": "a number >= 0",
}
_TOP_KEYS = ("devices", "engine", "fleet", "placement", "providers")
_ENGINE_KEYS = ("kind", "address", "num_cpus", "processes")
#: key names that always hold secrets, whatever the provider declares
_SECRET_NAME = re.compile(
    r"(^|_)(token|secret|password|passwd|passphrase|api_?key|secret_?key|access_key|credentials?)$"
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOML_POS = re.compile(
    r"^(?P<msg>.*) \((?P<pos>at line (?P<line>\d+), column (?P<col>\d+)|"
    r"at end of document)\)$"
)


def is_secret_key(key: str, provider: Provider | None = None) -> bool:
    """Whether the option ``key`` holds a secret (by name, or declared by the provider)."""
    if key.endswith("_env"):
        return False
    declared = provider.secret_options if provider is not None else ()
    return key in declared or bool(_SECRET_NAME.search(key))


def accepted_options(provider: Provider, name: str | None = None) -> frozenset[str] | None:
    """Option names ``provider.device(name, ...)`` accepts, or None when it cannot be told.

    Asked in order: ``provider.device_options(name)`` (by default ``provider.options``), then
    the keyword parameters of ``provider.device`` (None if it takes ``**options``).
    """
    declared = provider.device_options(name) if name is not None else None
    if declared is None:
        declared = provider.options
    if declared is not None:
        return frozenset(declared) | COMMON_OPTIONS
    try:
        params = list(inspect.signature(provider.device).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return frozenset(p.name for p in params[1:] if p.kind in kinds)


def suggest(key: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(key, sorted(set(choices)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def type_name(value: object) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        dict: "table",
        list: "array",
    }.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------- reading
def read_toml(path: Path) -> dict[str, Any]:
    """Parse ``path``. Secret-named string values come back already wrapped in Secret.

    Errors are raised outside the ``except`` blocks on purpose: the ConfigError then carries
    no chained exception, whose frames would hold the raw file text.
    """
    problem: str | None = None
    data: dict[str, Any] = {}
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        problem = _describe_toml_error(str(exc))
    except UnicodeDecodeError as exc:
        problem = f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8"
    except IsADirectoryError:
        problem = "this is a directory; point at the config.toml file inside it"
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror or exc}"
    if problem is not None:
        raise ConfigError(problem, source=str(path))
    wrap_secrets(data, str(path))
    return data


def _describe_toml_error(message: str) -> str:
    m = _TOML_POS.match(message)
    if m is None:
        return f"invalid TOML: {message}"
    where = f"line {m['line']}, column {m['col']}" if m["line"] else "the end of the file"
    return f"invalid TOML at {where}: {m['msg']}"


def wrap_secrets(node: Any, origin: str, prefix: str = "", provider: Provider | None = None) -> int:
    """Wrap secret-named string values of nested tables in Secret, in place; return how many."""
    count = 0
    if isinstance(node, dict):
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else key
            if isinstance(value, str) and is_secret_key(key, provider):
                node[key] = Secret(value, origin=f"{origin}: {dotted}")
                count += 1
            elif isinstance(value, Secret):
                count += 1
            elif isinstance(value, dict):
                count += wrap_secrets(value, origin, dotted, provider)
    return count


def check_private(path: Path, secret_keys: list[str]) -> None:
    """Refuse a file holding inline secrets that other users can read (POSIX only)."""
    if not secret_keys or os.name == "nt":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        keys = ", ".join(sorted(secret_keys))
        raise CredentialsError(
            f"{path} holds a secret inline ({keys}) but other users can read it "
            f"(mode {mode:04o}). Run: chmod 600 {path}  - or better, keep the secret out of "
            'the file: use a saved account (IBM: account = "name"), an AWS profile '
            '(aws_profile = "name") or an environment variable (token_env = "VAR")'
        )


# ---------------------------------------------------------------------------- checking
def check_top(data: Mapping[str, Any], source: str) -> None:
    for key, value in data.items():
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"unknown table; a config file has [devices.<label>], [providers.<name>], "
                f"[fleet], [engine] and [placement.<name>] tables{suggest(key, _TOP_KEYS)}",
                source=source,
                key=key,
            )
        if not isinstance(value, dict):
            raise ConfigError(
                f"expected a table, got {_article(type_name(value))}", source=source, key=key
            )


def check_fleet(table: Mapping[str, Any], source: str) -> tuple[bool | None, float | None]:
    for key in table:
        if key not in _FLEET_KEYS:
            raise ConfigError(
                f"unknown key; [fleet] accepts {', '.join(_FLEET_KEYS)}{suggest(key, _FLEET_KEYS)}",
                source=source,
                key=f"fleet.{key}",
            )
    include = table.get("include_default")
    if include is not None and not isinstance(include, bool):
        raise ConfigError(
            f"expected true or false, got {include!r} ({type_name(include)})",
            source=source,
            key="fleet.include_default",
        )
    scale = table.get("queue_time_scale")
    if scale is not None and (
        isinstance(scale, bool) or not isinstance(scale, int | float) or not scale >= 0
    ):
        raise ConfigError(
            f"expected a number >= 0 (1: real-world waits, 0: none), got {scale!r} "
            f"({type_name(scale)})",
            source=source,
            key="fleet.queue_time_scale",
        )
    return include, None if scale is None else float(scale)


def check_engine(table: Mapping[str, Any], source: str) -> tuple[str, str | None, int | None, int]:
    """The ``[engine]`` table: ``(kind, address, num_cpus, processes)``."""
    for key in table:
        if key not in _ENGINE_KEYS:
            raise ConfigError(
                f"unknown key; [engine] accepts {', '.join(_ENGINE_KEYS)}"
                f"{suggest(key, _ENGINE_KEYS)}",
                source=source,
                key=f"engine.{key}",
            )
    kind = table.get("kind", "local")
    if kind not in ("local", "ray"):
        raise ConfigError(
            f"expected 'local' or 'ray', got {kind!r}", source=source, key="engine.kind"
        )
    address = table.get("address")
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ConfigError(
            f'expected "auto" or "ray://host:10001", got {address!r}',
            source=source,
            key="engine.address",
        )
    counts: dict[str, int | None] = {}
    for name, low in (("num_cpus", 1), ("processes", 0)):
        value = table.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < low
        ):
            raise ConfigError(
                f"expected an integer >= {low}, got {value!r} ({type_name(value)})",
                source=source,
                key=f"engine.{name}",
            )
        counts[name] = value
    if kind == "local" and (address is not None or counts["num_cpus"] is not None):
        raise ConfigError('address and num_cpus are for kind = "ray"', source=source, key="engine")
    if kind == "ray" and counts["processes"] is not None:
        raise ConfigError('processes is for kind = "local"', source=source, key="engine")
    return kind, address, counts["num_cpus"], counts["processes"] or 0


def allowed_keys(provider: Provider, accepted: Collection[str] | None) -> set[str]:
    """Keys a device table of this provider may hold (None accepted: adapter unknown)."""
    env_options = provider.env_options
    secret_options = provider.secret_options
    options = set(accepted or ()) | set(env_options) | set(secret_options) | {"seed"}
    options.discard("limits")
    return options | {f"{o}_env" for o in options} | {"provider", *NAME_KEYS, *LIMIT_KEYS}


def check_options(
    table: Mapping[str, Any],
    provider: Provider,
    source: str,
    where: str,
    *,
    device_table: bool,
    name: str | None = None,
) -> dict[str, Any]:
    """Check one [devices.X] or [providers.X] table; return its options (minus provider, name
    and limit keys). ``where`` is the dotted key of the table, ``name`` the device's."""
    accepted = accepted_options(provider, name)
    allowed = allowed_keys(provider, accepted)
    if not device_table:
        allowed -= {"provider", *NAME_KEYS}
    options: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{where}.{key}"
        if key == "limits":
            raise ConfigError(
                "write limits as keys of the device table: " + ", ".join(LIMIT_KEYS),
                source=source,
                key=dotted,
            )
        base = key.removesuffix("_env")
        if not device_table and key in ("provider", *NAME_KEYS):
            raise ConfigError(
                f"a [providers.{provider.name}] table holds options shared by that provider's "
                "devices; name each device in its own [devices.<label>] table",
                source=source,
                key=dotted,
            )
        # accepted None: the adapter alone knows its options; it rejects unknown ones when
        # the device is built (and build_device adds a did-you-mean for config keys)
        if key not in allowed and accepted is not None:
            raise ConfigError(
                f"unknown key for provider '{provider.name}'"
                + (suggest(key, allowed) or f"; accepted keys: {', '.join(sorted(allowed))}"),
                source=source,
                key=dotted,
            )
        if key in ("provider", *NAME_KEYS, *LIMIT_KEYS):
            continue
        if key.endswith("_env"):
            if not isinstance(value, str) or not _ENV_NAME.match(value):
                raise ConfigError(
                    "expected the NAME of an environment variable (letters, digits, _), e.g. "
                    f'{key} = "MY_{base.upper()}"; the value itself is read from it',
                    source=source,
                    key=dotted,
                )
            if base in table:
                raise ConfigError(
                    f"set either '{base}' or '{key}', not both", source=source, key=dotted
                )
        elif is_secret_key(key, provider):
            if not isinstance(value, Secret):  # a non-string: do not quote it
                raise ConfigError(
                    f"expected a string, got {_article(type_name(value))}",
                    source=source,
                    key=dotted,
                )
        elif key in _STR_OPTIONS and not isinstance(value, str):
            raise ConfigError(
                f"expected a string, got {value!r} ({type_name(value)})", source=source, key=dotted
            )
        elif key in _INT_OPTIONS and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(
                f"expected an integer, got {value!r} ({type_name(value)})",
                source=source,
                key=dotted,
            )
        options[key] = value
    return options


def config_hint(key: str, provider: Provider) -> str:
    """A did-you-mean for an option an adapter rejected, among the keys the config layer
    itself consumes (which the adapter cannot know about)."""
    env_options = provider.env_options
    own = {"provider", *NAME_KEYS, *LIMIT_KEYS, *(f"{o}_env" for o in env_options)}
    return "" if key in own else suggest(key, own)


def check_limits(table: Mapping[str, Any], source: str, where: str) -> dict[str, Any]:
    given: dict[str, Any] = {}
    for key, kind in LIMIT_KEYS.items():
        if key not in table:
            continue
        value = table[key]
        dotted = f"{where}.{key}"
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"expected a positive integer, got {value!r} ({type_name(value)})",
                    source=source,
                    key=dotted,
                )
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(
                f"expected an amount in US dollars (a number >= 0), got {value!r} "
                f"({type_name(value)})",
                source=source,
                key=dotted,
            )
        given[key] = float(value) if kind is float else value
    return given


def make_limits(given: Mapping[str, Any]) -> DeviceLimits | None:
    return DeviceLimits(**given) if given else None


def device_name(table: Mapping[str, Any], provider: Provider, source: str, where: str) -> str:
    present = [k for k in NAME_KEYS if k in table]
    if len(present) > 1:
        raise ConfigError(
            f"give the device once, with one of {', '.join(NAME_KEYS)}; found "
            f"{' and '.join(present)}",
            source=source,
            key=f"{where}.{present[1]}",
        )
    if not present:
        try:
            known = ", ".join(provider.known_devices()) or "see the provider's docs"
        except MultiQPUError:
            known = "see the provider's docs"
        raise ConfigError(
            'missing the device: set backend = "..." (IBM, local), arn = "arn:aws:braket:'
            f'..." (Braket) or name = "..."; provider \'{provider.name}\' knows: {known}',
            source=source,
            key=where,
        )
    key = present[0]
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"expected a device name (a non-empty string), got {value!r}",
            source=source,
            key=f"{where}.{key}",
        )
    if key == "arn" and not value.startswith("arn:aws:braket:"):
        raise ConfigError(
            f"expected an Amazon Braket device ARN ('arn:aws:braket:...'), got {value!r}",
            source=source,
            key=f"{where}.{key}",
        )
    return value.strip()


def merge_options(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` wins; setting ``x`` drops an inherited ``x_env`` and the other way round."""
    merged = dict(base)
    for key, value in override.items():
        stem = key.removesuffix("_env")
        merged.pop(stem, None)
        merged.pop(f"{stem}_env", None)
        merged[key] = value
    return merged


def iter_tables(
    data: Mapping[str, Any], name: str, source: str
) -> Iterable[tuple[str, dict[str, Any]]]:
    for label, table in data.get(name, {}).items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"expected a table [{name}.{label}], got {_article(type_name(table))}",
                source=source,
                key=f"{name}.{label}",
            )
        yield label, table
