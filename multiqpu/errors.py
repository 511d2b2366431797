"""The one exception tree of multiqpu.

::

    MultiQPUError
    ├── ConfigError                 bad config file, spec or option (names file, key, expectation)
    │   ├── UnknownProviderError    no provider registered under that name
    │   └── MissingExtraError       vendor SDK not installed (says what to pip install)
    ├── CredentialsError            credentials missing, rejected, or stored unsafely
    ├── DeviceUnavailableError      the device is offline, in maintenance, or unreachable (network)
    ├── InvalidInputError           bad arguments: no circuits, negative shots, no measurements
    ├── CircuitTooLargeError        the circuit does not fit on the device
    ├── PlanRefusedError            a plan exceeds a bound (overhead, cost, shots): nothing was run
    ├── ProviderError               the vendor reported an error; its own message is kept
    │   └── TransientProviderError  worth retrying (throttling, timeouts, 5xx)
    ├── JobError                    a submitted job failed, was cancelled, or cannot be found
    ├── IncompatibleResultsError    a circuit's shots ran on devices whose counts disagree
    └── UntrustedDeviceError        a device failed its canary checks (``Trust(mode="fail")``)

Every message is written for the person reading it: what went wrong, where, and what to do.
No exception message ever contains a secret (see :mod:`multiqpu.secrets`).
"""

from __future__ import annotations

__all__ = [
    "CircuitTooLargeError",
    "ConfigError",
    "CredentialsError",
    "DeviceUnavailableError",
    "IncompatibleResultsError",
    "InvalidInputError",
    "JobError",
    "MissingExtraError",
    "MultiQPUError",
    "PlanRefusedError",
    "ProviderError",
    "TransientProviderError",
    "UnknownProviderError",
    "UntrustedDeviceError",
]


class MultiQPUError(Exception):
    """Root of every error multiqpu raises on purpose."""


class ConfigError(MultiQPUError, ValueError):
    """A configuration file, device spec or option is invalid.

    ``source`` is the file (or ``"argument"``/``"environment"``), ``key`` the offending key.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        self.source = source
        self.key = key
        where = ""
        if source and key:
            where = f"{source}: key '{key}': "
        elif source:
            where = f"{source}: "
        elif key:
            where = f"key '{key}': "
        super().__init__(where + message)


class UnknownProviderError(ConfigError):
    """No provider is registered under the requested name."""


class MissingExtraError(ConfigError):
    """A provider's vendor SDK is not installed."""

    def __init__(self, provider: str, extra: str, module: str) -> None:
        self.provider = provider
        self.extra = extra
        self.module = module
        super().__init__(
            f"provider '{provider}' needs the Python package '{module}', which is not installed; "
            f"run: pip install 'multiqpu[{extra}]'"
        )


class CredentialsError(MultiQPUError):
    """Credentials are missing, were rejected, or are stored unsafely."""


class DeviceUnavailableError(MultiQPUError):
    """The device cannot take work now (offline, maintenance, unreachable)."""


class InvalidInputError(MultiQPUError, ValueError):
    """An argument is not acceptable (empty batch, bad shots, circuit without measurements)."""


class CircuitTooLargeError(MultiQPUError, ValueError):
    """A circuit needs more qubits than the device has."""

    def __init__(self, device: str, needed: int, available: int) -> None:
        self.device = device
        self.needed = needed
        self.available = available
        super().__init__(
            f"circuit needs {needed} qubits but device '{device}' has {available}; "
            "pick a larger device or let multiqpu cut the circuit (fleet.estimate)"
        )


class PlanRefusedError(MultiQPUError):
    """A plan (e.g. for circuit cutting) exceeds a bound such as the sampling overhead or
    the cost; it was refused before anything was submitted. The message says which bound
    and how to raise it."""


class ProviderError(MultiQPUError):
    """The vendor reported an error. ``vendor_message`` keeps the vendor's own words."""

    def __init__(self, message: str, *, provider: str, vendor_message: str | None = None) -> None:
        from multiqpu.secrets import redact

        if vendor_message is not None:
            vendor_message = redact(vendor_message)  # a vendor may echo a credential back
        self.provider = provider
        self.vendor_message = vendor_message
        text = redact(f"[{provider}] {message}")
        if vendor_message:
            text += f" (vendor said: {vendor_message})"
        super().__init__(text)


class TransientProviderError(ProviderError):
    """A provider error worth retrying (throttling, timeouts, server errors).
    ``retry_after_s``: how long the provider asked us to wait (a throttling response's
    Retry-After); the scheduler never retries sooner."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        vendor_message: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, vendor_message=vendor_message)
        self.retry_after_s = retry_after_s


class JobError(MultiQPUError):
    """A submitted job failed, was cancelled, or cannot be found."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id}: {message}" if job_id else message)


class IncompatibleResultsError(MultiQPUError):
    """A circuit's shots ran on several devices whose counts differ by more than shot noise:
    their sum is not offered as one result (``TaskResult.parts`` holds each device's)."""


class UntrustedDeviceError(MultiQPUError):
    """A device's canary results disagree with its own calibration beyond shot noise
    (:mod:`multiqpu.trust`, ``mode="fail"``). ``device`` is its spec, ``reason`` the evidence."""

    def __init__(self, device: str, reason: str) -> None:
        self.device = device
        self.reason = reason
        super().__init__(
            f"device {device} failed its canary checks: {reason}; the run was stopped "
            "(Trust(mode='quarantine') would move its work to the other devices instead)"
        )
