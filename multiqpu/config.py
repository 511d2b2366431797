"""Config files, option precedence and credentials.

Where the file is (first match wins):

1. the ``path`` argument,
2. the ``MULTIQPU_CONFIG`` environment variable,
3. ``config.toml`` in the user config directory (:func:`user_config_file`, via platformdirs),
4. none: the embedded default fleet (:meth:`multiqpu.Fleet.local`).

Every device option is resolved by ONE function, :func:`resolve_options`, used both for the
devices a file declares and by :func:`multiqpu.device`::

    explicit argument  >  environment (provider.env_options)  >  file  >  adapter default

The file layer is the device's ``[devices.<label>]`` table over its ``[providers.<name>]``
table. Options a provider lists in ``secret_options`` (and keys named like secrets, such as
``token``) become :class:`~multiqpu.Secret` whatever layer they come from. A file holding a
secret inline must be private to its owner (``chmod 600``). See docs/configuration.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from multiqpu import _config_parse as _p
from multiqpu._config_resolve import ResolvedOptions, resolve_options
from multiqpu.device import DeviceLimits
from multiqpu.errors import ConfigError, MultiQPUError
from multiqpu.providers import Provider, check_requirements, get_provider, parse_spec
from multiqpu.secrets import Secret

if TYPE_CHECKING:
    from multiqpu.device import Device

__all__ = [
    "ENV_VAR",
    "Config",
    "DeviceConfig",
    "EngineConfig",
    "FleetConfig",
    "ResolvedOptions",
    "build_device",
    "config_path",
    "load_config",
    "load_devices",
    "make_device",
    "resolve_options",
    "user_config_file",
]

#: environment variable naming the config file
ENV_VAR = "MULTIQPU_CONFIG"

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- value objects
@dataclass(frozen=True)
class FleetConfig:
    """The ``[fleet]`` table. ``include_default``: also add the embedded default devices
    (default: only when the file declares no devices); ``queue_time_scale``: speed factor of
    the default devices' simulated queues."""

    include_default: bool = True
    queue_time_scale: float | None = None


@dataclass(frozen=True)
class EngineConfig:
    """The ``[engine]`` table (see :mod:`multiqpu.engine`): ``kind`` ("local" or "ray"),
    ``address`` (ray: "auto" or "ray://host:10001"; None: a local instance), ``num_cpus``
    (ray, local instance), ``processes`` (local: worker processes, 0: in-process)."""

    kind: str = "local"
    address: str | None = None
    num_cpus: int | None = None
    processes: int = 0


@dataclass(frozen=True)
class DeviceConfig:
    """One ``[devices.<label>]`` table, checked. ``options`` is the file layer (the device
    table over its ``[providers.<name>]`` table): secrets as :class:`~multiqpu.Secret`,
    ``<option>_env`` references kept as written (read when the device is built)."""

    label: str
    provider: str
    name: str
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    limits: DeviceLimits | None = None
    source: str | None = None
    #: option keys inherited from the ``[providers.<name>]`` table
    inherited: frozenset[str] = frozenset()

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    def build(self, environ: Mapping[str, str] | None = None, **explicit: Any) -> Device:
        """The device, with ``explicit`` options over the environment over this table."""
        file_options = dict(self.options)
        if self.limits is not None:
            file_options["limits"] = self.limits
        return build_device(
            self.provider,
            self.name,
            file_options=file_options,
            explicit=explicit,
            environ=environ,
            source=self.source,
            label=self.label,
            inherited=self.inherited,
        )


@dataclass(frozen=True)
class Config:
    """A parsed config file (``path`` None: no file; the embedded default fleet)."""

    path: Path | None
    devices: tuple[DeviceConfig, ...] = ()
    fleet: FleetConfig = FleetConfig()
    engine: EngineConfig = EngineConfig()

    def get(self, key: str) -> DeviceConfig | None:
        """The declared device with this label or spec (``"ibm:ibm_torino"``), if any."""
        for dc in self.devices:
            if key in (dc.label, dc.spec):
                return dc
        return None


# ---------------------------------------------------------------------------- locating
def user_config_file() -> Path:
    """``config.toml`` in the per-user config directory (it may not exist):
    Linux ``~/.config/multiqpu/`` (or ``$XDG_CONFIG_HOME/multiqpu/``), macOS
    ``~/Library/Application Support/multiqpu/``, Windows ``%LOCALAPPDATA%\\multiqpu\\multiqpu\\``.
    """
    import platformdirs

    return platformdirs.user_config_path("multiqpu") / "config.toml"


def config_path(path: str | PathLike[str] | None = None) -> Path | None:
    """The config file in effect: ``path`` > ``$MULTIQPU_CONFIG`` > the user config file >
    None. A file named by ``path`` or the environment must exist."""
    if path is not None:
        found = Path(path).expanduser()
        if not found.exists():
            raise ConfigError("no such config file", source=str(found))
        return found
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        found = Path(env).expanduser()
        if not found.exists():
            raise ConfigError(
                f"the environment variable {ENV_VAR} names this file, which does not exist; "
                f"create it or unset {ENV_VAR}",
                source=str(found),
            )
        return found
    user = user_config_file()
    return user if user.is_file() else None


# ---------------------------------------------------------------------------- loading
def load_config(path: str | PathLike[str] | None = None) -> Config:
    """Read and check the config file (see :func:`config_path`). Does not build devices,
    import vendor SDKs or read ``<option>_env`` variables: that happens in :meth:`build`."""
    found = config_path(path)
    if found is None:
        return Config(path=None)
    try:
        return _load(found)
    except MultiQPUError as exc:
        error = exc
    # Raised afresh from here: the frames below hold the parsed file (an unknown key may hold
    # a secret under a name nobody could recognise), and a traceback printed with local
    # variables would show them. The message already names the file and the key.
    raise error.with_traceback(None)


def _load(found: Path) -> Config:
    source = str(found)
    data = _p.read_toml(found)
    _p.check_private(found, _inline_secrets(data))  # refuse early: secrets named as such
    _p.check_top(data, source)
    if isinstance(data.get("placement"), dict):
        from multiqpu.placement import parse_placements

        parse_placements(data["placement"], source)
    providers: dict[str, Provider] = {}

    def provider_for(name: object, key: str) -> Provider:
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"expected a provider name such as 'ibm', 'braket' or 'local', got {name!r}",
                source=source,
                key=key,
            )
        if name not in providers:
            try:
                providers[name] = get_provider(name)
            except ConfigError as exc:
                _located(exc, source, key)
                raise
        return providers[name]

    shared: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for pname, table in _p.iter_tables(data, "providers", source):
        provider = provider_for(pname, f"providers.{pname}")
        _p.wrap_secrets(table, source, f"providers.{pname}", provider)
        where = f"providers.{pname}"
        options = _p.check_options(table, provider, source, where, device_table=False)
        shared[pname] = (options, _p.check_limits(table, source, where))

    devices: list[DeviceConfig] = []
    for label, table in _p.iter_tables(data, "devices", source):
        where = f"devices.{label}"
        if "provider" not in table:
            raise ConfigError(
                'missing \'provider\' (e.g. provider = "ibm", "braket" or "local")',
                source=source,
                key=where,
            )
        provider = provider_for(table["provider"], f"{where}.provider")
        _p.wrap_secrets(table, source, where, provider)
        name = _p.device_name(table, provider, source, where)
        options = _p.check_options(table, provider, source, where, device_table=True, name=name)
        base_options, base_limits = shared.get(provider.name, ({}, {}))
        merged = _p.merge_options(base_options, options)
        limits = {**base_limits, **_p.check_limits(table, source, where)}
        dc = DeviceConfig(
            label=label,
            provider=provider.name,
            name=name,
            options=MappingProxyType(merged),
            limits=_p.make_limits(limits),
            source=source,
            inherited=frozenset(k for k in merged if k not in options),
        )
        twin = next((d for d in devices if d.spec == dc.spec), None)
        if twin is not None:
            raise ConfigError(
                f"device '{dc.spec}' is declared twice, as [devices.{twin.label}] and "
                f"[devices.{label}]; keep one",
                source=source,
                key=where,
            )
        devices.append(dc)

    _p.check_private(found, _inline_secrets(data))  # again: secrets the providers declare
    include, scale = _p.check_fleet(data.get("fleet", {}), source)
    fleet = FleetConfig(
        include_default=not devices if include is None else include, queue_time_scale=scale
    )
    engine = EngineConfig(*_p.check_engine(data.get("engine", {}), source))
    return Config(path=found, devices=tuple(devices), fleet=fleet, engine=engine)


def _inline_secrets(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    found: list[str] = []
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Secret):
            found.append(dotted)
        elif isinstance(value, dict):
            found += _inline_secrets(value, dotted)
    return found


def _located(
    exc: ConfigError, source: str | None, table: str | None, hint: str = ""
) -> ConfigError:
    """``exc`` (same object, same class) with the file and the full dotted key in front of its
    message; an adapter's ``key='seed'`` becomes ``devices.<label>.seed``."""
    if source is None or exc.source is not None:
        return exc
    text, key = str(exc), table
    if exc.key:
        text = text.removeprefix(f"key '{exc.key}': ")
        key = f"{table}.{exc.key}" if table and not exc.key.startswith(table) else exc.key
    exc.source, exc.key = source, key
    where = f"{source}: key '{key}': " if key else f"{source}: "
    exc.args = (where + text + hint, *exc.args[1:])
    return exc


def load_devices(path: str | PathLike[str] | None = None) -> list[Device]:
    """The devices the config file declares (after the embedded default fleet's, when the
    file includes it), or the embedded default fleet's devices without a file."""
    from multiqpu.pool import local_devices

    config = load_config(path)
    if config.path is None:
        return local_devices()
    built = [dc.build() for dc in config.devices]
    declared = {d.spec for d in built}
    devices: list[Device] = []
    if config.fleet.include_default:
        default = local_devices(time_scale=config.fleet.queue_time_scale)
        devices += [d for d in default if d.spec not in declared]  # the file's own wins
    devices += built
    return devices


# ---------------------------------------------------------------------------- building
def build_device(
    provider_name: str,
    name: str,
    *,
    file_options: Mapping[str, Any] | None = None,
    explicit: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    source: str | None = None,
    label: str | None = None,
    inherited: Collection[str] = (),
) -> Device:
    """Build one device through :func:`resolve_options`. Errors from a config-declared
    device name the file and the ``[devices.<label>]`` table.

    Options from the environment and from a ``[providers.<name>]`` table are ambient: they
    apply to the devices that take them (``AWS_PROFILE`` means nothing to Braket's local
    emulator). Explicit arguments and the device's own table always reach the adapter.
    """
    key = f"devices.{label}" if label else None
    provider: Provider | None = None
    try:
        provider = get_provider(provider_name)
        check_requirements(provider)
        resolved = resolve_options(
            provider,
            file_options,
            explicit,
            environ,
            source=source,
            label=label,
            inherited=inherited,
        )
        ambient = {
            k
            for k, where in resolved.sources.items()
            if where.startswith("env ")
            or (where != "argument" and (k in inherited or f"{k}_env" in inherited))
        }
        _log.debug(
            "building %s:%s with options %s (from %s)",
            provider_name,
            name,
            dict(resolved.options),
            dict(resolved.sources),
        )
        return _build_fitting(provider, name, dict(resolved.options), ambient)
    except ConfigError as exc:
        hint = _p.config_hint(exc.key, provider) if exc.key and provider is not None else ""
        _located(exc, source, key, hint)
        raise
    except MultiQPUError as exc:
        if source is not None:
            exc.add_note(f"(device [{key}] of {source})")
        raise


def _build_fitting(
    provider: Provider, name: str, options: dict[str, Any], ambient: set[str]
) -> Device:
    """``provider.device(name, **options)`` without the ambient options the device does not
    take: those outside its declared options, or (undeclared) those it rejects as not
    accepted (CONTRACTS: an unknown option raises ConfigError naming it and listing the
    accepted ones); a rejected value of an option it does take still raises."""
    accepted = _p.accepted_options(provider, name)
    if accepted is not None:
        for k in sorted(ambient & set(options) - accepted):
            _log.debug("%s:%s does not take '%s'; not passing it", provider.name, name, k)
            del options[k]
    while True:
        try:
            built = provider.device(name, **options)
            # what rebuilds it in another process (multiqpu.engine: simulators on Ray)
            built.build_recipe = (provider.name, name, dict(options))  # type: ignore[attr-defined]
            return built
        except ConfigError as exc:
            rejected = exc.key
            if accepted is not None or rejected not in ambient or rejected not in options:
                raise
            if "accept" not in str(exc).lower():
                raise
        _log.debug("%s:%s does not take '%s'; not passing it", provider.name, name, rejected)
        del options[rejected]


def make_device(spec: str, options: Mapping[str, Any] | None = None) -> Device:
    """What :func:`multiqpu.device` does: ``spec`` is ``"provider:name"`` or the label of a
    device in the config file; the config file's table for that device (if any) is the file
    layer under ``options`` and the environment."""
    config = load_config()
    text = spec.strip() if isinstance(spec, str) else spec
    declared = config.get(text) if isinstance(text, str) else None
    if declared is None:
        provider_name, name = _parse(text, config)
        return build_device(provider_name, name, explicit=options)
    return declared.build(**(options or {}))


def _parse(spec: Any, config: Config) -> tuple[str, str]:
    try:
        return parse_spec(spec)
    except ConfigError as exc:
        if config.devices:
            labels = ", ".join(dc.label for dc in config.devices)
            exc.args = (f"{exc}; or a device label from {config.path}: {labels}",)
        raise
