"""``multiqpu run FILE...``: your own circuits (OpenQASM 2 or 3, QPY) on the fleet.

Without ``--observable`` every circuit is sampled (``fleet.sample``); with it, each circuit's
expectation values are estimated (``fleet.estimate``: cut when no device fits it). Both go
through the one pipeline (:mod:`multiqpu.pipeline`), with ``--mitigation`` as its correction
stage.

Exit codes (see docs/cli.md): 0 every circuit ran; 1 the run was attempted and failed (a
device, provider or job error), or the results are out but a picture asked for could not be
drawn; 2 nothing was submitted (usage, a file that does not parse,
bad input, configuration or credentials); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multiqpu.cli import _format as fmt
from multiqpu.errors import (
    CircuitTooLargeError,
    ConfigError,
    CredentialsError,
    InvalidInputError,
    MultiQPUError,
    PlanRefusedError,
)

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_OK",
    "MITIGATIONS",
    "add_run_command",
    "load_circuits",
    "parse_mitigation",
    "run_run",
]

EXIT_OK = 0
EXIT_FAILED = 1  # the run was attempted and failed
EXIT_ERROR = 2  # nothing was submitted

#: errors that mean "nothing was submitted": the request itself is wrong
_NOTHING_DONE = (
    InvalidInputError,
    ConfigError,
    CircuitTooLargeError,
    PlanRefusedError,
    CredentialsError,
)

MITIGATIONS = ("readout", "zne", "twirl")
_POLICIES = ("balanced", "fastest", "most_accurate", "cheapest")

_EPILOG = """\
FILE is an OpenQASM 2 or 3 program (.qasm, .qasm2, .qasm3; the version is read from its
header) or a QPY file (.qpy, one or many circuits). Circuits without measurements are
measured on every qubit when sampled.

examples:
  multiqpu run bell.qasm --shots 1000 --json
  multiqpu run a.qasm b.qasm circuits.qpy --policy fastest --plot timeline.png
  multiqpu run ghz.qasm --mitigation readout,zne
  multiqpu run su2.qasm --observable ZZIIIIII --observable XXIIIIII --shots 200000

exit codes: 0 done; 1 the run failed (device, provider or job error), or a picture
could not be drawn after it; 2 nothing was submitted (usage, unreadable file, bad input,
configuration); 130 interrupted.
"""


def add_run_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register ``run`` on the ``multiqpu`` parser's subcommands."""
    run = commands.add_parser(
        "run",
        parents=[common],
        help="run your circuit files (OpenQASM 2/3, QPY) on the fleet",
        description=(
            "Run the circuits of FILE... across the fleet (from --config, $MULTIQPU_CONFIG or "
            "your user config file; the embedded default fleet when there is none). Without "
            "--observable each circuit is sampled and its counts printed with the device that "
            "ran it; with --observable its expectation values are estimated, each with a "
            "standard error, cutting the circuit when no device fits it."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("files", nargs="+", metavar="FILE", help="OpenQASM or QPY file")
    run.add_argument(
        "--shots",
        type=fmt.positive_int,
        default=None,
        help="shots per circuit when sampling (default: 1024); total shots per circuit "
        "when estimating (default: 100000)",
    )
    run.add_argument("--policy", choices=_POLICIES, default="balanced", help="default: balanced")
    run.add_argument(
        "--mitigation",
        metavar="LIST",
        type=parse_mitigation_names,
        default=None,
        help=f"comma-separated, from {', '.join(MITIGATIONS)}: correct every result on "
        "the device that produced it (e.g. readout,zne)",
    )
    run.add_argument(
        "--observable",
        action="append",
        metavar="PAULI",
        help="estimate this Pauli string (qubit 0 rightmost) instead of sampling; repeatable",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument(
        "--plot", metavar="FILE.png", help="draw the run timeline (needs multiqpu[plot])"
    )
    run.add_argument(
        "--budget-plot",
        metavar="FILE.png",
        help="with --observable: draw the first circuit's error budget (needs multiqpu[plot])",
    )
    run.add_argument("--config", metavar="PATH", help="fleet config file to read")
    run.set_defaults(handler=run_run)


def parse_mitigation_names(text: str) -> list[str]:
    """argparse type: ``readout,zne`` -> ``["readout", "zne"]`` (each a known name)."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in MITIGATIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(MITIGATIONS)}, got {text!r}"
        )
    return names


def parse_mitigation(names: list[str] | None) -> list[Any] | None:
    """The mitigation options for ``--mitigation`` names (None: no mitigation)."""
    if not names:
        return None
    from multiqpu.mitigation import ZNE, PauliTwirl, Readout

    make = {"readout": Readout, "zne": ZNE, "twirl": PauliTwirl}
    return [make[n]() for n in dict.fromkeys(names)]


def _read_qasm(path: Path) -> QuantumCircuit:
    source = path.read_text()
    try:
        if "OPENQASM 3" in source or path.suffix.lower() == ".qasm3":
            from qiskit import qasm3

            return qasm3.loads(source)
        from qiskit import qasm2

        return qasm2.loads(source, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    except Exception as exc:  # qiskit's parse errors are not MultiQPUErrors
        raise InvalidInputError(f"{path}: not valid OpenQASM ({fmt.one_line(exc)})") from None


def _read_qpy(path: Path) -> list[QuantumCircuit]:
    from qiskit import QuantumCircuit, qpy

    try:
        with path.open("rb") as fh:
            loaded = qpy.load(fh)
    except Exception as exc:
        raise InvalidInputError(f"{path}: not a readable QPY file ({fmt.one_line(exc)})") from None
    circuits = [c for c in loaded if isinstance(c, QuantumCircuit)]
    if not circuits:
        raise InvalidInputError(f"{path}: holds no quantum circuits")
    return circuits


def load_circuits(files: list[str]) -> list[tuple[str, QuantumCircuit]]:
    """``(file, circuit)`` for every circuit of ``files``, in order (QPY files may hold many)."""
    out: list[tuple[str, QuantumCircuit]] = []
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise InvalidInputError(f"no such circuit file: {name}")
        if path.suffix.lower() == ".qpy":
            out += [(name, c) for c in _read_qpy(path)]
        else:
            circuit = _read_qasm(path)
            circuit.name = path.stem  # a QASM program has no name of its own
            out.append((name, circuit))
    return out


def _check_plot_path(path: str | None) -> None:
    if path is None:
        return
    from multiqpu.plots import require_matplotlib

    require_matplotlib()  # before anything runs: no run is wasted for a missing extra
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise InvalidInputError(f"cannot write {path}: no directory {parent}")


def run_run(args: argparse.Namespace) -> int:
    from multiqpu.cli._run_exec import estimate_all, sample_all

    try:
        if args.budget_plot and not args.observable:
            raise InvalidInputError(
                "--budget-plot draws an estimate's error budget: add --observable"
            )
        _check_plot_path(args.plot)
        _check_plot_path(args.budget_plot)
        loaded = load_circuits(args.files)
        mitigation = parse_mitigation(args.mitigation)
        from multiqpu.fleet import Fleet

        fleet = Fleet.from_config(args.config)
    except MultiQPUError as exc:
        return _error(args, exc, EXIT_ERROR)
    try:
        if args.observable:
            summary = estimate_all(fleet, loaded, args, mitigation)
        else:
            summary = sample_all(fleet, loaded, args, mitigation)
    except _NOTHING_DONE as exc:
        return _error(args, exc, EXIT_ERROR)
    except MultiQPUError as exc:
        return _error(args, exc, EXIT_FAILED)
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=_jsonable)
        sys.stdout.write("\n")
    if any(why is not None for why in summary.get("plots", {}).values()):
        return EXIT_FAILED  # the results are out; a picture asked for is not
    return EXIT_OK


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return None
    return str(value)


def _error(args: argparse.Namespace, exc: BaseException, code: int) -> int:
    if getattr(args, "debug", False):
        import traceback

        traceback.print_exception(exc)
    print(f"multiqpu: error: {fmt.one_line(exc)}", file=sys.stderr)
    return code
