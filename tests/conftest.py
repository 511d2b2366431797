"""Test isolation shared by every test: each test gets its own job journal file.

``fleet.sample`` records every run in the journal by default (``$MULTIQPU_JOURNAL`` or the
per-user data directory); tests must neither write to the developer's own journal nor see each
other's runs or cached results. Subprocesses (CLI, examples) inherit the variable.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_journal(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path_factory.mktemp("journal") / "journal.sqlite"
    monkeypatch.setenv("MULTIQPU_JOURNAL", str(path))
