"""Provider discovery through the ``multiqpu.providers`` entry-point group.

A provider is any object satisfying :class:`Provider`. Third parties register theirs in
their own ``pyproject.toml``::

    [project.entry-points."multiqpu.providers"]
    acme = "multiqpu_acme:provider"

and ``multiqpu.device("acme:qpu1")`` then finds it. Loading a provider must be cheap: vendor
SDKs are imported when a device first needs them, not when the provider object is loaded.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from multiqpu.errors import ConfigError, MissingExtraError, UnknownProviderError

if TYPE_CHECKING:
    from multiqpu.device import Device

__all__ = ["ENTRY_POINT_GROUP", "Provider", "available_providers", "get_provider", "parse_spec"]

ENTRY_POINT_GROUP = "multiqpu.providers"


@runtime_checkable
class Provider(Protocol):
    """What a provider adapter exposes to the core."""

    #: short name used in specs ("ibm" in "ibm:fake_torino")
    name: str
    #: the pip extra that installs its vendor SDK ("ibm" -> pip install 'multiqpu[ibm]')
    extra: str
    #: importable top-level modules the provider needs
    requires: Sequence[str]

    def device(self, name: str, **options: Any) -> Device:
        """Build a device. ``options`` come from arguments or a config-file table."""
        ...

    def default_devices(self) -> Sequence[str]:
        """Device names this provider contributes to the embedded default fleet."""
        ...

    def known_devices(self) -> Sequence[str]:
        """Device names this provider can build offline (for listings and error messages)."""
        ...


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
        raise ConfigError(
            f"entry point '{name}' = '{ep.value}' does not provide a multiqpu Provider "
            "(needs name, extra, requires, device(), default_devices(), known_devices())"
        )
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
