"""The ``braket`` provider object: device names, options and their checks."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multiqpu.provider_api import (
    Calibration,
    ConfigError,
    DeviceLimits,
    MultiQPUError,
    Provider,
    Secret,
)

if TYPE_CHECKING:
    from multiqpu.provider_api import Device

__all__ = ["BraketProvider", "EXAMPLE_ARNS"]

#: Public Braket device ARNs, for docs and error messages (not fetched).
EXAMPLE_ARNS = (
    "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet",
    "arn:aws:braket:us-west-1::device/qpu/rigetti/Ankaa-3",
    "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1",
    "arn:aws:braket:::device/quantum-simulator/amazon/sv1",
)

_LOCAL_OPTIONS: dict[str, frozenset[str]] = {
    "sv": frozenset({"limits", "seed"}),
    "dm": frozenset({"limits", "seed", "calibration"}),
    "emulator": frozenset({"limits", "seed"}),
}
_AWS_OPTIONS = frozenset({"limits", "aws_profile", "region", "s3_bucket", "s3_prefix"})


def _limits(value: Any) -> DeviceLimits | None:
    if value is None or isinstance(value, DeviceLimits):
        return value
    if isinstance(value, Mapping):
        try:
            return DeviceLimits(**value)
        except TypeError as exc:
            raise ConfigError(f"bad limits {dict(value)!r}: {exc}", key="limits") from None
    raise ConfigError(f"limits must be a DeviceLimits, got {type(value).__name__}", key="limits")


def _seed(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ConfigError(f"seed must be an integer or None, got {value!r}", key="seed")


def _text(options: Mapping[str, Any], key: str, *, secret_ok: bool = False) -> Any:
    value = options.get(key)
    if value is None or isinstance(value, str) or (secret_ok and isinstance(value, Secret)):
        return value
    raise ConfigError(f"{key} must be a string, got {type(value).__name__}", key=key)


def load_calibration(value: Any) -> Calibration | None:
    """``calibration`` for ``dm``: a Calibration, a JSON file (``Calibration.to_dict`` output
    or a Braket device-properties document), or another device's spec (``"ibm:fake_manila"``)."""
    if value is None or isinstance(value, Calibration):
        return value
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(
            f"calibration must be a Calibration, a JSON file path or a device spec, got "
            f"{type(value).__name__}",
            key="calibration",
        )
    path = Path(value).expanduser()
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            if "paradigm" in data or "braketSchemaHeader" in data:
                from multiqpu_braket._calibration import parse_properties

                return parse_properties(data, source=f"file {path}").calibration
            return Calibration.from_dict(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"cannot read a calibration from {path}: {exc}", key="calibration"
            ) from None
    spec = str(value)
    if ":" in spec and not spec.startswith("braket:dm"):
        from multiqpu.provider_api import device

        try:
            return device(spec).calibration()
        except MultiQPUError as exc:
            raise ConfigError(
                f"cannot take the calibration of '{spec}': {exc}", key="calibration"
            ) from exc
    raise ConfigError(
        f"calibration '{spec}' is neither an existing file nor a device spec like "
        "'ibm:fake_manila'",
        key="calibration",
    )


class BraketProvider(Provider):
    """Amazon Braket: local simulators, an offline QPU emulator, and AWS devices by ARN."""

    name = "braket"
    extra = "braket"
    requires: Sequence[str] = ("braket",)
    env_options: Mapping[str, str] = {"aws_profile": "AWS_PROFILE", "region": "AWS_DEFAULT_REGION"}
    secret_options: Sequence[str] = ()

    def default_devices(self) -> Sequence[str]:
        return ["emulator"]

    def known_devices(self) -> Sequence[str]:
        return ["emulator", "dm", "sv"]

    def device_options(self, name: str) -> frozenset[str] | None:
        """Options ``device(name, ...)`` accepts (None for an unknown name)."""
        if name.startswith("arn:"):
            return _AWS_OPTIONS
        return _LOCAL_OPTIONS.get(name)

    def device(self, name: str, **options: Any) -> Device:
        if name.startswith("arn:"):
            accepted = _AWS_OPTIONS
        elif name in _LOCAL_OPTIONS:
            accepted = _LOCAL_OPTIONS[name]
        else:
            raise ConfigError(
                f"unknown Braket device '{name}'; known offline devices: "
                f"{', '.join(self.known_devices())}, or an AWS device ARN such as "
                f"'{EXAMPLE_ARNS[0]}'"
            )
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise ConfigError(
                f"option '{unknown[0]}' is not accepted by braket:{name}; accepted options: "
                f"{', '.join(sorted(accepted))}",
                key=unknown[0],
            )
        limits = _limits(options.get("limits"))
        if name.startswith("arn:"):
            from multiqpu_braket._aws import AwsBraketDevice

            return AwsBraketDevice(
                name,
                aws_profile=_text(options, "aws_profile", secret_ok=True),
                region=_text(options, "region"),
                s3_bucket=_text(options, "s3_bucket"),
                s3_prefix=_text(options, "s3_prefix"),
                limits=limits,
            )
        seed = _seed(options.get("seed"))
        if name == "sv":
            from multiqpu_braket._local import StateVectorDevice

            return StateVectorDevice(limits=limits, seed=seed)
        if name == "dm":
            from multiqpu_braket._local import DensityMatrixDevice

            cal = load_calibration(options.get("calibration"))
            return DensityMatrixDevice(cal, limits=limits, seed=seed)
        from multiqpu_braket._emulator import EmulatorDevice

        return EmulatorDevice(limits=limits, seed=seed)
