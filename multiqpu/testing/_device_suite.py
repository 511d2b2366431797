"""The conformance suite as a pytest module for one device, run by ``multiqpu-conformance``.

The device comes from the environment variable :data:`DEVICE_VAR`: JSON
``{"spec": ..., "options": {...}, "shots": int | null}`` written by
:mod:`multiqpu.testing._command`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from multiqpu.device import Device
from multiqpu.providers import Provider, get_provider
from multiqpu.testing.conformance import DeviceConformance, ProviderConformance

__all__ = ["DEVICE_VAR", "TestDevice", "TestProvider"]

DEVICE_VAR = "MULTIQPU_CONFORMANCE_DEVICE"


def _request() -> dict[str, Any]:
    text = os.environ.get(DEVICE_VAR)
    if not text:
        raise RuntimeError(f"{DEVICE_VAR} is not set: run this suite with multiqpu-conformance")
    request: dict[str, Any] = json.loads(text)
    return request


_built: dict[str, Device] = {}


def _device() -> Device:
    """The device under test, built once per request (its caches are kept between checks)."""
    key = os.environ.get(DEVICE_VAR, "")
    if key not in _built:
        from multiqpu.config import make_device

        request = _request()
        _built.clear()
        _built[key] = make_device(request["spec"], request["options"])
    return _built[key]


class TestDevice(DeviceConformance):
    @property
    def shots(self) -> int:  # type: ignore[override]
        return int(_request().get("shots") or DeviceConformance.shots)

    @pytest.fixture
    def device(self) -> Device:
        return _device()


class TestProvider(ProviderConformance):
    @pytest.fixture
    def provider(self) -> Provider:
        return get_provider(_device().provider)
