"""AWS / botocore exceptions -> multiqpu errors (the vendor's message is kept).

* no route to the endpoint (offline, DNS, proxy) -> :class:`DeviceUnavailableError`
* missing, unknown or rejected credentials, unknown profile -> :class:`CredentialsError`
* throttling, quota, timeouts and 5xx -> :class:`TransientProviderError`
* device offline or retired -> :class:`DeviceUnavailableError`
* anything else AWS says -> :class:`ProviderError`

The messages never contain credentials: botocore does not put keys in its messages, and
we pass only the error code and message along.
"""

from __future__ import annotations

from multiqpu.provider_api import (
    CredentialsError,
    DeviceUnavailableError,
    MultiQPUError,
    ProviderError,
    TransientProviderError,
)

__all__ = ["translate_error"]

_CREDENTIAL_CODES = frozenset({
    "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
    "ExpiredToken", "InvalidClientTokenId", "AccessDeniedException", "AccessDenied",
    "SignatureDoesNotMatch", "InvalidAccessKeyId", "MissingAuthenticationToken",
})  # fmt: skip
_TRANSIENT_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "ServiceQuotaExceededException", "InternalServiceException", "InternalServerException",
    "ServiceUnavailable", "ServiceUnavailableException", "SlowDown", "RequestTimeout",
})  # fmt: skip
_UNAVAILABLE_CODES = frozenset({"DeviceOfflineException", "DeviceRetiredException"})


def translate_error(exc: BaseException, what: str) -> MultiQPUError:
    """The multiqpu error for a botocore/boto3/braket exception raised while doing ``what``."""
    if isinstance(exc, MultiQPUError):
        return exc
    from botocore import exceptions as bx

    name = type(exc).__name__
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "Unknown"))
        message = f"{code}: {err.get('Message', '')}".strip()
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _CREDENTIAL_CODES:
            return CredentialsError(
                f"AWS rejected the credentials while {what} ({message}); check the AWS "
                "profile/region (aws_profile, region options or AWS_PROFILE) and its permissions"
            )
        if code in _UNAVAILABLE_CODES:
            return DeviceUnavailableError(f"Braket device unavailable while {what}: {message}")
        if code in _TRANSIENT_CODES or status >= 500:
            return TransientProviderError(
                f"temporary AWS error while {what}", provider="braket", vendor_message=message
            )
        return ProviderError(f"AWS error while {what}", provider="braket", vendor_message=message)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return CredentialsError(
            f"no AWS credentials found while {what}: configure a profile (aws configure "
            "--profile NAME, then aws_profile=NAME) or the standard AWS environment variables"
        )
    if isinstance(exc, bx.ProfileNotFound):
        return CredentialsError(f"while {what}: {exc}")
    if isinstance(
        exc, bx.EndpointConnectionError | bx.ConnectionClosedError | bx.ProxyConnectionError
    ):
        return DeviceUnavailableError(
            f"cannot reach Amazon Braket while {what} ({name}: {exc}); are you online?"
        )
    if isinstance(exc, bx.ReadTimeoutError | bx.ConnectTimeoutError):
        return TransientProviderError(
            f"AWS timed out while {what}", provider="braket", vendor_message=str(exc)
        )
    if isinstance(exc, bx.BotoCoreError):
        return ProviderError(
            f"AWS SDK error while {what}", provider="braket", vendor_message=f"{name}: {exc}"
        )
    return ProviderError(
        f"Braket error while {what}", provider="braket", vendor_message=f"{name}: {exc}"
    )
