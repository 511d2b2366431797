"""Secrets that never show: not in reprs, logs, exceptions or CLI output.

A :class:`Secret` wraps a credential. ``str()``, ``repr()``, f-strings and ``%``-formatting
all give ``'***'``; only :meth:`Secret.reveal` returns the value, and only adapters call it,
at the moment they hand it to the vendor SDK. A Secret refuses to be pickled and
``json.dumps`` refuses it (``TypeError``), so it cannot end up in a file by accident.

Every secret value ever wrapped in this process is remembered (the vendor SDK keeps its own
copy, so the value can reach a log after the Secret object is gone) and scrubbed from every
log record by :func:`install_log_redaction`, which runs automatically when the first Secret
is created. Redaction works at two levels:

* a ``logging`` record factory wrapper cleans each record when it is created, whatever logger
  it comes from (``qiskit_ibm_runtime.api``, ``botocore.auth``, the root logger...): message,
  arguments, exception traceback and stack text. Logger filters would not do: a logger's
  filters do not see records logged on its child loggers.
* a filter on each handler of the root logger cleans records made some other way (for
  instance ``logging.makeLogRecord``) that reach those handlers.

Values shorter than four characters are not scrubbed from text (too many false hits).
"""

from __future__ import annotations

import hmac
import logging
import threading
import traceback
from typing import Any, NoReturn

__all__ = ["REDACTED", "Secret", "install_log_redaction", "redact", "register_secret_value"]

REDACTED = "***"
_MIN_LEN = 4

_values: set[str] = set()
_lock = threading.Lock()
_installed = False
_previous_factory: Any = None


class Secret:
    """A credential value that does not print.

    ``origin`` says where the value came from (``"env QISKIT_IBM_TOKEN"``,
    ``"/home/me/.config/multiqpu/config.toml: devices.work.token"``) so that error messages
    can point at the source without showing the value.
    """

    __slots__ = ("__value", "origin")

    def __init__(self, value: str, origin: str = "") -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a string, got {type(value).__name__}")
        self.__value = value
        self.origin = origin
        register_secret_value(value)

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
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self.__value.encode(), other.__value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self.__value))

    def __bool__(self) -> bool:
        return bool(self.__value)

    # A Secret is immutable: copies are the object itself (dataclasses.replace, deepcopy).
    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            "a Secret cannot be pickled; pass its source (an environment variable, a saved "
            "account name) to the other process instead"
        )

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(None)

    def __getstate__(self) -> NoReturn:
        self.__reduce_ex__(None)


def register_secret_value(value: str) -> None:
    """Scrub ``value`` from every log record from now on (a :class:`Secret` does this itself;
    adapters call it for credentials they obtain some other way, e.g. from a saved account)."""
    if not isinstance(value, str) or len(value) < _MIN_LEN:
        return
    with _lock:
        _values.add(value)
    install_log_redaction()


def redact(text: str) -> str:
    """``text`` with every known secret value replaced by ``***``."""
    if not _values or not isinstance(text, str):
        return text
    with _lock:
        values = sorted(_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _contains_secret(text: str) -> bool:
    with _lock:
        values = list(_values)
    return any(v in text for v in values)


def _scrub(record: logging.LogRecord) -> None:
    """Remove secret values from a record in place (message, args, traceback, stack)."""
    if not _values:
        return
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it for logging to report
        message = None
    if message is not None and _contains_secret(message):
        record.msg, record.args = redact(message), None
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if _contains_secret(text):
            # Formatter.format appends exc_text even without exc_info; dropping exc_info keeps
            # formatters from rendering the raw traceback again.
            record.exc_text, record.exc_info = redact(text), None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record: logging.LogRecord = _previous_factory(*args, **kwargs)
    _scrub(record)
    return record


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        _scrub(record)
        return True


_FILTER = _RedactingFilter()


def install_log_redaction() -> None:
    """Install the record factory wrapper (once) and the redacting filter on every handler
    of the root logger (again on each call, for handlers added since). Idempotent."""
    global _installed, _previous_factory
    with _lock:
        current = logging.getLogRecordFactory()
        reset = current is logging.LogRecord  # someone restored the default since
        if (not _installed or reset) and current is not _redacting_factory:
            _previous_factory = current
            logging.setLogRecordFactory(_redacting_factory)
            _installed = True
    for handler in list(logging.getLogger().handlers):
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
