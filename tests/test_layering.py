"""Import layering: the core never imports a vendor SDK, and importing it stays cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR_SDKS = {"qiskit_ibm_runtime", "braket", "boto3", "botocore"}
PROVIDER_PACKAGES = {"multiqpu_ibm", "multiqpu_braket", "multiqpu_local"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_a_vendor_sdk_or_an_adapter() -> None:
    offenders = {}
    for path in (ROOT / "multiqpu").rglob("*.py"):
        bad = _imported_modules(path) & (VENDOR_SDKS | PROVIDER_PACKAGES)
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}, f"core modules import vendor code: {offenders}"


def test_adapters_do_not_import_each_other() -> None:
    for pkg in PROVIDER_PACKAGES:
        others = PROVIDER_PACKAGES - {pkg}
        for path in (ROOT / "providers" / pkg).rglob("*.py"):
            bad = _imported_modules(path) & others
            assert not bad, f"{path.relative_to(ROOT)} imports another adapter: {bad}"


def test_importing_multiqpu_loads_no_heavy_module() -> None:
    code = (
        "import sys, multiqpu\n"
        "heavy = {'qiskit', 'qiskit_aer', 'qiskit_ibm_runtime', 'braket', 'boto3', 'pennylane',"
        " 'ray', 'rich', 'numpy'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
