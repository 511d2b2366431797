"""multiqpu provider adapter for IBM Quantum (qiskit-ibm-runtime).

``multiqpu.device("ibm:fake_torino")`` is an offline fake backend with a real calibration
snapshot; ``multiqpu.device("ibm:ibm_torino", account="work")`` is the real QPU. Importing
this package, listing devices and reading fake-backend calibrations never import
qiskit-ibm-runtime (a 1-4 s import); running does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from multiqpu.provider_api import Provider
from multiqpu_ibm._device import IBMDevice
from multiqpu_ibm._options import ACCEPTED, parse_options, unknown_device
from multiqpu_ibm._snapshots import fake_backend_names

__all__ = ["IBMDevice", "IBMProvider", "provider"]


class IBMProvider(Provider):
    """The ``ibm`` provider: 68 offline fake backends plus any real IBM Quantum backend."""

    name = "ibm"
    extra = "ibm"
    requires: Sequence[str] = ("qiskit_ibm_runtime",)
    env_options: Mapping[str, str] = {
        "token": "QISKIT_IBM_TOKEN",
        "instance": "QISKIT_IBM_INSTANCE",
        "channel": "QISKIT_IBM_CHANNEL",
    }
    secret_options: Sequence[str] = ("token",)

    def device(self, name: str, **options: Any) -> IBMDevice:
        """Build a device: a fake backend (``"fake_torino"``) or a real one (``"ibm_torino"``).
        Options: account, token, instance, channel, mode, engine, seed, limits."""
        fake = name.startswith("fake_")
        if fake and name not in fake_backend_names():
            raise unknown_device(name, fake_backend_names())
        parsed = parse_options(name, options, fake=fake)
        if fake:
            from multiqpu_ibm._fake_device import FakeIBMDevice

            return FakeIBMDevice(name, parsed)
        return IBMDevice(name, parsed)

    #: option names every IBM device accepts (the config layer's "did you mean" uses them)
    options: frozenset[str] = frozenset(ACCEPTED)

    def default_devices(self) -> Sequence[str]:
        return ["fake_torino", "fake_marrakesh", "fake_kyiv", "fake_manila"]

    def known_devices(self) -> Sequence[str]:
        """Every fake backend shipped with the installed qiskit-ibm-runtime (found by listing
        its snapshot folder, without importing it)."""
        return list(fake_backend_names())


provider = IBMProvider()
