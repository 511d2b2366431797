"""``python -m multiqpu``: the same as the ``multiqpu`` command."""

from __future__ import annotations

import sys

from multiqpu.cli import main

if __name__ == "__main__":
    sys.exit(main())
