"""The documentation site: Sphinx builds docs/ (MyST Markdown pages and an API reference
generated from the docstrings) with warnings as errors, and every public module has its page.

The build runs offline: ``MULTIQPU_DOCS_OFFLINE=1`` tells docs/conf.py to leave out the
intersphinx projects (Qiskit, PennyLane, Python, NumPy) whose inventory is not stored in
docs/_inventories/, instead of fetching it (which fails without a network and, under -W,
would fail the build). With a network, a plain build links to those projects' docs.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api"
AGGREGATORS = {"multiqpu", "multiqpu.provider_api"}


def public_modules() -> list[str]:
    from test_public_api import PUBLIC_ALL

    return sorted(PUBLIC_ALL)


def api_page(module: str, public: set[str], owner: dict[int, str]) -> str:
    """The page docs/api/<module>.md should hold: automodule over its ``__all__``, less the
    names documented in the public module that defines (or, for the aggregators, exports)
    them, which are linked instead (each object is documented once)."""
    mod = importlib.import_module(module)
    elsewhere: dict[str, str] = {}
    for name in mod.__all__:
        obj = getattr(mod, name)
        home = obj.__name__ if isinstance(obj, type(sys)) else getattr(obj, "__module__", None)
        if home and home != module and home in public:
            elsewhere[name] = home
        elif module in AGGREGATORS and owner.get(id(obj), module) != module:
            elsewhere[name] = owner[id(obj)]
    text = f"# `{module}`\n\n```{{eval-rst}}\n.. automodule:: {module}\n"
    if elsewhere:
        text += f"   :exclude-members: {', '.join(sorted(elsewhere))}\n"
    text += "```\n"
    if elsewhere:
        text += "\nAlso available here, documented where they are defined:\n\n"
        text += "".join(f"- `{module}.{n}`: [{h}]({h}.md)\n" for n, h in sorted(elsewhere.items()))
    return text


def expected_pages() -> dict[str, str]:
    mods = public_modules()
    owner: dict[int, str] = {}
    for m in mods:
        if m not in AGGREGATORS:
            mod = importlib.import_module(m)
            for name in mod.__all__:
                owner.setdefault(id(getattr(mod, name)), m)
    return {m: api_page(m, set(mods), owner) for m in mods}


def test_every_public_module_has_its_api_page() -> None:
    """docs/api/ is generated from the pinned public modules; after changing a public module,
    rewrite it with ``python tests/test_docs_sphinx.py``."""
    pages = expected_pages()
    stale = [m for m, text in pages.items() if not (API / f"{m}.md").is_file()
             or (API / f"{m}.md").read_text() != text]  # fmt: skip
    assert not stale, f"stale API pages {stale}: run python tests/test_docs_sphinx.py"
    index = (API / "index.md").read_text()
    assert all(f"\n{m}\n" in index for m in pages)
    extra = {p.stem for p in API.glob("*.md")} - set(pages) - {"index"}
    assert not extra, f"API pages for modules that are not public: {extra}"


def test_every_page_is_in_the_table_of_contents() -> None:
    index = (DOCS / "index.md").read_text()
    listed = set(re.findall(r"^([a-z][\w/-]*)$", index, re.M))
    pages = {str(p.relative_to(DOCS).with_suffix("")) for p in DOCS.rglob("*.md")}
    pages -= {"index"} | {p for p in pages if p.startswith(("api/", "_build"))}
    assert pages <= listed, f"pages not in docs/index.md's toctree: {sorted(pages - listed)}"


def test_intersphinx_links_qiskit_and_pennylane(monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    monkeypatch.delenv("MULTIQPU_DOCS_OFFLINE", raising=False)
    conf = runpy.run_path(str(DOCS / "conf.py"))
    mapping = conf["intersphinx_mapping"]
    assert mapping["qiskit"] == (
        "https://quantum.cloud.ibm.com/docs/en/api/qiskit/",
        "https://quantum.cloud.ibm.com/docs/api/qiskit/objects.inv",
    )
    assert mapping["pennylane"][0].startswith("https://docs.pennylane.ai")
    monkeypatch.setenv("MULTIQPU_DOCS_OFFLINE", "1")
    offline = runpy.run_path(str(DOCS / "conf.py"))["intersphinx_mapping"]
    stored = {p.stem for p in (DOCS / "_inventories").glob("*.inv")}
    assert set(offline) == stored & set(mapping)


@pytest.mark.slow
def test_sphinx_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    env = dict(os.environ, MULTIQPU_DOCS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "providers")])
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-6000:]
    index = (out / "index.html").read_text()
    for page in ("quickstart.html", "cli.html", "plots.html", "api/index.html"):
        assert page in index
    scheduler = (out / "api" / "multiqpu.scheduler.html").read_text()
    assert "RunReport" in scheduler and "JobSpan" in scheduler and "plot" in scheduler
    fleet = (out / "api" / "multiqpu.fleet.html").read_text()
    assert "sample" in fleet and "estimate" in fleet
    assert not list(DOCS.glob("_build"))  # nothing written into the sources


if __name__ == "__main__":  # rewrite docs/api/ from the public modules
    sys.path[:0] = [str(ROOT), str(ROOT / "providers"), str(ROOT / "tests")]
    pages = expected_pages()
    for module, text in pages.items():
        (API / f"{module}.md").write_text(text)
    toc = "\n".join(pages)
    (API / "index.md").write_text(
        "# API reference\n\nGenerated from the docstrings of every public module: the modules "
        "whose `__all__` is pinned\nby `tests/test_public_api.py`; a module's members are the "
        "names of its `__all__`, each\ndocumented once, in the module that defines it (a package "
        "that re-exports a name links\nthere). Private modules (`_name.py`) are implementation "
        f"and are not listed.\n\n```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n"
    )
