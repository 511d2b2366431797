"""Argument parsing, dispatch and error handling for the ``multiqpu`` command."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from multiqpu import __version__
from multiqpu.cli import _format as fmt
from multiqpu.errors import MultiQPUError

__all__ = ["EXIT_ERROR", "EXIT_FAILED", "EXIT_OK", "build_parser", "run"]

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but some of its work failed (e.g. a device in the demo)
EXIT_ERROR = 2  # usage or configuration error: nothing was done

Handler = Callable[[argparse.Namespace], int]

_DESCRIPTION = """\
Run quantum workloads across several QPUs at once (IBM Quantum, Amazon Braket, local
simulators) behind one async interface. Without a config file multiqpu uses its embedded
default fleet of simulated devices, which needs no account and no network.
"""

_EPILOG = """\
examples:
  multiqpu demo                 GHZ on every default device, then a scheduled batch
  multiqpu devices              list the devices of your fleet with queues, errors, prices
  multiqpu devices --json       the same as JSON
  multiqpu run bell.qasm --shots 1000 --json      your circuits: counts and devices
  multiqpu runs show RUN_ID --plot timeline.png   what ran where, and when
  multiqpu config check         is the config file valid, where do credentials come from

Run 'multiqpu COMMAND --help' for a command's options. Docs: docs/cli.md.
"""


def _devices(args: argparse.Namespace) -> int:
    from multiqpu.cli._devices import run_devices

    return run_devices(args)


def _demo(args: argparse.Namespace) -> int:
    from multiqpu.cli._demo import run_demo

    return run_demo(args)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    # --debug is accepted before or after the command name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback when something fails",
    )

    parser = argparse.ArgumentParser(
        prog="multiqpu",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"multiqpu {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when something fails"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    devices = commands.add_parser(
        "devices",
        parents=[common],
        help="list the fleet's devices: status, queue, errors, price",
        description=(
            "List every device of the fleet (from --config, $MULTIQPU_CONFIG or your user "
            "config file; the embedded default fleet when there is none) with its status, "
            "queue estimate, median two-qubit and readout errors and price. Offline devices "
            "are read from local snapshots, so this works without a network."
        ),
    )
    devices.add_argument("--json", action="store_true", help="print a JSON list of objects")
    devices.add_argument("--config", metavar="PATH", help="fleet config file to read")
    devices.set_defaults(handler=_devices)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="run a GHZ circuit on every default device at once and compare",
        description=(
            "Build a small GHZ circuit, run it concurrently on every device of the embedded "
            "default fleet (each behind a simulated, time-scaled queue) and compare queue "
            "wait, run time, estimated and measured fidelity and cost; then let the scheduler "
            "place a batch of GHZ circuits and print its run report (which devices it "
            "preferred: short queues, low noise). Needs no account."
        ),
    )
    demo.add_argument("--json", action="store_true", help="print a JSON summary")
    demo.add_argument("--qubits", type=fmt.positive_int, default=3, help="GHZ width (default: 3)")
    demo.add_argument(
        "--shots", type=fmt.positive_int, default=2000, help="shots per device (default: 2000)"
    )
    demo.add_argument(
        "--time-scale",
        type=_non_negative_float,
        default=None,
        metavar="S",
        help="caller seconds per simulated queue second (default: 1e-4; 0: no queue wait)",
    )
    demo.add_argument(
        "--batch",
        type=fmt.non_negative_int,
        default=24,
        metavar="N",
        help="then schedule N GHZ circuits across the noisy devices and print the run "
        "report (default: 24; 0: skip)",
    )
    demo.set_defaults(handler=_demo)

    from multiqpu.cli._run import add_run_command

    add_run_command(commands, common)

    from multiqpu.cli._runs import add_run_commands

    add_run_commands(commands, common)

    from multiqpu.cli._config_check import add_config_command

    add_config_command(commands, common)

    from multiqpu.cli._plan import add_plan_command

    add_plan_command(commands, common)

    from multiqpu.cli._simulate import add_simulate_command

    add_simulate_command(commands, common)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, --version, usage errors: keep argparse's code
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_OK
    try:
        return handler(args)
    except MultiQPUError as exc:
        if args.debug:
            traceback.print_exc()
        from multiqpu.cli._format import one_line

        print(f"multiqpu: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("multiqpu: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `multiqpu devices --json | head`: the reader left, that is fine
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return EXIT_OK
