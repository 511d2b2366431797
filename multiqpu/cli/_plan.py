"""``multiqpu plan``: what cutting a circuit across the fleet would take, without running it."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from multiqpu.cli import _format as fmt
from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["add_plan_command", "load_circuit", "parse_device", "run_plan"]

EXIT_OK = 0
EXIT_REFUSED = 1  # the plan was made and a bound refuses it

_LIBRARY = "efficient_su2:N[:reps], real_amplitudes:N[:reps], qaoa:N[:layers], ghz:N"

_EPILOG = f"""\
CIRCUIT is an OpenQASM 2 or 3 file, or a library circuit: {_LIBRARY}
(parameters bound to fixed values).

examples:
  multiqpu plan efficient_su2:12 --device local:ideal,num_qubits=7 --device ibm:fake_manila
  multiqpu plan circuit.qasm --observable ZZIIIIIIIIII --precision 0.01 --json
  multiqpu plan qaoa:10 --max-fragment-qubits 7          # refused: overhead too high
"""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def add_plan_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register ``plan`` on the ``multiqpu`` parser's subcommands."""
    plan = commands.add_parser(
        "plan",
        parents=[common],
        help="plan cutting a circuit across the fleet (cuts, shots, time, cost) without running",
        description=(
            "Report how multiqpu would estimate expectation values of CIRCUIT on the fleet: "
            "whether it cuts (no device fits, or --max-fragment-qubits), the cuts, fragments "
            "and the devices that fit them, distinct sub-experiments, sampling overhead, total "
            "shots, expected time and cost. Nothing is submitted. Exits 1 when a bound "
            "(--max-overhead, --max-cost) refuses the run."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("circuit", metavar="CIRCUIT", help="OpenQASM file or library circuit")
    plan.add_argument(
        "--observable",
        action="append",
        metavar="PAULI",
        help="Pauli string, qubit 0 rightmost (repeatable; default: Z on every qubit)",
    )
    plan.add_argument(
        "--device",
        action="append",
        metavar="SPEC[,KEY=VALUE...]",
        help="use this device instead of the configured fleet (repeatable), "
        "e.g. local:ideal,num_qubits=7",
    )
    plan.add_argument("--config", metavar="PATH", help="fleet config file to read")
    shots = plan.add_mutually_exclusive_group()
    shots.add_argument(
        "--shots", type=fmt.positive_int, default=None, help="total shots (default: 100000)"
    )
    shots.add_argument("--exact", action="store_true", help="plan exact evaluation (shots=None)")
    plan.add_argument(
        "--precision", type=_positive_float, help="target standard error (sets the shots)"
    )
    plan.add_argument(
        "--max-fragment-qubits", type=fmt.positive_int, metavar="K", help="cap fragment width"
    )
    plan.add_argument(
        "--cut",
        choices=("auto", "always", "never", "fidelity"),
        default="auto",
        help="when to cut (default: auto, only if no device fits)",
    )
    plan.add_argument(
        "--max-overhead", type=_positive_float, help="refuse above this sampling overhead"
    )
    plan.add_argument("--max-cost", type=float, metavar="USD", help="refuse above this cost")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(handler=run_plan)


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_device(text: str) -> Any:
    """``"local:ideal,num_qubits=7"`` -> the device."""
    import multiqpu

    spec, *pairs = [p.strip() for p in text.split(",")]
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--device {text!r}: expected KEY=VALUE, got {pair!r}")
        options[key.strip()] = _value(value.strip())
    return multiqpu.device(spec, **options)


def _library(name: str, args: list[int]) -> QuantumCircuit:
    import numpy as np
    from qiskit import QuantumCircuit

    n = args[0]
    rng = np.random.default_rng(7)
    if name in ("efficient_su2", "real_amplitudes"):
        from qiskit.circuit.library import efficient_su2, real_amplitudes

        build = efficient_su2 if name == "efficient_su2" else real_amplitudes
        qc = build(n, entanglement="linear", reps=args[1] if len(args) > 1 else 2)
        return qc.assign_parameters(rng.uniform(0, np.pi, qc.num_parameters))
    if name == "qaoa":
        layers = args[1] if len(args) > 1 else 1
        qc = QuantumCircuit(n, name=f"qaoa_{n}")
        qc.h(range(n))
        edges = [(i, (i + 1) % n) for i in range(n)] + [
            (i, (i + n // 2) % n) for i in range(0, n, 3)
        ]
        for _ in range(layers):
            for a, b in edges:
                qc.rzz(float(rng.uniform(0.2, 1.0)), a, b)
            for q in range(n):
                qc.rx(float(rng.uniform(0.2, 1.0)), q)
        return qc
    if name == "ghz":
        qc = QuantumCircuit(n, name=f"ghz_{n}")
        qc.h(0)
        for q in range(n - 1):
            qc.cx(q, q + 1)
        return qc
    raise InvalidInputError(f"unknown library circuit {name!r}; known: {_LIBRARY}")


def load_circuit(text: str) -> QuantumCircuit:
    """An OpenQASM file, or a library circuit such as ``efficient_su2:12``."""
    from pathlib import Path

    path = Path(text)
    if path.suffix.lower() in (".qasm", ".qasm2", ".qasm3") or path.exists():
        if not path.exists():
            raise InvalidInputError(f"no such circuit file: {text}")
        source = path.read_text()
        try:
            if "OPENQASM 3" in source:
                from qiskit import qasm3

                return qasm3.loads(source)
            from qiskit import qasm2

            return qasm2.loads(source, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        except Exception as exc:  # qiskit's parse errors are not MultiQPUErrors
            raise InvalidInputError(f"{text}: not valid OpenQASM ({exc})") from None
    name, _, rest = text.partition(":")
    try:
        args = [int(a) for a in rest.split(":") if a]
    except ValueError:
        raise InvalidInputError(f"{text!r}: expected {_LIBRARY}") from None
    if not args or args[0] < 1:
        raise InvalidInputError(f"{text!r}: give the number of qubits, e.g. {name}:12")
    return _library(name, args)


def run_plan(args: argparse.Namespace) -> int:
    import multiqpu
    from multiqpu.cutting import CutLimits, plan

    circuit = load_circuit(args.circuit)
    if args.device:
        fleet = multiqpu.Fleet([parse_device(d) for d in args.device])
    else:
        fleet = multiqpu.Fleet.from_config(args.config)
    observables = args.observable or ["Z" * circuit.num_qubits]
    defaults = CutLimits()
    limits = CutLimits(
        max_overhead=args.max_overhead or defaults.max_overhead,
        max_cost_usd=args.max_cost if args.max_cost is not None else defaults.max_cost_usd,
    )
    shots = None if args.exact else (args.shots or 100_000)
    the_plan = plan(
        fleet,
        circuit,
        observables,
        shots=shots,
        precision=args.precision,
        cut=args.cut,
        max_fragment_qubits=args.max_fragment_qubits,
        limits=limits,
    )
    if args.json:
        print(the_plan.to_json())
    else:
        print(the_plan)
    if the_plan.refused:
        print(f"multiqpu: refused: {the_plan.refused}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK
