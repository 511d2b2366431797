"""The ``multiqpu`` command line: ``multiqpu devices``, ``multiqpu demo``.

Importing this package is cheap (argparse only); each command imports what it needs when it
runs, so ``multiqpu --help`` stays fast and never loads Qiskit, rich or a vendor SDK.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    from multiqpu.cli._app import run

    return run(argv)
