"""qiskit-ibm-runtime errors -> multiqpu's error tree, and the network probe.

Offline, ``QiskitRuntimeService(...)`` raises ``InvalidAccountError`` ("... valid API token")
whether the token is bad or the network is down. After such an error we try a short TCP
connection to the IBM endpoint: unreachable -> :class:`~multiqpu.DeviceUnavailableError`,
reachable -> :class:`~multiqpu.CredentialsError`. Vendor exceptions are recognised by class
name so this module never imports qiskit-ibm-runtime. No message ever carries a token: vendor
messages pass through :func:`multiqpu.secrets.redact`.
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from multiqpu.provider_api import (
    ConfigError,
    CredentialsError,
    DeviceUnavailableError,
    JobError,
    MultiQPUError,
    ProviderError,
    TransientProviderError,
    redact,
)

__all__ = [
    "DEFAULT_URL",
    "PROBE_TIMEOUT_S",
    "endpoint_reachable",
    "probe_target",
    "translate",
]

PROVIDER = "ibm"
#: The URL qiskit-ibm-runtime uses for both cloud channels when an account sets none.
DEFAULT_URL = "https://cloud.ibm.com"
PROBE_TIMEOUT_S = 1.5
#: Where the probe connects instead of the real endpoint. ``None`` in production; tests set
#: it to a local TCP server to simulate a reachable endpoint whose token is refused.
probe_override: tuple[str, int] | None = None

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_TRANSIENT_NAMES = frozenset(
    {"ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout", "TimeoutError",
     "UserTimeoutExceededError", "RuntimeJobTimeoutError", "ChunkedEncodingError"}
)  # fmt: skip
_CREDENTIAL_NAMES = frozenset({"IBMNotAuthorizedError", "AuthenticationLicenseError"})
_JOB_NAMES = frozenset(
    {"RuntimeJobFailureError", "RuntimeJobNotFound", "RuntimeInvalidStateError",
     "RuntimeJobMaxTimeoutError"}
)  # fmt: skip


def probe_target(url: str | None) -> tuple[str, int]:
    """(host, port) the probe connects to for an account URL."""
    if probe_override is not None:
        return probe_override
    parsed = urlparse(url or DEFAULT_URL)
    return parsed.hostname or urlparse(DEFAULT_URL).hostname or "cloud.ibm.com", parsed.port or 443


def endpoint_reachable(url: str | None, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the IBM endpoint opens within ``timeout`` seconds."""
    host, port = probe_target(url)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _vendor_message(exc: BaseException) -> str:
    return redact(str(exc) or type(exc).__name__)


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    if isinstance(code, int) and code >= 0:
        return code
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def translate(
    exc: BaseException, *, action: str, url: str | None = None, job_id: str | None = None
) -> MultiQPUError:
    """The multiqpu error for a vendor exception raised while doing ``action``."""
    if isinstance(exc, MultiQPUError):
        return exc
    names = _names(exc)
    message = _vendor_message(exc)
    if "InvalidAccountError" in names:
        host, _ = probe_target(url)
        if not endpoint_reachable(url):
            return DeviceUnavailableError(
                f"cannot reach IBM Quantum at {host}: network unreachable or offline while "
                f"{action} (the runtime reported: {message})"
            )
        return CredentialsError(
            f"IBM Quantum rejected the token or instance while {action}; check the saved "
            "account (~/.qiskit/qiskit-ibm.json) or QISKIT_IBM_TOKEN / QISKIT_IBM_INSTANCE "
            f"(the runtime reported: {message})"
        )
    if "AccountNotFoundError" in names:
        return CredentialsError(
            "no IBM Quantum credentials found: pass account=/token=, set QISKIT_IBM_TOKEN, or "
            "save an account with QiskitRuntimeService.save_account(...) "
            f"(the runtime reported: {message})"
        )
    if names & _CREDENTIAL_NAMES or _status_code(exc) in (401, 403):
        return CredentialsError(f"IBM Quantum refused the request while {action}: {message}")
    if "QiskitBackendNotFoundError" in names:
        return ConfigError(f"IBM Quantum has no backend for this account: {message}")
    if names & _JOB_NAMES:
        return JobError(f"IBM Quantum reported: {message}", job_id=job_id)
    code = _status_code(exc)
    if names & _TRANSIENT_NAMES or (code is not None and code in _TRANSIENT_STATUS):
        return TransientProviderError(
            f"temporary failure while {action}", provider=PROVIDER, vendor_message=message
        )
    return ProviderError(f"error while {action}", provider=PROVIDER, vendor_message=message)
