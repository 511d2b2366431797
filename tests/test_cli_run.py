"""``multiqpu run``, ``multiqpu runs show`` and ``multiqpu config check`` on real files, the
default fleet (Aer, fake backends, Braket's local emulator) and a real SQLite journal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from multiqpu.cli import main

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[")

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""

GHZ3_QASM3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
h q[0];
cx q[0], q[1];
cx q[1], q[2];
"""


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MULTIQPU_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MULTIQPU_JOURNAL", str(tmp_path / "journal.sqlite"))


@pytest.fixture
def bell(tmp_path: Path) -> Path:
    path = tmp_path / "bell.qasm"
    path.write_text(BELL)
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.slow
def test_run_bell_json_counts_and_device(
    capsys: pytest.CaptureFixture[str], bell: Path, tmp_path: Path
) -> None:
    """The acceptance command: counts and the device for each circuit, as JSON."""
    import multiqpu

    code, data = run_json(capsys, "run", str(bell), "--shots", "1000", "--json")
    assert code == 0
    (row,) = data["circuits"]
    assert row["file"] == str(bell) and row["name"] == "bell" and row["qubits"] == 2
    assert row["device"] in multiqpu.Fleet.local()
    assert row["shots"] == 1000 and sum(row["counts"].values()) == 1000
    # a Bell state: 00 and 11, each half the time within 5 standard errors (+ noise leak)
    share = row["counts"].get("00", 0) / 1000
    assert abs(share - 0.5) < 5 * (0.25 / 1000) ** 0.5 + 0.05
    assert row["counts"].get("00", 0) + row["counts"].get("11", 0) >= 900
    # the run is in the journal under the id the JSON gives
    (run_id,) = data["run_ids"]
    code, shown = run_json(capsys, "runs", "show", run_id, "--json")
    assert code == 0 and shown["run_id"] == run_id and shown["n_done"] == 1
    assert shown["per_device"][0]["device"] == row["device"]


@pytest.mark.slow
def test_run_many_files_qasm3_and_qpy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from qiskit import QuantumCircuit, qpy

    ghz = tmp_path / "ghz.qasm"
    ghz.write_text(GHZ3_QASM3)  # no measurements: measured on every qubit
    circuits = []
    for n in (1, 2):
        qc = QuantumCircuit(n, n, name=f"x{n}")
        qc.x(range(n))
        qc.measure(range(n), range(n))
        circuits.append(qc)
    pack = tmp_path / "two.qpy"
    with pack.open("wb") as fh:
        qpy.dump(circuits, fh)
    code, data = run_json(
        capsys, "run", str(ghz), str(pack), "--shots", "300", "--policy", "most_accurate", "--json"
    )
    assert code == 0
    rows = data["circuits"]
    assert [r["name"] for r in rows] == ["ghz", "x1", "x2"]
    assert set(rows[0]["counts"]) <= {"000", "111"} or rows[0]["device"] != "local:ideal"
    assert rows[1]["counts"].get("1", 0) >= 250 and rows[2]["counts"].get("11", 0) >= 200
    assert data["policy"] == "most_accurate"


@pytest.mark.slow
def test_run_observable_estimates_with_standard_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--observable goes through the estimate pipeline: values within 5 standard errors of
    the exact ones (<IZZ> = <XXX> = 1 on a GHZ state, <IIZ> = 0), plus the noisy
    devices' bias (up to 0.15 on the weight-2 and weight-3 terms)."""
    ghz = tmp_path / "ghz.qasm"
    ghz.write_text(GHZ3_QASM3)
    budget = tmp_path / "budget.png"
    code, data = run_json(
        capsys, "run", str(ghz), "--observable", "IZZ", "--observable", "XXX",
        "--observable", "IIZ", "--shots", "20000", "--json", "--budget-plot", str(budget),
    )  # fmt: skip
    assert code == 0
    (row,) = data["circuits"]
    values = {o["label"]: o for o in row["observables"]}
    assert set(values) == {"IZZ", "XXX", "IIZ"}
    for label, exact in (("IZZ", 1.0), ("XXX", 1.0), ("IIZ", 0.0)):
        o = values[label]
        # noise shrinks correlators towards 0; a lone <Z> of a GHZ state stays 0
        slack = 0.15 if exact else 0.0
        assert abs(o["value"] - exact) <= 5 * o["std_error"] + slack + 1e-9
    assert values["IIZ"]["std_error"] > 0
    assert data["plots"] == {str(budget): None} and budget.stat().st_size > 1000


def test_run_bad_inputs_exit_2_and_submit_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bell: Path
) -> None:
    broken = tmp_path / "broken.qasm"
    broken.write_text("OPENQASM 2.0;\nqreg q[2];\nfoo q[0];\n")
    assert main(["run", str(tmp_path / "missing.qasm")]) == 2
    assert "no such circuit file" in capsys.readouterr().err
    assert main(["run", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "broken.qasm: not valid OpenQASM" in err and "Traceback" not in err
    assert main(["run", str(bell), "--mitigation", "readout,magic"]) == 2
    assert "readout, zne, twirl" in capsys.readouterr().err
    assert main(["run", str(bell), "--observable", "ZZZ"]) == 2
    assert "over its 2 qubits" in capsys.readouterr().err
    assert main(["run", str(bell), "--plot", str(tmp_path / "nodir" / "t.png")]) == 2
    assert "no directory" in capsys.readouterr().err
    assert main(["run", str(bell), "--budget-plot", str(tmp_path / "b.png")]) == 2
    # nothing ran: the journal holds no run
    assert main(["runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_run_failure_is_exit_1(capsys: pytest.CaptureFixture[str], bell: Path) -> None:
    """A device that is lost on its first job: the run was attempted and failed."""
    import multiqpu
    from multiqpu.cli import _run_exec
    from multiqpu.testing.faults import FaultyDevice

    dead = multiqpu.Fleet([FaultyDevice(multiqpu.device("local:ideal"), fail_after=0)])
    import argparse

    args = argparse.Namespace(
        shots=10, policy="balanced", mitigation=None, plot=None, json=True, debug=False
    )
    with pytest.raises(multiqpu.MultiQPUError) as info:
        _run_exec.sample_all(dead, [("bell", _bell_circuit())], args, None)
    from multiqpu.cli._run import _NOTHING_DONE

    assert not isinstance(info.value, _NOTHING_DONE)  # so `run` maps it to exit 1


def _bell_circuit() -> Any:
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


@pytest.mark.slow
def test_runs_show_table_timeline_and_plot(
    capsys: pytest.CaptureFixture[str], bell: Path, tmp_path: Path
) -> None:
    code, data = run_json(capsys, "run", str(bell), str(bell), "--shots", "200", "--json")
    assert code == 0
    (run_id,) = data["run_ids"]
    png = tmp_path / "t.png"
    assert main(["runs", "show", run_id, "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert f"run {run_id}: done, 2/2 circuits done" in out
    assert "per device" in out and "timeline" in out
    device = data["circuits"][0]["device"]
    assert device in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not ANSI.search(out)  # captured output is not a terminal
    assert main(["runs", "show", "no-such-run"]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err
    # the journal and --json may come before `show` too
    journal = os.environ["MULTIQPU_JOURNAL"]
    code, shown = run_json(capsys, "runs", "--json", "--journal", journal, "show", run_id)
    assert code == 0 and shown["run_id"] == run_id
    assert main(["runs", "--journal", str(tmp_path / "other.sqlite"), "show", run_id]) == 2


def test_config_check_broken_names_file_key_and_expectation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text('[devices.work]\nprovider = "ibm"\nbackend = "fake_kyiv"\nmax_shots = "lots"\n')
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "devices.work.max_shots" in err
    assert "expected a positive integer" in err
    # a missing environment variable the file reads a credential from
    path.write_text(
        '[devices.work]\nprovider = "ibm"\nbackend = "ibm_torino"\ntoken_env = "MQ_TEST_TOKEN"\n'
    )
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "devices.work.token_env" in err and "MQ_TEST_TOKEN is not set" in err


def test_config_check_says_where_credentials_come_from_never_what(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-value-never-printed"
    monkeypatch.setenv("MQ_TEST_TOKEN", secret)
    monkeypatch.setenv("AWS_PROFILE", "research")
    path = tmp_path / "fleet.toml"
    path.write_text(
        '[devices.work]\nprovider = "ibm"\nbackend = "ibm_torino"\ntoken_env = "MQ_TEST_TOKEN"\n'
        '[devices.garnet]\nprovider = "braket"\nname = "emulator"\n'
    )
    assert main(["config", "check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "[devices.work] ibm:ibm_torino" in out
    assert "token: set (secret, hidden)" in out and "env MQ_TEST_TOKEN" in out
    assert "aws_profile: set" in out and "env AWS_PROFILE" in out
    assert secret not in out and "research" not in out
    code, data = run_json(capsys, "config", "check", "--config", str(path), "--json")
    assert code == 0 and data["ok"] and data["file"] == str(path)
    work = next(d for d in data["devices"] if d["label"] == "work")
    token = next(c for c in work["credentials"] if c["option"] == "token")
    assert token["set"] and token["secret"] and "MQ_TEST_TOKEN" in token["source"]
    assert secret not in json.dumps(data)


def test_config_check_without_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check"]) == 0
    assert "embedded default fleet" in capsys.readouterr().out


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "providers")])
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("where", ["pipe", "terminal, MULTIQPU_PROGRESS=0"])
def test_no_ansi_codes_in_a_pipe_or_with_progress_off(
    where: str, tmp_path: Path, bell: Path
) -> None:
    """`multiqpu run` through a pipe, or on a terminal with MULTIQPU_PROGRESS=0: plain text.
    (On a terminal without the variable, the same command does colour its output.)"""
    env = _env(
        MULTIQPU_JOURNAL=str(tmp_path / "j.sqlite"),
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        TERM="xterm-256color",
        COLUMNS="100",
    )
    argv = [sys.executable, "-m", "multiqpu", "run", str(bell), str(bell), "--shots", "100"]
    if where == "pipe":
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "bell" in proc.stdout
        assert not ANSI.search(proc.stdout) and not ANSI.search(proc.stderr)
        return
    out_plain = _in_pty(argv, {**env, "MULTIQPU_PROGRESS": "0"})
    assert "bell" in out_plain and not ANSI.search(out_plain)
    out_colour = _in_pty(argv, env)
    assert ANSI.search(out_colour)  # the check above can see codes when there are some


def _in_pty(argv: list[str], env: dict[str, str]) -> str:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=300) == 0
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_an_estimate_draws_per_device_progress_on_a_terminal(tmp_path: Path, bell: Path) -> None:
    """An estimate (every stage of it: pilot, main stage, top-ups) draws one bar per device
    on a terminal, and none with MULTIQPU_PROGRESS=0."""
    env = _env(
        MULTIQPU_JOURNAL=str(tmp_path / "j.sqlite"),
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        TERM="xterm-256color",
        COLUMNS="120",
    )
    argv = [sys.executable, "-m", "multiqpu", "run", str(bell), "--observable", "ZZ",
            "--shots", "4000"]  # fmt: skip
    drawn = _in_pty(argv, env)
    assert "all devices" in drawn and "local:ideal" in drawn
    plain = _in_pty(argv, {**env, "MULTIQPU_PROGRESS": "0"})
    assert "all devices" not in plain and not ANSI.search(plain)
