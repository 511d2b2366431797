"""The Python snippets of the user-facing docs run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks(name: str) -> list[str]:
    return BLOCK.findall((DOCS / name).read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart.md", "plots.md"])
def test_doc_snippets_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no user config: the default fleet
    monkeypatch.delenv("MULTIQPU_CONFIG", raising=False)
    monkeypatch.setenv("MULTIQPU_JOURNAL", str(tmp_path / "journal.sqlite"))
    monkeypatch.chdir(tmp_path)  # pictures the snippets save land here
    blocks = _blocks(name)
    assert blocks, f"{name} has no python snippets"
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for code in blocks:
        exec(compile(code, f"{name}", "exec"), namespace)
