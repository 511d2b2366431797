"""Sphinx configuration: the docs/ Markdown pages (MyST) plus an API reference generated from
the docstrings (autodoc), with links into Qiskit's and PennyLane's documentation
(intersphinx).

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (``pip install
'multiqpu[docs]'``). The test suite builds it the same way (tests/test_docs_sphinx.py).

Offline builds: intersphinx needs each project's ``objects.inv``. A copy in
``docs/_inventories/<name>.inv`` is used when present; otherwise it is fetched from the
project's site, unless ``MULTIQPU_DOCS_OFFLINE=1``, which leaves that project's links out
(plain text instead of links, and no warning), so that ``-W`` builds work without a network.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "providers")]

import multiqpu  # noqa: E402

project = "multiqpu"
author = "the multiqpu authors"
copyright = "the multiqpu authors"
release = multiqpu.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_inventories", "Thumbs.db", ".DS_Store"]

# MyST: the existing pages are plain GitHub Markdown and stay as they are.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# Links from a page to files outside docs/ (examples/multiqpu.toml) are plain links.
suppress_warnings = ["myst.xref_missing"]

# autodoc: members come from each module's __all__, in source order, with type hints in
# the description rather than in long signatures.
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_mock_imports: list[str] = []
# A method without a docstring of its own shows none, rather than its base class's (the
# PennyLane and Qiskit bases use directives and labels of their own documentation).
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Names in docstrings that Sphinx cannot resolve (forward references, private types)
# are not errors: the reference says what it can.
nitpicky = False

#: project -> (its documentation, where its inventory is when not next to it)
INTERSPHINX: dict[str, tuple[str, str | None]] = {
    "python": ("https://docs.python.org/3/", None),
    # Qiskit's API pages live under /docs/en/api/qiskit/, its inventory under /docs/api/qiskit/
    "qiskit": (
        "https://quantum.cloud.ibm.com/docs/en/api/qiskit/",
        "https://quantum.cloud.ibm.com/docs/api/qiskit/objects.inv",
    ),
    "pennylane": ("https://docs.pennylane.ai/en/stable/", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
}


def _inventories() -> dict[str, tuple[str, str | None]]:
    offline = os.environ.get("MULTIQPU_DOCS_OFFLINE", "").strip() not in ("", "0")
    mapping: dict[str, tuple[str, str | None]] = {}
    for name, (url, inventory) in INTERSPHINX.items():
        local = HERE / "_inventories" / f"{name}.inv"
        if local.is_file():
            mapping[name] = (url, str(local))
        elif not offline:
            mapping[name] = (url, inventory)
    return mapping


intersphinx_mapping = _inventories()
intersphinx_timeout = 10

html_theme = "alabaster"
html_title = f"multiqpu {release}"
html_static_path: list[str] = []
