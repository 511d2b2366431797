"""Test helpers for multiqpu and for third-party provider adapters.

:class:`DeviceConformance` and :class:`ProviderConformance` are the provider conformance
suite (they need pytest): subclass them in your test suite and override the ``device`` /
``provider`` fixture, or run them from a shell against one device with
``multiqpu-conformance SPEC [--device-kwargs K=V ...]`` (``python -m
multiqpu.testing.conformance``). See ``docs/providers/writing-a-provider.md``. They load lazily, so
importing another helper module here (``multiqpu.testing.faults``) does not import pytest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiqpu.testing.conformance import DeviceConformance, ProviderConformance

__all__ = ["DeviceConformance", "ProviderConformance"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from multiqpu.testing import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module 'multiqpu.testing' has no attribute {name!r}")
