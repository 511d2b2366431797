"""Each test gets its own readout-calibration cache (memory and disk)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from multiqpu.mitigation._cache import clear_memory


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MULTIQPU_CACHE_DIR", str(tmp_path / "cache"))
    clear_memory()
    yield
    clear_memory()
