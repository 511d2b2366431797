"""multiqpu.Secret never shows its value: str/repr/format, json, pickle, and every log path."""

from __future__ import annotations

import copy
import gc
import io
import json
import logging
import pickle
import uuid
from collections.abc import Iterator

import pytest

from multiqpu import Secret
from multiqpu.secrets import REDACTED, install_log_redaction, redact, register_secret_value


def fresh_value() -> str:
    return f"tok-{uuid.uuid4().hex}"


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    """A real StreamHandler on the root logger, DEBUG everywhere, removed afterwards."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # Once imported, qiskit-ibm-runtime configures its own logger (level, handler, no
    # propagation): route vendor loggers to the root handler whatever ran before.
    vendor = [logging.getLogger(n) for n in ("qiskit_ibm_runtime", "braket", "botocore")]
    saved = [(lg.level, lg.propagate) for lg in vendor]
    for lg in vendor:
        lg.setLevel(logging.NOTSET)
        lg.propagate = True
    yield stream
    for lg, (level, propagate) in zip(vendor, saved, strict=True):
        lg.setLevel(level)
        lg.propagate = propagate
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_str_repr_and_every_formatting_route_hide_the_value() -> None:
    value = fresh_value()
    s = Secret(value, origin="env QISKIT_IBM_TOKEN")
    texts = [
        str(s),
        repr(s),
        f"{s}",
        f"{s!r}",
        f"{s!s}",
        f"{s:>40}",
        "{}".format(s),  # noqa: UP032  (each formatting route on purpose)
        "%s" % s,  # noqa: UP031
        "%r" % (s,),  # noqa: UP031
        str([s]),
        repr({"token": s}),
        str((s,)),
    ]
    for text in texts:
        assert value not in text
        assert REDACTED in text
    assert repr(s) == "Secret('***', origin='env QISKIT_IBM_TOKEN')"
    assert repr(Secret(value)) == "Secret('***')"
    assert s.reveal() == value


def test_json_dumps_refuses_a_secret() -> None:
    # Decision: fail loudly (TypeError) rather than write '***' into a file someone meant
    # to hold the real credential.
    value = fresh_value()
    s = Secret(value)
    for obj in (s, {"token": s}, [1, s]):
        with pytest.raises(TypeError) as info:
            json.dumps(obj)
        assert value not in str(info.value)
        assert "Secret" in str(info.value)


def test_pickle_refuses_a_secret_at_any_depth_and_protocol() -> None:
    value = fresh_value()
    s = Secret(value)
    for obj in (s, {"token": s}, [s]):
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            with pytest.raises(TypeError, match="cannot be pickled"):
                pickle.dumps(obj, protocol=protocol)


def test_copies_are_the_same_immutable_object() -> None:
    s = Secret(fresh_value())
    assert copy.copy(s) is s
    assert copy.deepcopy({"a": s})["a"] is s


def test_equality_hash_bool_and_type_checks() -> None:
    value = fresh_value()
    assert Secret(value) == Secret(value)
    assert Secret(value) != Secret(value + "x")
    assert Secret(value) != value  # a Secret never equals its plain string
    assert hash(Secret(value)) == hash(Secret(value))
    assert not Secret("")
    assert Secret(Secret(value)).reveal() == value
    with pytest.raises(TypeError, match="string"):
        Secret(1234)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        Secret(value).__dict__  # noqa: B018  (slots: no instance dict to dump)


def test_redact_replaces_known_values_only() -> None:
    value = fresh_value()
    Secret(value)
    assert redact(f"Authorization: Bearer {value}!") == f"Authorization: Bearer {REDACTED}!"
    assert redact("nothing to hide") == "nothing to hide"
    Secret("zq9")  # too short to scrub from text: would hit ordinary words
    assert redact("xxzq9xx") == "xxzq9xx"


def test_child_logger_records_are_redacted_for_caplog(caplog: pytest.LogCaptureFixture) -> None:
    """A filter on 'qiskit_ibm_runtime' would not see records of 'qiskit_ibm_runtime.api';
    redaction must not depend on the logger."""
    value = fresh_value()
    secret = Secret(value)
    caplog.set_level(logging.DEBUG)
    for name in ("qiskit_ibm_runtime.api.session", "botocore.auth", "someone.elses.lib", ""):
        log = logging.getLogger(name)
        log.debug("request headers: %s", {"Authorization": f"Bearer {value}"})
        log.info("token=" + value)
        log.warning("token=%(t)s", {"t": value})
        log.debug("the wrapper itself: %s / %r", secret, secret)
    assert len(caplog.records) == 16
    assert value not in caplog.text
    for record in caplog.records:
        assert value not in record.getMessage()
        assert value not in str(record.args)
    assert caplog.text.count(REDACTED) >= 16


def test_real_stream_handler_tracebacks_and_stack_are_redacted(root_stream: io.StringIO) -> None:
    value = fresh_value()
    Secret(value)
    log = logging.getLogger("qiskit_ibm_runtime.api.clients")
    log.debug("using %s", value)
    try:
        raise RuntimeError(f"401 for token {value}")
    except RuntimeError:
        log.exception("request failed")
    log.debug("where am I", stack_info=True)
    logging.getLogger("braket.aws").error("boom", exc_info=ValueError(value))
    out = root_stream.getvalue()
    assert value not in out
    assert "RuntimeError: 401 for token ***" in out
    assert "ValueError: ***" in out
    assert "qiskit_ibm_runtime.api.clients DEBUG using ***" in out
    assert "Stack (most recent call last)" in out


def test_value_stays_redacted_after_the_secret_object_is_gone(root_stream: io.StringIO) -> None:
    """Vendor SDKs keep their own copy of the token; it must not leak later."""
    value = fresh_value()
    Secret(value)
    gc.collect()
    logging.getLogger("qiskit_ibm_runtime").debug("late: %s", value)
    assert value not in root_stream.getvalue()
    assert "late: ***" in root_stream.getvalue()


def test_registered_plain_values_are_redacted(root_stream: io.StringIO) -> None:
    value = fresh_value()
    register_secret_value(value)  # e.g. a token an adapter read from a saved account
    logging.getLogger("multiqpu.x").warning("%s", value)
    assert value not in root_stream.getvalue()


def test_records_not_built_by_the_factory_are_scrubbed_by_root_handlers(
    root_stream: io.StringIO,
) -> None:
    value = fresh_value()
    Secret(value)
    install_log_redaction()  # attaches the handler filter to handlers added since
    record = logging.makeLogRecord(
        {"name": "remote", "levelno": logging.INFO, "levelname": "INFO", "msg": f"t={value}"}
    )
    for handler in logging.getLogger().handlers:
        handler.handle(record)
    assert value not in root_stream.getvalue()
    assert "t=***" in root_stream.getvalue()


def test_redaction_comes_back_after_the_record_factory_is_reset(root_stream: io.StringIO) -> None:
    previous = logging.getLogRecordFactory()
    try:
        logging.setLogRecordFactory(logging.LogRecord)  # someone restores the default
        value = fresh_value()
        Secret(value)  # creating a secret reinstalls redaction
        logging.getLogger("qiskit.x").error("v=%s", value)
        assert value not in root_stream.getvalue()
    finally:
        logging.setLogRecordFactory(previous)


def test_exception_messages_built_from_a_secret_show_nothing() -> None:
    value = fresh_value()
    s = Secret(value)
    exc = ValueError(f"bad token {s}")
    assert value not in str(exc) and value not in repr(exc)


def test_provider_errors_scrub_a_secret_the_vendor_echoes() -> None:
    from multiqpu import ProviderError, Secret

    secret = Secret("tok-0123456789abcdef")
    err = ProviderError(
        "request failed for tok-0123456789abcdef",
        provider="ibm",
        vendor_message="invalid token tok-0123456789abcdef",
    )
    assert secret.reveal() not in str(err)
    assert secret.reveal() not in repr(err)
    assert err.vendor_message == "invalid token ***"
