"""Issue 11's acceptance script: prints one JSON line.

It holds the keys of points 1-3 (canaries, quarantine, corrupted estimates; see
tests/benchmarks/_trust_canary.py for the families and seeds) and of points 4 and 5 (robust
aggregation, differential privacy; tests/benchmarks/_trust_qnn.py). ``--quick``: CI size.

    python tests/benchmarks/trust.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _trust_canary
import _trust_qnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="two seeds only")
    args = parser.parse_args()
    logging.getLogger("absl").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    seeds = (0, 1) if args.quick else _trust_qnn.DEV_SEEDS + _trust_qnn.FRESH_SEEDS
    out = _trust_qnn.measure(seeds)
    canary_seeds = (0,) if args.quick else _trust_canary.DEV_SEEDS + _trust_canary.FRESH_SEEDS
    out.update(_trust_canary.measure(canary_seeds, quick=args.quick))
    out["canary_seeds"] = {
        "development": list(_trust_canary.DEV_SEEDS),
        "fresh": [s for s in canary_seeds if s in _trust_canary.FRESH_SEEDS],
    }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
