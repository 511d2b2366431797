"""The public API is what __all__ says, sorted, and every name in it exists."""

from __future__ import annotations

import multiqpu


def test_all_is_sorted_and_complete() -> None:
    names = [n for n in multiqpu.__all__ if n != "__version__"]
    assert names == sorted(names, key=str.casefold) or names == sorted(names)
    for name in multiqpu.__all__:
        assert hasattr(multiqpu, name), name


def test_required_names_exist() -> None:
    for name in ("Device", "Fleet", "device", "MultiQPUError", "Calibration"):
        assert name in multiqpu.__all__
    assert callable(multiqpu.Fleet.local)
    assert callable(multiqpu.Fleet.from_config)


def test_exception_tree_is_rooted() -> None:
    for name in multiqpu.__all__:
        obj = getattr(multiqpu, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, multiqpu.MultiQPUError), name
