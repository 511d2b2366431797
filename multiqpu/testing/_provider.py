"""Conformance tests for a provider object (what the ``multiqpu.providers`` entry point
names): its shape, its option checking, and that offline use stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import ClassVar

import pytest

from multiqpu.device import Device
from multiqpu.errors import ConfigError
from multiqpu.providers import ENTRY_POINT_GROUP, Provider

__all__ = ["ProviderConformance"]

_OFFLINE_SCRIPT = """
import asyncio, importlib, json, sys
module, _, attr = {target!r}.partition(":")
provider = getattr(importlib.import_module(module), attr)
after_import = sorted(m for m in {forbidden!r} if m in sys.modules)
from qiskit import QuantumCircuit
qc = QuantumCircuit(2, 2)
qc.h(0)
qc.cx(0, 1)
qc.measure([0, 1], [0, 1])
for name in {devices!r}:
    dev = provider.device(name)
    dev.num_qubits, dev.target, dev.calibration(), dev.estimate_cost([qc], 100)
    asyncio.run(dev.status())
    asyncio.run(dev.queue_estimate())
after_use = sorted(m for m in {forbidden!r} if m in sys.modules)
print(json.dumps({{"after_import": after_import, "after_use": after_use}}))
"""


class ProviderConformance:
    """Tests for one provider object; override the ``provider`` fixture."""

    #: devices that must work offline without the vendor SDK (None: ``default_devices()``)
    offline_devices: ClassVar[Sequence[str] | None] = None
    #: modules offline use must not import (besides ``provider.requires``)
    forbidden_modules: ClassVar[Sequence[str]] = ()

    @pytest.fixture
    def provider(self) -> Provider:
        raise NotImplementedError("override the `provider` fixture with your provider object")

    def test_is_a_provider(self, provider: Provider) -> None:
        assert isinstance(provider, Provider), "subclass multiqpu.Provider"
        assert isinstance(provider.name, str) and provider.name and ":" not in provider.name
        assert isinstance(provider.extra, str) and provider.extra
        assert all(isinstance(m, str) for m in provider.requires)

    def test_optional_attributes(self, provider: Provider) -> None:
        env = provider.env_options
        assert isinstance(env, Mapping)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        secret = provider.secret_options
        assert all(isinstance(s, str) for s in secret)

    def test_default_devices_are_known(self, provider: Provider) -> None:
        known = list(provider.known_devices())
        assert known, "known_devices() lists what can be built offline"
        assert set(provider.default_devices()) <= set(known)

    def test_builds_default_devices(self, provider: Provider) -> None:
        for name in provider.default_devices():
            dev = provider.device(name)
            assert isinstance(dev, Device)
            assert dev.spec == f"{provider.name}:{name}"

    def test_unknown_option_is_a_config_error(self, provider: Provider) -> None:
        name = self._some_device(provider)
        with pytest.raises(ConfigError, match="no_such_option"):
            provider.device(name, no_such_option=1)

    def test_registered_under_entry_point(self, provider: Provider) -> None:
        eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        assert provider.name in eps, (
            f"register the provider in pyproject.toml: [project.entry-points."
            f'"{ENTRY_POINT_GROUP}"] {provider.name} = "your_package:provider"'
        )

    def test_offline_use_does_not_import_vendor_sdk(self, provider: Provider) -> None:
        ep = {e.name: e for e in entry_points(group=ENTRY_POINT_GROUP)}.get(provider.name)
        if ep is None:
            pytest.skip("the provider is not registered under the entry point")
        devices = list(self.offline_devices or provider.default_devices())
        forbidden = sorted({*provider.requires, *self.forbidden_modules})
        script = _OFFLINE_SCRIPT.format(target=ep.value, forbidden=forbidden, devices=devices)
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["after_import"] == [], f"importing the provider loaded {report}"
        assert report["after_use"] == [], (
            f"building {devices} and reading target/calibration/cost/status/queue loaded "
            f"{report['after_use']}; only run/submit/transpile/retrieve may"
        )

    @staticmethod
    def _some_device(provider: Provider) -> str:
        names = list(provider.default_devices()) or list(provider.known_devices())
        if not names:
            pytest.skip("the provider lists no devices")
        return names[0]
