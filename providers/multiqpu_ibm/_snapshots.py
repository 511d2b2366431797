"""The calibration snapshots shipped with qiskit-ibm-runtime's fake backends, read as plain JSON.

Each fake backend lives in ``qiskit_ibm_runtime/fake_provider/backends/<short>/`` as
``conf_<short>.json`` (configuration) and ``props_<short>.json`` (calibration), and is named
``fake_<short>``. We find the installed package with :func:`importlib.util.find_spec`, which does
not execute it, so listing devices and reading calibrations never pays qiskit-ibm-runtime's
multi-second import.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["backends_dir", "fake_backend_names", "load_conf", "load_props", "snapshot_dir"]

_PACKAGE = "qiskit_ibm_runtime"


@cache
def backends_dir() -> Path | None:
    """``.../qiskit_ibm_runtime/fake_provider/backends``, or None if the package is missing."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "fake_provider" / "backends"
        if path.is_dir():
            return path
    return None


@cache
def fake_backend_names() -> tuple[str, ...]:
    """Sorted names (``"fake_torino"``, ...) of every fake backend with both snapshot files."""
    root = backends_dir()
    if root is None:
        return ()
    names = []
    for entry in root.iterdir():
        short = entry.name
        if (entry / f"conf_{short}.json").is_file() and (entry / f"props_{short}.json").is_file():
            names.append(f"fake_{short}")
    return tuple(sorted(names))


def snapshot_dir(name: str) -> Path:
    """The folder of fake backend ``name`` (``"fake_torino"``); KeyError if unknown."""
    root = backends_dir()
    if root is None or name not in fake_backend_names():
        raise KeyError(name)
    return root / name.removeprefix("fake_")


@cache
def load_conf(name: str) -> dict[str, Any]:
    """The backend configuration JSON of fake backend ``name`` (cached; do not mutate)."""
    short = name.removeprefix("fake_")
    with open(snapshot_dir(name) / f"conf_{short}.json", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@cache
def load_props(name: str) -> dict[str, Any]:
    """The backend properties (calibration) JSON of fake backend ``name`` (cached)."""
    short = name.removeprefix("fake_")
    with open(snapshot_dir(name) / f"props_{short}.json", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data
