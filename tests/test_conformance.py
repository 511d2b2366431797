"""Every adapter shipped with multiqpu passes the public conformance suite.

Devices are collected from the providers that are implemented (their package exports
``provider``); an adapter package that is still a stub is reported as skipped, and runs
here as soon as it exports ``provider``.
"""

from __future__ import annotations

import importlib
import re
import types
from pathlib import Path
from typing import Any

import pytest
from multiqpu_local import IdealSimulator, NoisySimulator
from multiqpu_local._profile import uniform_profile

import multiqpu
from multiqpu import Calibration, CircuitResult
from multiqpu import providers as registry
from multiqpu.pool import local_devices
from multiqpu.providers import Provider, get_provider
from multiqpu.testing import DeviceConformance, ProviderConformance
from multiqpu.testing._command import main as conformance_main
from multiqpu.testing._command import parse_kwargs

# (spec, options, id); the noisy local device emulates a real calibration snapshot.
DEVICES: list[tuple[str, dict[str, Any], str]] = [
    ("local:ideal", {"num_qubits": 5, "seed": 11}, "local-ideal"),
    ("local:noisy", {"calibration": "ibm:fake_manila", "seed": 12}, "local-noisy-manila"),
    ("local:noisy", {"calibration": "braket:emulator", "seed": 17}, "local-noisy-braket"),
    ("local:noisy", {"num_qubits": 4, "seed": 13}, "local-noisy-uniform"),
    ("ibm:fake_manila", {"seed": 14}, "ibm-fake_manila"),
    ("ibm:fake_torino", {"seed": 15}, "ibm-fake_torino"),
    ("braket:sv", {}, "braket-sv"),
    ("braket:emulator", {"seed": 16}, "braket-emulator"),
]
PROVIDERS = ["local", "ibm", "braket"]


def _implemented(provider: str) -> bool:
    """True once the adapter package exports its ``provider`` object."""
    module = importlib.import_module(f"multiqpu_{provider}")
    return hasattr(module, "provider")


def _needs(spec: str, options: dict[str, Any]) -> list[str]:
    names = {spec.partition(":")[0]}
    calibration = options.get("calibration")
    if isinstance(calibration, str) and ":" in calibration:
        names.add(calibration.partition(":")[0])
    return sorted(names)


def _param(spec: str, options: dict[str, Any], ident: str) -> Any:
    missing = [p for p in _needs(spec, options) if not _implemented(p)]
    marks = (
        [pytest.mark.skip(reason=f"adapter(s) {missing} not implemented yet")] if missing else []
    )
    return pytest.param((spec, options), id=ident, marks=marks)


class TestDevices(DeviceConformance):
    @pytest.fixture(params=[_param(*d) for d in DEVICES])
    def device(self, request: pytest.FixtureRequest) -> multiqpu.Device:
        spec, options = request.param
        return multiqpu.device(spec, **options)


class TestProviders(ProviderConformance):
    @pytest.fixture(
        params=[
            pytest.param(
                name,
                marks=[] if _implemented(name) else [pytest.mark.skip(reason="not implemented")],
            )
            for name in PROVIDERS
        ]
    )
    def provider(self, request: pytest.FixtureRequest) -> Provider:
        return get_provider(request.param)


# ---------------------------------------------------------------- the default fleet
#: the default fleet's queue models, scaled so that a job waits microseconds, not seconds
FLEET_TIME_SCALE = 1e-6
_FLEET: dict[bool, list[multiqpu.Device]] = {}


def _fleet(queued: bool) -> list[multiqpu.Device]:
    if queued not in _FLEET:
        _FLEET[queued] = local_devices(queues=queued, time_scale=FLEET_TIME_SCALE)
    return _FLEET[queued]


class TestDefaultFleet(DeviceConformance):
    """Every device of the embedded default fleet, behind its simulated queue and bare."""

    @pytest.fixture(
        params=[
            pytest.param((queued, i), id=f"{'queued-' if queued else ''}{d.spec}")
            for queued in (True, False)
            for i, d in enumerate(_fleet(queued))
        ],
    )
    def device(self, request: pytest.FixtureRequest) -> multiqpu.Device:
        queued, index = request.param
        return _fleet(queued)[index]


def test_default_fleet_devices_say_they_are_simulators() -> None:
    for queued in (True, False):
        for device in _fleet(queued):
            assert device.simulator, device.spec


# ---------------------------------------------------------------- the command
def test_command_parses_device_kwargs() -> None:
    assert parse_kwargs(["seed=1", "p=0.5", "on=true", "x=none", "name=a:b"]) == {
        "seed": 1,
        "p": 0.5,
        "on": True,
        "x": None,
        "name": "a:b",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_kwargs(["seed"])


def test_command_passes_a_good_device(capsys: pytest.CaptureFixture[str]) -> None:
    code = conformance_main(["local:ideal", "--device-kwargs", "num_qubits=3", "seed=1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASS  device.bit_order" in out and "local:ideal: 29 passed, 0 failed" in out


class _ReversedProvider(Provider):
    name = "reversed"
    extra = "reversed"

    def device(self, name: str, **options: Any) -> multiqpu.Device:
        dev = _ReversedKeys(3, seed=1)
        dev.provider = "reversed"
        return dev

    def known_devices(self) -> list[str]:
        return ["qpu"]


def test_command_fails_a_bad_device(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry._loaded, "reversed", _ReversedProvider())
    code = conformance_main(["reversed:qpu"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  device.bit_order" in out and "rightmost" in out
    assert "PASS  device.identity" in out


def test_command_reports_a_device_it_cannot_build(capsys: pytest.CaptureFixture[str]) -> None:
    assert conformance_main(["nope:x"]) == 1
    assert "unknown provider 'nope'" in capsys.readouterr().err


# ---------------------------------------------------------------- the suite has teeth
class _ReversedKeys(IdealSimulator):
    """Counts keys in the wrong bit order (clbit 0 leftmost)."""

    def _run_circuit(self, circuit: Any, shots: int | None, seed: int) -> CircuitResult:
        result = super()._run_circuit(circuit, shots, seed)
        return CircuitResult({k[::-1]: v for k, v in result.counts.items()}, result.shots)


class _Overclaims(NoisySimulator):
    """Simulates heavy noise but reports an ideal calibration."""

    def calibration(self) -> Calibration:
        return Calibration.ideal(self.num_qubits)


class _MicrosecondT1(IdealSimulator):
    def calibration(self) -> Calibration:
        return Calibration.uniform(self.num_qubits, t1=120.0, t2=80.0)  # µs, not s


def test_suite_catches_wrong_bit_order() -> None:
    with pytest.raises(AssertionError, match="rightmost"):
        DeviceConformance().test_bit_order(_ReversedKeys(3, seed=1))


def test_suite_catches_an_overclaimed_calibration() -> None:
    noisy = _Overclaims(uniform_profile(2, 0.2, 0.01, 0.2), seed=1)
    with pytest.raises(AssertionError, match="P\\(00\\)\\+P\\(11\\)"):
        DeviceConformance().test_bell_correlation(noisy)


def test_suite_catches_times_in_the_wrong_unit() -> None:
    with pytest.raises(AssertionError, match="seconds"):
        DeviceConformance().test_calibration_values_in_range(_MicrosecondT1(2))


# ---------------------------------------------------------------- the documented example
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "providers" / "writing-a-provider.md"


def _example_provider() -> Any:
    """The ``multiqpu_acme`` package written out in the provider guide, as a module."""
    blocks = re.findall(
        r"```python\n(# multiqpu_acme/__init__.py\n.*?)```", GUIDE.read_text(), re.S
    )
    assert len(blocks) == 1, "the guide's example package block is missing"
    module = types.ModuleType("multiqpu_acme")
    exec(compile(blocks[0], str(GUIDE), "exec"), module.__dict__)
    return module.provider


class TestGuideExampleDevice(DeviceConformance):
    @pytest.fixture
    def device(self) -> multiqpu.Device:
        return _example_provider().device("qpu1", seed=3)


class TestGuideExampleProvider(ProviderConformance):
    @pytest.fixture
    def provider(self) -> Provider:
        return _example_provider()

    def test_registered_under_entry_point(self, provider: Provider) -> None:
        pytest.skip("the guide's example is not an installed package")

    def test_offline_use_does_not_import_vendor_sdk(self, provider: Provider) -> None:
        pytest.skip("the guide's example is not an installed package")
