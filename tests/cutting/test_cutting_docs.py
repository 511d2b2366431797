"""docs/cutting.md's Python snippets run as written, and the CLI's ``multiqpu plan`` works."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from multiqpu.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "cutting.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


@pytest.mark.slow
def test_cutting_doc_snippets_run(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 3
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), namespace)
    out = capsys.readouterr().out
    assert "sampling overhead: 81" in out
    assert "max_overhead=50" in out  # the refused strict plan says which bound
    assert "'00000000': 0.5" in out and "'11111111': 0.5" in out


def test_cli_plan_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["plan", "ghz:10", "--device", "local:ideal,num_qubits=6", "--shots", "20000"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "cuts: 1 (1 gate, 0 wire)" in text and "ready to run" in text
    assert main([*args, "--json", "--observable", "ZIIIIIIIIZ"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cut"] and data["gate_cuts"] == 1 and data["shots"] == 20000
    assert [f["width"] for f in data["fragments"]] == [6, 4]


def test_cli_plan_refusal_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "efficient_su2:12", "--device", "local:ideal,num_qubits=7",
                 "--max-overhead", "50"])  # fmt: skip
    assert code == 1
    captured = capsys.readouterr()
    assert "REFUSED" in captured.out and "max_overhead=50" in captured.err


def test_cli_plan_reads_qasm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "chain.qasm"
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', "qreg q[8];", "h q[0];"]
    lines += [f"cx q[{i}],q[{i + 1}];" for i in range(7)]
    path.write_text("\n".join(lines) + "\n")
    assert main(["plan", str(path), "--device", "local:ideal,num_qubits=5", "--exact"]) == 0
    assert "exact evaluation" in capsys.readouterr().out


def test_cli_plan_bad_input_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "nosuch:12", "--device", "local:ideal"]) == 2
    assert "unknown library circuit" in capsys.readouterr().err
