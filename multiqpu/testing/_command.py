"""``multiqpu-conformance``: run the conformance suite against one device, from a shell.

The counterpart of PennyLane's ``pl-device-test --device NAME``, for a third-party adapter's
author (or anyone checking a configured device)::

    multiqpu-conformance acme:qpu1 --device-kwargs seed=1
    python -m multiqpu.testing.conformance local:noisy --device-kwargs num_qubits=3 --provider

It builds the device the way ``multiqpu.device(SPEC, **kwargs)`` does, runs every check of
:class:`~multiqpu.testing.DeviceConformance` on it (and :class:`ProviderConformance` on its
provider with ``--provider``), prints one line per check and exits 0 when none failed, 1
otherwise (2 for a usage error). ``--verbose`` shows pytest's own report as well.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["Check", "main", "parse_kwargs", "run_conformance"]


@dataclass(frozen=True)
class Check:
    """The outcome of one conformance check."""

    name: str
    outcome: str  # "passed", "failed" or "skipped"
    message: str = ""
    duration_s: float = 0.0


def parse_value(text: str) -> Any:
    """A command-line value: an int, a float, true/false, none, or else the text itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            number = kind(text)
        except ValueError:
            continue
        if not isinstance(number, float) or math.isfinite(number):
            return number
    return text


def parse_kwargs(items: Sequence[str]) -> dict[str, Any]:
    """``["seed=1", "num_qubits=3"]`` -> ``{"seed": 1, "num_qubits": 3}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


class _Collector:
    """A pytest plugin that keeps one :class:`Check` per test."""

    def __init__(self) -> None:
        self.checks: list[Check] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        parts = report.nodeid.split("::")
        kind = "provider" if "TestProvider" in parts else "device"
        name = f"{kind}.{parts[-1].removeprefix('test_')}"
        if report.when == "call" or report.outcome != "passed":
            message = ""
            if report.skipped and isinstance(report.longrepr, tuple):
                message = str(report.longrepr[2]).removeprefix("Skipped: ")
            elif report.failed:
                crash = getattr(report.longrepr, "reprcrash", None)
                message = crash.message if crash is not None else str(report.longrepr)
                if report.when != "call":
                    message = f"({report.when}) {message}"
            if not any(c.name == name for c in self.checks):
                self.checks.append(Check(name, report.outcome, message, report.duration))


def run_conformance(
    spec: str,
    options: dict[str, Any] | None = None,
    *,
    provider_checks: bool = False,
    shots: int | None = None,
    verbose: bool = False,
) -> list[Check]:
    """Run the suite on ``multiqpu.device(spec, **options)``; one :class:`Check` per test."""
    import pytest

    from multiqpu.testing import _device_suite

    request = {"spec": spec, "options": options or {}, "shots": shots}
    suite = _device_suite.__file__
    targets = [f"{suite}::TestDevice"] + ([f"{suite}::TestProvider"] if provider_checks else [])
    args = [*targets, "-c", os.devnull, "-p", "no:cacheprovider", "-p", "no:asyncio"]
    args += ["-q", "--tb=short"] if verbose else ["-p", "no:terminal"]
    collector = _Collector()
    previous = os.environ.get(_device_suite.DEVICE_VAR)
    os.environ[_device_suite.DEVICE_VAR] = json.dumps(request)
    try:
        pytest.main(args, plugins=[collector])
    finally:
        if previous is None:
            os.environ.pop(_device_suite.DEVICE_VAR, None)
        else:
            os.environ[_device_suite.DEVICE_VAR] = previous
    return collector.checks


def _summary(spec: str, checks: Sequence[Check], elapsed: float, out: TextIO) -> None:
    marks = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}
    width = max((len(c.name) for c in checks), default=0)
    for c in checks:
        line = f"  {marks.get(c.outcome, c.outcome.upper())}  {c.name:<{width}}"
        if c.message:
            line += f"  {c.message.splitlines()[0][:160]}"
        print(line.rstrip(), file=out)
    counts = {k: sum(c.outcome == k for c in checks) for k in marks}
    print(
        f"{spec}: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped in {elapsed:.1f} s",
        file=out,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="multiqpu-conformance",
        description="Run multiqpu's provider conformance suite against one device.",
    )
    parser.add_argument("spec", help="the device: 'provider:name' or a config-file label")
    parser.add_argument(
        "--device-kwargs",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="options for the device, e.g. seed=1 num_qubits=3",
    )
    parser.add_argument("--shots", type=int, default=None, help="shots per sampled check")
    parser.add_argument(
        "--provider", action="store_true", help="also check the device's provider object"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="show pytest's report")
    args = parser.parse_args(argv)
    try:
        options = parse_kwargs(args.device_kwargs)
    except ValueError as exc:
        parser.error(str(exc))
    from multiqpu.config import make_device
    from multiqpu.errors import MultiQPUError

    try:
        device = make_device(args.spec, options)
    except MultiQPUError as exc:
        print(f"multiqpu-conformance: cannot build {args.spec!r}: {exc}", file=sys.stderr)
        return 1
    print(f"multiqpu conformance: {device!r}")
    start = time.perf_counter()
    checks = run_conformance(
        args.spec,
        options,
        provider_checks=args.provider,
        shots=args.shots,
        verbose=args.verbose,
    )
    _summary(device.spec, checks, time.perf_counter() - start, sys.stdout)
    if not checks:
        print("multiqpu-conformance: no check ran", file=sys.stderr)
        return 1
    return 1 if any(c.outcome == "failed" for c in checks) else 0
