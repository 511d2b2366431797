"""Property-based tests of the public API (hypothesis), shared by the tests and the chaos
benchmark (which runs many more cases).

Every property draws an input, mostly a bad one, calls the public API and classifies what
happened. A bad input must raise a :class:`~multiqpu.MultiQPUError` whose message names the
problem (one of the words the case expects), and nothing may have been submitted to any
device. An input that is in fact fine may run (or be refused with a ``MultiQPUError``). Any
other exception is an *escape*. The properties never raise: they record escapes and
misses, so a benchmark can count them all; the tests assert both lists are empty.

Families: circuits, shots, observables, device specs, scheduler option names and types,
config TOML, OpenQASM text.
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hseed
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, Parameter

import multiqpu
from multiqpu.errors import (
    CircuitTooLargeError,
    ConfigError,
    InvalidInputError,
    MultiQPUError,
    PlanRefusedError,
)
from multiqpu.testing.faults import FaultyDevice

__all__ = ["FAMILIES", "Tally", "run_family"]

WIDTH = 4  # qubits of every device of the fuzz fleet
CASE_TIMEOUT_S = 60.0
REFUSALS = (InvalidInputError, ConfigError, CircuitTooLargeError, PlanRefusedError)


@dataclass
class Tally:
    """What the cases of one family did."""

    cases: int = 0
    refused: int = 0
    ran: int = 0
    escapes: list[str] = field(default_factory=list)  # exceptions that are not MultiQPUErrors
    misses: list[str] = field(default_factory=list)  # bad input accepted, a vague message,
    # or something submitted although the input was refused


class _Env:
    """The fuzz fleet (two fault-free FaultyDevices, which count submit calls), one event
    loop, one scratch file."""

    def __init__(self) -> None:
        def dev(k: int) -> FaultyDevice:
            ideal = multiqpu.device("local:ideal", num_qubits=WIDTH, seed=k, label=f"fz-ideal-{k}")
            return FaultyDevice(ideal, name=f"fz{k}")

        self.devices = [dev(0), dev(1)]
        self.fleet = multiqpu.Fleet(self.devices)
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="mq-fuzz-"))

    def attempts(self) -> int:
        return sum(d.attempts for d in self.devices)

    def run(self, coro: Any) -> Any:
        # a case that hangs is an escape (TimeoutError), not a stuck benchmark
        return self.loop.run_until_complete(asyncio.wait_for(coro, CASE_TIMEOUT_S))

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        os.chmod(path, 0o600)
        return path


_ENV: _Env | None = None


def _env() -> _Env:
    global _ENV
    if _ENV is None:
        _ENV = _Env()
    return _ENV


def _judge(
    tally: Tally, label: str, call: Callable[[], Any], bad: bool, words: tuple[str, ...]
) -> None:
    """Run one case and record what it did."""
    env = _env()
    before = env.attempts()
    tally.cases += 1
    try:
        call()
    except MultiQPUError as exc:
        tally.refused += 1
        text = str(exc).lower()
        if words and not any(w.lower() in text for w in words):
            tally.misses.append(f"{label}: message names none of {words}: {exc}")
        if isinstance(exc, REFUSALS) and env.attempts() != before:
            tally.misses.append(f"{label}: refused ({exc}) after submitting")
        return
    except Exception as exc:  # an escape
        tally.escapes.append(f"{label}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
        return
    tally.ran += 1
    if bad:
        tally.misses.append(f"{label}: accepted")


def _measured(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    if n:
        qc.h(0)
    qc.measure_all()
    return qc


# ------------------------------------------------------------------------ circuits
@st.composite
def circuits(draw: st.DrawFn) -> tuple[Any, bool, tuple[str, ...]]:
    """A circuit (or not) for ``fleet.sample``, whether it is bad, the words its refusal
    should contain."""
    kind = draw(
        st.sampled_from(
            ["empty", "wide", "opaque", "control", "unbound", "barriers", "fine", "not"]
        )
    )
    if kind == "not":
        obj = draw(st.one_of(st.none(), st.integers(), st.text(max_size=8), st.floats()))
        return [obj], True, ("circuit",)
    n = draw(st.integers(1, WIDTH)) if kind != "wide" else draw(st.integers(WIDTH + 1, 9))
    if kind == "empty":
        n = draw(st.integers(0, WIDTH))
        return [QuantumCircuit(n)], True, ("classical", "measure", "qubit", "empty")
    qc = QuantumCircuit(n)
    for _ in range(draw(st.integers(0, 4))):
        q = draw(st.integers(0, n - 1))
        draw(st.sampled_from([qc.h, qc.x, qc.sx]))(q)
    words: tuple[str, ...] = ()
    bad = kind in ("wide", "opaque", "unbound")
    if kind == "wide":
        words = ("qubit",)
    elif kind == "opaque":
        name = draw(st.from_regex(r"[a-z]{3,8}_gate", fullmatch=True))
        qc.append(Gate(name, 1, []), [draw(st.integers(0, n - 1))])
        words = (name, "gate", "instruction")
    elif kind == "unbound":
        qc.rx(Parameter(draw(st.sampled_from(["theta", "phi", "alpha"]))), 0)
        words = ("parameter",)
    elif kind == "barriers":
        qc = QuantumCircuit(n)
        for _ in range(draw(st.integers(1, 3))):
            qc.barrier()
    if kind == "control":
        qc.measure_all()
        with qc.if_test((qc.clbits[0], 1)):
            qc.x(0)
        qc.measure(0, 0)
    elif kind == "barriers" and draw(st.booleans()):
        qc.measure_all()  # barriers then measurements: a fine circuit (all zeros)
    elif kind == "barriers":
        bad, words = True, ("classical", "measure")
    else:
        qc.measure_all()
    return [qc], bad, words


def check_circuits(tally: Tally, case: tuple[Any, bool, tuple[str, ...]]) -> None:
    work, bad, words = case
    env = _env()
    _judge(
        tally,
        f"sample({work!r})",
        lambda: env.run(env.fleet.sample(work, shots=64, journal=None, progress=False)),
        bad,
        words,
    )


# ------------------------------------------------------------------------ shots
bad_shots = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=10**11 + 1, max_value=10**30),  # over 10,000 parts of max_shots
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.booleans(),
    st.lists(st.integers(1, 100), min_size=2, max_size=4),  # two or more counts for one circuit
    st.lists(st.one_of(st.integers(max_value=0), st.text(max_size=3)), min_size=1, max_size=1),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def check_shots(tally: Tally, shots: Any) -> None:
    env = _env()
    _judge(
        tally,
        f"sample(shots={shots!r})",
        lambda: env.run(env.fleet.sample([_measured(2)], shots=shots, journal=None)),
        True,
        ("shots", "shot"),
    )


# ------------------------------------------------------------------------ observables
@st.composite
def observables(draw: st.DrawFn) -> tuple[Any, tuple[str, ...]]:
    from qiskit.quantum_info import SparsePauliOp

    width = 2
    kind = draw(st.sampled_from(["width", "complex", "nonfinite", "empty", "label", "type"]))
    if kind == "width":
        n = draw(st.integers(1, 6).filter(lambda k: k != width))
        label = draw(st.text(alphabet="IXYZ", min_size=n, max_size=n))
        return label, ("qubit", "width", "act")
    if kind == "complex":
        imag = draw(st.floats(0.01, 1e6))
        return SparsePauliOp(["ZZ", "XI"], [1.0, complex(0.5, imag)]), ("hermitian", "complex")
    if kind == "nonfinite":
        bad = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        return SparsePauliOp(["ZZ", "IX"], [1.0, bad]), ("nan", "infinite", "finite")
    if kind == "empty":
        return draw(st.sampled_from([[], (), ""])), ("observable", "empty", "pauli")
    if kind == "label":
        label = draw(st.text(alphabet="IXYZABQ01 -", min_size=width, max_size=width).filter(
            lambda s: any(c not in "IXYZ" for c in s)
        ))  # fmt: skip
        return label, ("observable", "pauli", "label", label)
    obj = draw(
        st.one_of(st.none(), st.integers(), st.floats(), st.dictionaries(st.text(), st.integers()))
    )
    return obj, ("observable",)


def check_observables(tally: Tally, case: tuple[Any, tuple[str, ...]]) -> None:
    obs, words = case
    env = _env()
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    _judge(
        tally,
        f"estimate(observables={obs!r})",
        lambda: env.run(env.fleet.estimate(circuit, obs, shots=2000)),
        True,
        words,
    )


# ------------------------------------------------------------------------ device specs
@st.composite
def device_specs(draw: st.DrawFn) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    kind = draw(st.sampled_from(["text", "provider", "name", "option", "value"]))
    if kind == "text":
        spec = draw(st.text(max_size=12).filter(lambda s: ":" not in s or s.count(":") > 1))
        return spec, {}, ("device", "spec", "provider", "config")
    if kind == "provider":
        prov = draw(st.from_regex(r"[a-z]{2,8}", fullmatch=True).filter(
            lambda p: p not in ("ibm", "braket", "local")
        ))  # fmt: skip
        return f"{prov}:x", {}, (prov, "provider")
    if kind == "name":
        name = draw(st.from_regex(r"[a-z]{3,9}", fullmatch=True).filter(
            lambda n: n not in ("ideal", "noisy")
        ))  # fmt: skip
        return f"local:{name}", {}, (name, "device", "backend")
    if kind == "option":
        opt = draw(st.from_regex(r"[a-z]{3,8}_opt", fullmatch=True))
        return "local:ideal", {opt: 1}, (opt,)
    opt = draw(st.sampled_from(["num_qubits", "seed", "max_shots", "max_circuits_per_job"]))
    value = draw(
        st.one_of(
            st.text(max_size=4),
            st.integers(max_value=-1),
            st.floats(),
            st.lists(st.integers(), max_size=2),
        )
    )
    return "local:ideal", {opt: value}, (opt,)


def check_device_specs(tally: Tally, case: tuple[str, dict[str, Any], tuple[str, ...]]) -> None:
    spec, options, words = case
    bad = not (options.get("seed") is not None and isinstance(options.get("seed"), int))
    _judge(
        tally, f"device({spec!r}, {options})", lambda: multiqpu.device(spec, **options), bad, words
    )


# ------------------------------------------------------------------------ options
OPTION_VALUES: dict[str, Any] = {
    "policy": st.one_of(st.text(max_size=8), st.integers()),
    "fidelity_floor": st.one_of(
        st.floats(1.0001, 10), st.floats(-10, -0.0001), st.text(max_size=3)
    ),
    "fidelity_margin": st.one_of(st.floats(-10, -0.0001), st.text(max_size=3)),
    "max_slowdown": st.one_of(st.floats(-5, 0.999), st.text(max_size=3)),
    "budget_usd": st.one_of(st.floats(max_value=-0.001), st.text(max_size=3)),
    "deadline_s": st.one_of(st.floats(max_value=0), st.text(max_size=3)),
    "concurrency": st.one_of(st.integers(max_value=0), st.text(max_size=3)),
    "retries": st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=3)),
    "backoff_s": st.one_of(st.floats(max_value=-0.001), st.text(min_size=1, max_size=3)),
    "rate_limits": st.one_of(
        st.text(max_size=3),
        st.dictionaries(
            st.sampled_from(["local", "ibm"]),
            st.one_of(
                st.integers(),
                st.text(max_size=2),
                st.tuples(st.one_of(st.integers(max_value=0), st.text(max_size=2)), st.floats()),
                st.tuples(
                    st.integers(1, 5), st.one_of(st.floats(max_value=0), st.text(max_size=2))
                ),
            ),
            min_size=1,
        ),
    ),
    "job_timeout_s": st.one_of(st.floats(max_value=0), st.text(min_size=1, max_size=3)),
    "journal": st.one_of(st.integers(), st.floats(), st.lists(st.integers(), max_size=2)),
    "split_shots": st.text(max_size=5).filter(lambda s: s != "auto"),
}


@st.composite
def options(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[str, ...]]:
    if draw(st.booleans()):
        name = draw(st.from_regex(r"[a-z_]{3,12}", fullmatch=True).filter(
            lambda n: n not in OPTION_VALUES and n not in {
                "cache", "progress", "hedging", "explore", "run_id", "placement", "mitigation",
                "engine", "shots", "policy",
            }
        ))  # fmt: skip
        return {name: draw(st.integers())}, (name,)
    name = draw(st.sampled_from(sorted(OPTION_VALUES)))
    return {name: draw(OPTION_VALUES[name])}, (name.split("_")[0],)


def check_options(tally: Tally, case: tuple[dict[str, Any], tuple[str, ...]]) -> None:
    opts, words = case
    env = _env()
    kwargs = {"journal": None, "progress": False, **opts}
    _judge(
        tally,
        f"sample(**{opts!r})",
        lambda: env.run(env.fleet.sample([_measured(2)], shots=64, **kwargs)),
        True,
        words,
    )


# ------------------------------------------------------------------------ config TOML
BASE_TOML = """[fleet]
queue_time_scale = 0.5

[devices.sim]
provider = "local"
backend = "ideal"
num_qubits = 3
max_shots = 1000
"""


@st.composite
def configs(draw: st.DrawFn) -> tuple[str, bool, tuple[str, ...]]:
    kind = draw(st.sampled_from(["malformed", "type", "unknown", "bytes"]))
    if kind == "malformed":
        cut = draw(st.integers(0, len(BASE_TOML) - 1))
        junk = draw(
            st.sampled_from(["[", "]", "=", '"', "[[x", "= =", "\x00", "key", "[devices.]"])
        )
        return (
            BASE_TOML[:cut] + junk + BASE_TOML[cut:],
            False,
            ("toml", "config", "line", "key", "devices", "provider"),
        )
    if kind == "type":
        key = draw(
            st.sampled_from(["num_qubits", "max_shots", "provider", "backend", "queue_time_scale"])
        )
        value = draw(st.sampled_from(['"many"', "[1, 2]", "-3", "true", "{a = 1}", '""', "0"]))
        lines = [
            (f"{key} = {value}" if line.startswith(f"{key} =") else line)
            for line in BASE_TOML.splitlines()
        ]
        bad = value != "0" or key != "queue_time_scale"
        return "\n".join(lines) + "\n", bad, (key, "device", "provider")
    if kind == "unknown":
        key = draw(st.from_regex(r"[a-z]{3,8}_key", fullmatch=True))
        where = draw(st.sampled_from(["top", "fleet", "device"]))
        if where == "top":
            return f"{key} = 1\n" + BASE_TOML, True, (key,)
        if where == "fleet":
            return BASE_TOML.replace("[fleet]\n", f"[fleet]\n{key} = 1\n"), True, (key,)
        return BASE_TOML + f"{key} = 2\n", True, (key,)
    text = draw(st.text(max_size=60))
    return text, False, ()


def check_configs(tally: Tally, case: tuple[str, bool, tuple[str, ...]]) -> None:
    from multiqpu.config import load_devices

    text, bad, words = case
    path = _env().write("config.toml", text)
    _judge(tally, f"config {text!r}", lambda: load_devices(path), bad, words)


# ------------------------------------------------------------------------ OpenQASM
BASE_QASM = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


@st.composite
def qasm_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["cut", "token", "gate", "index", "text", "v3"]))
    lines = BASE_QASM.splitlines()
    if kind == "cut":
        k = draw(st.integers(0, len(lines) - 1))
        return "\n".join(lines[:k] + lines[k + 1 :])
    if kind == "token":
        pos = draw(st.integers(0, len(BASE_QASM)))
        tok = draw(
            st.sampled_from([";", "{", "}", "q[", "->", "gate", "0.5", "\u00e9", "OPENQASM"])
        )
        return BASE_QASM[:pos] + tok + BASE_QASM[pos:]
    if kind == "gate":
        name = draw(st.from_regex(r"[a-z]{3,7}", fullmatch=True))
        return BASE_QASM.replace("h q[0]", f"{name} q[0]")
    if kind == "index":
        return BASE_QASM.replace("q[1]", f"q[{draw(st.integers(2, 99))}]")
    if kind == "v3":
        body = draw(
            st.sampled_from(
                ["qubit[2] q;\nh q[0];\nfoo q[1];", "qubit q;\nbit c;\nc = measure q", "int x = ;"]
            )
        )
        return 'OPENQASM 3.0;\ninclude "stdgates.inc";\n' + body
    return draw(st.text(max_size=80))


def check_qasm(tally: Tally, text: str) -> None:
    from multiqpu.cli._run import load_circuits

    path = _env().write("prog.qasm", text)
    _judge(tally, f"qasm {text!r}", lambda: load_circuits([str(path)]), False, ("openqasm", "qasm"))


# ------------------------------------------------------------------------ running
FAMILIES: dict[str, tuple[Any, Callable[[Tally, Any], None]]] = {
    "circuits": (circuits(), check_circuits),
    "shots": (bad_shots, check_shots),
    "observables": (observables(), check_observables),
    "device_specs": (device_specs(), check_device_specs),
    "options": (options(), check_options),
    "config_toml": (configs(), check_configs),
    "openqasm": (qasm_texts(), check_qasm),
}


def run_family(name: str, n: int, seed: int) -> Tally:
    """Run ``n`` hypothesis cases of family ``name`` with ``seed``; never raises for a case."""
    strategy, check = FAMILIES[name]
    tally = Tally()

    @hseed(seed)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    @given(strategy)
    def prop(case: Any) -> None:
        check(tally, case)

    prop()
    return tally
