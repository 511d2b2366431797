"""Provider discovery through the ``multiqpu.providers`` entry-point group.

A provider is an instance of a :class:`Provider` subclass. Third parties register theirs in
their own ``pyproject.toml``::

    [project.entry-points."multiqpu.providers"]
    acme = "multiqpu_acme:provider"

and ``multiqpu.device("acme:qpu1")`` then finds it. Loading a provider must be cheap: vendor
SDKs are imported when a device first needs them, not when the provider object is loaded.
"""

from __future__ import annotations

import abc
import importlib.util
from collections.abc import Collection, Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from multiqpu.errors import ConfigError, MissingExtraError, UnknownProviderError

if TYPE_CHECKING:
    from multiqpu.device import Device

__all__ = ["ENTRY_POINT_GROUP", "Provider", "available_providers", "get_provider", "parse_spec"]

ENTRY_POINT_GROUP = "multiqpu.providers"


class Provider(abc.ABC):
    """What a provider adapter exposes to the core: subclass it.

    Required: ``name``, ``extra``, :meth:`device` and :meth:`known_devices`. Everything else
    has a default: ``requires`` (nothing), ``env_options`` (none), ``secret_options`` (none),
    ``options`` (not declared), :meth:`device_options` (``options``) and
    :meth:`default_devices` (none). The core reads these attributes directly.
    """

    #: short name used in specs ("ibm" in "ibm:fake_torino"); no colon
    name: ClassVar[str]
    #: the pip extra that installs its vendor SDK ("ibm" -> pip install 'multiqpu[ibm]')
    extra: ClassVar[str]
    #: importable top-level modules the provider needs (checked before ``device()``)
    requires: Sequence[str] = ()
    #: option name -> environment variable that supplies it, e.g. ``{"token": "ACME_TOKEN"}``
    env_options: Mapping[str, str] = MappingProxyType({})
    #: options holding secrets; they reach ``device()`` wrapped in :class:`multiqpu.Secret`
    secret_options: Sequence[str] = ()
    #: option names every device accepts (None: not declared; see :meth:`device_options`)
    options: Collection[str] | None = None

    @abc.abstractmethod
    def device(self, name: str, **options: Any) -> Device:
        """Build a device. ``options`` come from arguments or a config-file table; unknown
        names and options raise :class:`~multiqpu.ConfigError`."""

    @abc.abstractmethod
    def known_devices(self) -> Sequence[str]:
        """Device names this provider can build offline (for listings and error messages)."""

    def default_devices(self) -> Sequence[str]:
        """Device names this provider contributes to the embedded default fleet (offline
        ones only)."""
        return ()

    def device_options(self, name: str) -> Collection[str] | None:
        """Options ``device(name, ...)`` accepts; None when not declared (the config layer
        then reads the keyword parameters of :meth:`device`)."""
        return self.options

    def __repr__(self) -> str:
        return f"<multiqpu provider {self.name!r}>"


class _Adopted(Provider):
    """A provider object written before :class:`Provider` was a base class (it has the
    attributes but does not subclass it), with the defaults filled in once, at load."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.extra = inner.extra  # type: ignore[misc]
        self.requires = tuple(getattr(inner, "requires", ()) or ())
        self.env_options = dict(getattr(inner, "env_options", None) or {})
        self.secret_options = tuple(getattr(inner, "secret_options", ()) or ())
        self.options = getattr(inner, "options", None)

    def device(self, name: str, **options: Any) -> Device:
        return self._inner.device(name, **options)

    def known_devices(self) -> Sequence[str]:
        return list(self._inner.known_devices())

    def default_devices(self) -> Sequence[str]:
        found = getattr(self._inner, "default_devices", None)
        return list(found()) if callable(found) else []

    def device_options(self, name: str) -> Collection[str] | None:
        found = getattr(self._inner, "device_options", None)
        declared = found(name) if callable(found) else None
        return declared if declared is not None else self.options


_REQUIRED = ("name", "extra", "device", "known_devices")


@cache
def _entry_points() -> Mapping[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_providers() -> list[str]:
    """Names of every registered provider, installed extras or not."""
    return sorted(_entry_points())


def check_requirements(provider: Provider) -> None:
    """Raise :class:`MissingExtraError` if a module the provider needs is not installed."""
    for module in provider.requires:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(provider.name, provider.extra, module)


_loaded: dict[str, Provider] = {}


def get_provider(name: str) -> Provider:
    """Load the provider registered as ``name`` (raises a clear error when there is none)."""
    if name in _loaded:
        return _loaded[name]
    eps = _entry_points()
    ep = eps.get(name)
    if ep is None:
        known = ", ".join(sorted(eps)) or "none (is multiqpu installed with pip?)"
        raise UnknownProviderError(
            f"unknown provider '{name}'; registered providers: {known}. Third-party providers "
            f"register under the entry-point group '{ENTRY_POINT_GROUP}'"
        )
    try:
        provider = ep.load()
    except ImportError as exc:  # the adapter package itself failed to import
        raise MissingExtraError(name, name, exc.name or str(exc)) from exc
    if not isinstance(provider, Provider):
        if not all(hasattr(provider, attr) for attr in _REQUIRED):
            raise ConfigError(
                f"entry point '{name}' = '{ep.value}' does not provide a multiqpu Provider "
                "(subclass multiqpu.Provider: name, extra, device(), known_devices())"
            )
        provider = _Adopted(provider)
    _loaded[name] = provider
    return provider


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``"provider:name"``; raise :class:`ConfigError` for anything else."""
    if not isinstance(spec, str):
        raise ConfigError(f"a device spec is a string like 'ibm:fake_torino', got {spec!r}")
    provider, sep, name = spec.strip().partition(":")
    if not sep or not provider or not name:
        raise ConfigError(
            f"bad device spec {spec!r}: expected 'provider:name', e.g. 'ibm:fake_torino', "
            "'braket:emulator' or 'local:ideal'"
        )
    return provider, name
