"""One real local Ray instance for the whole test session (``ray.init(num_cpus=2)``, no
dashboard), started by the first test that asks for it: Ray's start-up (2.5-3 s) is paid
once, and tests that do not use Ray never pay it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_engine() -> Iterator[Any]:
    import os
    from pathlib import Path

    import ray

    from multiqpu.engine import RayEngine

    # Ray's workers import the tests' helper module (_engine_work) by name.
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield RayEngine()
    finally:
        ray.shutdown()
