"""Every Python snippet of the docs runs as written.

Each page under docs/ (not the generated docs/api/) runs its ```python blocks in order, in one
namespace per page, with top-level ``await`` allowed, in a temporary working directory and
without a user config (the embedded default fleet). A block that cannot run here by nature (a
real cloud account, a cluster address) is preceded by ``<!-- not run: <reason> -->``.

A block whose first line is a comment naming a file (``# pkg/__init__.py``) is also written to
that path under the working directory, which is put on ``sys.path``: the provider tutorial's
package is then importable by the block after it, as it would be for a reader.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not run\b:?(.*?)-->\s*$")
FILE_COMMENT = re.compile(r"#\s*([\w./-]+\.py)\s*$")
# Pages whose snippets take more than ~3 s on one core (measured page by page).
SLOW = {
    "cutting.md",
    "journal.md",
    "mitigation.md",
    "pennylane.md",
    "plots.md",
    "qnn.md",
    "scale-out.md",
    "scheduler.md",
}


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str
    not_run: str | None  # the reason, when marked


def _pages() -> list[str]:
    return sorted(
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if "api" not in p.relative_to(DOCS).parts[:1]
    )


def _blocks(page: str) -> list[Block]:
    return _parse(page, (DOCS / page).read_text())


def _parse(page: str, text: str) -> list[Block]:
    blocks = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marked = NOT_RUN.search(before)
        line = text.count("\n", 0, m.start()) + 2
        blocks.append(Block(page, line, m.group(1), marked.group(1).strip() if marked else None))
    return blocks


def _pages_with_python() -> list[str]:
    return [p for p in _pages() if _blocks(p)]


def _param(page: str) -> object:
    return pytest.param(page, marks=pytest.mark.slow) if page in SLOW else page


def _run_block(block: Block, namespace: dict[str, object], workdir: Path) -> None:
    first = block.code.split("\n", 1)[0]
    named = FILE_COMMENT.fullmatch(first.strip())
    if named:
        target = workdir / named.group(1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code)
    source = "\n" * (block.line - 1) + block.code  # tracebacks point at the page's lines
    code = compile(source, str(DOCS / block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    outcome = eval(code, namespace)  # the docs' own snippets
    if inspect.iscoroutine(outcome):  # the block has a top-level await
        asyncio.run(outcome)


def test_every_python_fence_is_found() -> None:
    """No python block escapes the runner by its fence (indented, ``py``, ``python3``)."""
    loose = re.compile(r"^\s*```\s*(?:python3?|py|pycon|ipython)\b", re.M)
    for page in _pages():
        text = (DOCS / page).read_text()
        assert len(loose.findall(text)) == len(_blocks(page)), f"{page}: a python fence not run"
    pages = _pages_with_python()
    assert "quickstart.md" in pages and "providers/local.md" in pages
    assert not [p for p in pages if p.startswith("api/")]


def test_parse_reads_marks_and_lines() -> None:
    text = (
        "# T\n\n```python\nx = 1\n```\n\n<!-- not run: needs an IBM Quantum account -->\n"
        "```python\nreal()\n```\n<!-- not run -->\n```python\ny = 2\n```\n"
    )
    first, second, third = _parse("t.md", text)
    assert (first.line, first.code, first.not_run) == (4, "x = 1\n", None)
    assert second.not_run == "needs an IBM Quantum account" and second.code == "real()\n"
    assert third.not_run == ""  # marked without a reason: the test below refuses it


def test_not_run_marks_have_reasons_and_pages_run_something() -> None:
    for page in _pages():
        text = (DOCS / page).read_text()
        marks = re.findall(r"<!--\s*not run\b(.*?)-->", text, re.S)
        blocks = _blocks(page)
        marked = [b for b in blocks if b.not_run is not None]
        # a mark is always directly before a python fence, and always says why
        assert len(marks) == len(marked), f"{page}: a 'not run' mark not before a python block"
        for b in marked:
            assert len(b.not_run or "") >= 10, f"{page}:{b.line}: 'not run' needs a reason"
        if blocks:
            assert any(b.not_run is None for b in blocks), f"{page}: no runnable python block"


@pytest.mark.parametrize("page", [_param(p) for p in _pages_with_python()])
def test_doc_snippets_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no user config: the default fleet
    monkeypatch.delenv("MULTIQPU_CONFIG", raising=False)
    monkeypatch.setenv("MULTIQPU_JOURNAL", str(tmp_path / "journal.sqlite"))
    monkeypatch.chdir(tmp_path)  # files the snippets write land here
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    try:
        for block in _blocks(page):
            if block.not_run is None:
                _run_block(block, namespace, tmp_path)
    finally:
        for name in set(sys.modules) - before:  # modules the page wrote into tmp_path
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file.startswith(str(tmp_path)):
                del sys.modules[name]


@pytest.mark.slow
def test_provider_tutorial_passes_its_conformance_suite(tmp_path: Path) -> None:
    """The tutorial's package passes the conformance tests its page tells the reader to run
    (all but the entry-point check, which needs the package installed)."""
    import subprocess

    for block in _blocks("providers/writing-a-provider.md"):
        named = FILE_COMMENT.fullmatch(block.code.split("\n", 1)[0].strip())
        assert named, f"line {block.line}: the tutorial's blocks each name their file"
        target = tmp_path / named.group(1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-k", "not entry_point", "tests/test_acme_conformance.py"]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\b[1-9]\d* passed", done.stdout), done.stdout[-3000:]
