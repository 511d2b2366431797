"""The adapters stand on the narrow provider interface, and it gives them what they need."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import multiqpu
from multiqpu import provider_api
from multiqpu.providers import get_provider

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ("multiqpu_ibm", "multiqpu_braket", "multiqpu_local")
#: the only multiqpu module an adapter may import
ALLOWED = {"multiqpu.provider_api"}


def _multiqpu_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "multiqpu")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == "multiqpu"
        ):
            found.add(node.module)
    return found


def test_adapters_import_multiqpu_only_through_the_interface() -> None:
    offenders: dict[str, list[str]] = {}
    for pkg in ADAPTERS:
        for path in sorted((ROOT / "providers" / pkg).rglob("*.py")):
            bad = _multiqpu_imports(path) - ALLOWED
            if bad:
                offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}, f"adapters must import multiqpu.provider_api only: {offenders}"


def test_interface_exports_exist_and_are_sorted() -> None:
    names = list(provider_api.__all__)
    assert names == sorted(names)
    for name in names:
        assert hasattr(provider_api, name), name
    for name in ("Device", "Job", "ThreadJob", "SimulatorDevice", "DelegatingDevice", "Provider"):
        assert name in names
    # the public types are the very objects the package exports, not copies
    assert provider_api.Device is multiqpu.Device
    assert provider_api.Provider is multiqpu.Provider
    assert provider_api.MultiQPUError is multiqpu.MultiQPUError


def test_importing_the_interface_is_cheap() -> None:
    code = (
        "import sys, multiqpu.provider_api\n"
        "heavy = {'qiskit', 'qiskit_aer', 'numpy', 'braket', 'qiskit_ibm_runtime'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_shipped_providers_subclass_the_base() -> None:
    for name in ("local", "ibm", "braket"):
        provider = get_provider(name)
        assert isinstance(provider, provider_api.Provider)
        assert repr(provider) == f"<multiqpu provider {name!r}>"


def test_a_duck_typed_provider_is_adopted_with_defaults() -> None:
    from multiqpu.providers import _Adopted

    class Old:
        name = "old"
        extra = "old"

        def device(self, name: str, **options: object) -> multiqpu.Device:
            return multiqpu.device("local:ideal", num_qubits=2)

        def known_devices(self) -> list[str]:
            return ["x"]

    adopted = _Adopted(Old())
    assert isinstance(adopted, provider_api.Provider)
    assert (adopted.requires, dict(adopted.env_options), adopted.secret_options) == ((), {}, ())
    assert adopted.default_devices() == [] and adopted.device_options("x") is None
    assert adopted.device("x").num_qubits == 2
