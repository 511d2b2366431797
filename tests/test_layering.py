"""Import layering, read off the source with an AST scan (Cirq's ``dev_tools/import_test.py``).

The floors, bottom to top: vendor SDKs, reached only from the adapters under ``providers/``;
the adapters, which reach multiqpu only through the provider interface and public names;
the core's values and contracts (device, calibration, errors); the device pool; the engines
(scheduler, cutting, mitigation, primitives, QNN, the pipeline, journal, config), which work
on a :class:`~multiqpu.pool.DevicePool` and never import the ``Fleet`` facade back; and on
top ``Fleet``, the CLI and the integrations (PennyLane). Importing ``multiqpu`` stays cheap.

Imports under ``if TYPE_CHECKING:`` are annotations only and are allowed; lazy imports inside
functions count like any other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR_SDKS = {"qiskit_ibm_runtime", "braket", "boto3", "botocore"}
PROVIDER_PACKAGES = {"multiqpu_ibm", "multiqpu_braket", "multiqpu_local"}

#: The engines: packages and modules that run on a DevicePool and never import the facade.
ENGINE_PACKAGES = (
    "scheduler",
    "cutting",
    "mitigation",
    "primitives",
    "qnn",
    "pipeline",
    "plots",
    "engine",
)
ENGINE_MODULES = ("journal.py", "config.py", "pool.py")

#: The facade, as an engine might reach it: the module, and what ``multiqpu`` re-exports from
#: it (``multiqpu.device`` the *function* is ``multiqpu.fleet.device``; the ``Device`` class
#: lives in the module ``multiqpu.device``, which ``from multiqpu.device import ...`` reaches).
FACADE_MODULE = "multiqpu.fleet"
FACADE_NAMES = {"Fleet", "device"}

#: Engine modules allowed to import the facade at run time: none. Kept as a named exception
#: list so that a stale entry fails :func:`test_known_facade_imports_are_current`.
KNOWN_FACADE_IMPORTS: set[str] = set()

#: The multiqpu modules an adapter under providers/ may import from, besides public names
#: (``from multiqpu import <a name in multiqpu.__all__>``): the narrow provider interface.
ADAPTER_ALLOWED_MODULES: set[str] = {"multiqpu.provider_api"}

#: No module may be longer than this (lines).
MAX_MODULE_LINES = 500


# ---------------------------------------------------------------------------- the scan
def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node`` except the bodies of ``if TYPE_CHECKING:`` blocks (their
    ``else:`` branches run, and are scanned)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield child
        yield from _runtime_nodes(child)


def _package_of(path: Path) -> str:
    """The dotted package holding ``path`` (``multiqpu.qnn`` for multiqpu/qnn/trainer.py)."""
    rel = path.relative_to(ROOT / "providers" if "providers" in path.parts else ROOT)
    return ".".join(rel.parts[:-1])


def _imports(path: Path) -> Iterator[tuple[int, str, str | None]]:
    return _imports_in(path.read_text(), _package_of(path))


def _imports_in(source: str, package: str) -> Iterator[tuple[int, str, str | None]]:
    """``(line, module, name)`` for every import run outside ``TYPE_CHECKING`` in a module of
    ``package``: ``name`` is the imported name of ``from module import name``, None for
    ``import module``. Relative imports are resolved; ``importlib.import_module("...")`` with
    a literal counts too."""
    tree = ast.parse(source)
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            for alias in node.names:
                yield node.lineno, module, alias.name
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield node.lineno, arg.value, None


def _attribute_uses(source: str, package: str, names: set[str]) -> Iterator[tuple[int, str]]:
    """``package.<name>`` attribute reads at run time (``multiqpu.Fleet(...)``)."""
    tree = ast.parse(source)
    for node in _runtime_nodes(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == package
            and node.attr in names
        ):
            yield node.lineno, f"{package}.{node.attr}"


def _engine_files() -> list[Path]:
    files: list[Path] = []
    for pkg in ENGINE_PACKAGES:
        files.extend(sorted((ROOT / "multiqpu" / pkg).rglob("*.py")))
    files.extend(ROOT / "multiqpu" / name for name in ENGINE_MODULES)
    return [f for f in files if f.exists()]


def _facade_imports(path: Path) -> list[str]:
    return _facade_imports_in(path.read_text(), _package_of(path))


def _facade_imports_in(source: str, package: str) -> list[str]:
    found = []
    for line, module, name in _imports_in(source, package):
        if module == FACADE_MODULE or module.startswith(FACADE_MODULE + "."):
            found.append(f"line {line}: {module}")
        elif module == "multiqpu" and name in FACADE_NAMES:
            found.append(f"line {line}: from multiqpu import {name}")
    found.extend(
        f"line {line}: {use}" for line, use in _attribute_uses(source, "multiqpu", FACADE_NAMES)
    )
    return found


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# ---------------------------------------------------------------------------- the floors
def test_the_scan_sees_lazy_imports_and_skips_type_checking() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from multiqpu.fleet import Fleet\n"
        "else:\n"
        "    from ..fleet import device\n"
        "from multiqpu.device import Device\n"
        "def f():\n"
        "    import multiqpu\n"
        "    from multiqpu import Fleet\n"
        "    importlib.import_module('multiqpu.fleet')\n"
        "    return multiqpu.Fleet\n"
    )
    assert _facade_imports_in(source, "multiqpu.qnn") == [
        "line 5: multiqpu.fleet",
        "line 9: from multiqpu import Fleet",
        "line 10: multiqpu.fleet",
        "line 11: multiqpu.Fleet",
    ]


def test_engines_never_import_the_fleet_facade() -> None:
    offenders = {}
    for path in _engine_files():
        found = _facade_imports(path)
        if found and _rel(path) not in KNOWN_FACADE_IMPORTS:
            offenders[_rel(path)] = found
    assert offenders == {}, (
        "engine modules import the Fleet facade outside TYPE_CHECKING; take a DevicePool "
        f"(multiqpu.pool.as_pool) instead: {offenders}"
    )


def test_known_facade_imports_are_current() -> None:
    stale = {f for f in KNOWN_FACADE_IMPORTS if not _facade_imports(ROOT / f)}
    assert stale == set(), f"no longer import the facade: drop from KNOWN_FACADE_IMPORTS: {stale}"


def test_engines_cover_what_they_should() -> None:
    engines = {_rel(p) for p in _engine_files()}
    for module in ("multiqpu/scheduler/_api.py", "multiqpu/primitives/_dispatch.py",
                   "multiqpu/qnn/_executor.py", "multiqpu/pool.py", "multiqpu/config.py",
                   "multiqpu/journal.py", "multiqpu/scheduler/_demo.py"):  # fmt: skip
        assert module in engines


def test_adapters_import_multiqpu_only_through_the_interface_and_public_names() -> None:
    import multiqpu

    public = set(multiqpu.__all__)
    offenders: dict[str, list[str]] = {}
    for pkg in sorted(PROVIDER_PACKAGES):
        for path in sorted((ROOT / "providers" / pkg).rglob("*.py")):
            bad = []
            for line, module, name in _imports(path):
                top = module.split(".")[0]
                if top != "multiqpu":
                    continue
                if module == "multiqpu":
                    if name is not None and name not in public:
                        bad.append(f"line {line}: from multiqpu import {name} (not public)")
                elif module not in ADAPTER_ALLOWED_MODULES:
                    bad.append(f"line {line}: {module}")
            if bad:
                offenders[_rel(path)] = bad
    assert offenders == {}, (
        f"adapters reach into multiqpu beyond the provider interface and public names: {offenders}"
    )


def test_core_never_imports_a_vendor_sdk_or_an_adapter() -> None:
    offenders = {}
    for path in (ROOT / "multiqpu").rglob("*.py"):
        bad = {m.split(".")[0] for _, m, _ in _imports_anywhere(path)} & (
            VENDOR_SDKS | PROVIDER_PACKAGES
        )
        if bad:
            offenders[_rel(path)] = sorted(bad)
    assert offenders == {}, f"core modules import vendor code: {offenders}"


def _imports_anywhere(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """Imports including those under TYPE_CHECKING (a vendor type in an annotation still
    makes type-checking the core need the vendor SDK)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.lineno, node.module, alias.name


def test_adapters_do_not_import_each_other() -> None:
    for pkg in PROVIDER_PACKAGES:
        others = PROVIDER_PACKAGES - {pkg}
        for path in (ROOT / "providers" / pkg).rglob("*.py"):
            bad = {m.split(".")[0] for _, m, _ in _imports_anywhere(path)} & others
            assert not bad, f"{_rel(path)} imports another adapter: {bad}"


def test_no_module_is_over_500_lines() -> None:
    long = {}
    for top in ("multiqpu", "providers"):
        for path in (ROOT / top).rglob("*.py"):
            n = len(path.read_text().splitlines())
            if n > MAX_MODULE_LINES:
                long[_rel(path)] = n
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_importing_multiqpu_loads_no_heavy_module() -> None:
    code = (
        "import sys, multiqpu\n"
        "heavy = {'qiskit', 'qiskit_aer', 'qiskit_ibm_runtime', 'braket', 'boto3', 'pennylane',"
        " 'ray', 'rich', 'numpy'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
