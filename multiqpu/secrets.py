"""Secrets that never show: not in reprs, logs, exceptions or CLI output.

A :class:`Secret` wraps a credential. ``str()``, ``repr()`` and formatting all give
``'***'``; only :meth:`Secret.reveal` returns the value, and only adapters call it, at the
moment they hand it to the vendor SDK. Every secret created is also registered with a
logging filter (:func:`install_log_redaction`) that scrubs its value from any log record
that reaches a multiqpu, qiskit, braket, boto or urllib3 logger.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

__all__ = ["REDACTED", "Secret", "install_log_redaction", "redact"]

REDACTED = "***"
_MIN_LEN = 4  # shorter values are not scrubbed from text (too many false hits)

_live: weakref.WeakSet[Secret] = weakref.WeakSet()
_lock = threading.Lock()


class Secret:
    """A credential value that does not print."""

    __slots__ = ("__value", "__weakref__", "origin")

    def __init__(self, value: str, origin: str = "") -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a string")
        self.__value = value
        #: where it came from ("env QISKIT_IBM_TOKEN", "config file ... key token"); no value
        self.origin = origin
        with _lock:
            _live.add(self)

    def reveal(self) -> str:
        """The real value: pass it straight to the vendor SDK, never to a log or message."""
        return self.__value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r}{', origin=' + repr(self.origin) if self.origin else ''})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.__value == self.__value

    def __hash__(self) -> int:
        return hash(("Secret", self.__value))

    def __bool__(self) -> bool:
        return bool(self.__value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


def redact(text: str) -> str:
    """``text`` with the value of every live :class:`Secret` replaced by ``***``."""
    with _lock:
        values = [s.reveal() for s in list(_live)]
    for v in sorted(values, key=len, reverse=True):
        if len(v) >= _MIN_LEN and v in text:
            text = text.replace(v, REDACTED)
    return text


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not our business
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactingFilter()
_LOGGERS = ("multiqpu", "qiskit", "qiskit_ibm_runtime", "braket", "boto3", "botocore", "urllib3")


def install_log_redaction() -> None:
    """Attach the redacting filter to multiqpu's and the vendor SDKs' loggers and to every
    handler of the root logger (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
