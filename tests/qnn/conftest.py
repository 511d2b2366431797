"""Fixtures of the QNN tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def unfused(monkeypatch: pytest.MonkeyPatch) -> None:
    """One job per batch in pipelined training (``FUSE`` 1: what a batch of fewer than
    ``FUSE_MIN`` samples per device gets); fused steps: tests/qnn/test_pipelined_fused.py."""
    import multiqpu.qnn._pipelined as pipelined

    monkeypatch.setattr(pipelined, "FUSE", 1)
