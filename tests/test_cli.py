"""The ``multiqpu`` command line, run in-process through ``main(argv)`` and once for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import multiqpu
from multiqpu.cli import main
from multiqpu.providers import available_providers


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config file anywhere: commands see the embedded default fleet."""
    monkeypatch.delenv("MULTIQPU_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MULTIQPU_JOURNAL", str(tmp_path / "journal.sqlite"))


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: multiqpu" in out and "devices" in out and "demo" in out
    assert main(["devices", "--help"]) == 0
    assert "--json" in capsys.readouterr().out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: multiqpu" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"multiqpu {multiqpu.__version__}"


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--no-such-flag"]) == 2
    assert "unrecognized arguments" in capsys.readouterr().err
    assert main(["demo", "--shots", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err


def test_devices_json_lists_the_default_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    code, rows = run_json(capsys, "devices", "--json")
    assert code == 0
    assert isinstance(rows, list) and rows
    specs = [r["spec"] for r in rows]
    assert len(set(specs)) == len(specs)
    providers = {r["provider"] for r in rows}
    if {"ibm", "braket", "local"} <= set(available_providers()):
        assert len(rows) >= 5 and len(providers) >= 3
        assert {"ibm:fake_torino", "braket:emulator", "local:ideal"} <= set(specs)
    for r in rows:
        assert r["spec"] == f"{r['provider']}:{r['name']}"
        assert r["errors"] == [], r["errors"]
        assert isinstance(r["num_qubits"], int) and r["num_qubits"] >= 1
        assert r["status"] == "online"
        assert isinstance(r["exact"], bool)
        # default-fleet queues are simulated
        assert r["queue_source"] == "model"
        assert isinstance(r["pending_jobs"], int) and r["pending_jobs"] >= 0
        assert isinstance(r["expected_wait_s"], float) and r["expected_wait_s"] >= 0
        assert isinstance(r["queue_capped"], bool)
        assert r["queue_raw"] is None or isinstance(r["queue_raw"], str)
        for key in ("median_2q_error", "median_readout_error", "median_1q_error"):
            assert r[key] is None or 0.0 <= r[key] <= 1.0, (r["spec"], key)
        assert r["per_task_usd"] >= 0 and r["per_shot_usd"] >= 0
        assert isinstance(r["price_source"], str)
    noisy = [r for r in rows if r["provider"] == "ibm"]
    assert all(r["median_2q_error"] and r["median_2q_error"] > 0 for r in noisy)
    ideal = [r for r in rows if r["spec"] == "local:ideal"]
    assert all(r["median_readout_error"] in (None, 0.0) for r in ideal)
    waits = [r["expected_wait_s"] for r in rows if r["provider"] != "local"]
    assert max(waits) > 5 * min(waits)  # some busy, some idle


def test_devices_table_for_humans(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "Device" in out and "Queue" in out and "model" in out
    assert "local:ideal" in out or "ibm:fake_torino" in out


@pytest.mark.slow  # imports the Braket SDK (~4 s cold)
def test_devices_lists_an_unreachable_device_with_its_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No AWS credentials anywhere, and no instance-metadata lookup: resolved locally.
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = tmp_path / "fleet.toml"
    config.write_text(
        "[devices.garnet]\n"
        'provider = "braket"\n'
        'arn = "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"\n'
        'region = "eu-north-1"\n\n'
        "[devices.sim]\n"
        'provider = "local"\n'
        'backend = "ideal"\n'
        "num_qubits = 5\n"
    )
    code, rows = run_json(capsys, "devices", "--json", "--config", str(config))
    assert code == 0
    garnet, sim = rows
    assert garnet["provider"] == "braket" and garnet["status"] == "error"
    assert garnet["errors"] and "credentials" in garnet["errors"][0].lower()
    assert garnet["per_task_usd"] > 0 and garnet["per_shot_usd"] > 0  # prices are tables
    assert sim["spec"] == "local:ideal" and sim["num_qubits"] == 5 and sim["errors"] == []
    assert main(["devices", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "local:ideal" in out and "credentials" in out.lower()


def test_bad_config_is_one_clean_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "fleet.toml"
    bad.write_text("[devices\nthis is = not toml\n")
    assert main(["devices", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("multiqpu: error: ")
    assert "fleet.toml" in lines[0]
    assert "Traceback" not in err


def test_missing_config_file_is_a_clean_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["devices", "--json", "--config", str(tmp_path / "nope.toml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "nope.toml" in captured.err


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "fleet.toml"
    bad.write_text("[devices\n")
    assert main(["devices", "--config", str(bad), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("multiqpu: error: ")


@pytest.mark.slow  # first use of Aer, Braket and the transpiler in the process: ~5 s
def test_demo_json_runs_on_every_default_device(capsys: pytest.CaptureFixture[str]) -> None:
    code, summary = run_json(capsys, "demo", "--json", "--shots", "1000")
    assert code == 0, summary
    assert summary["qubits"] == 3 and summary["shots"] == 1000
    rows = summary["devices"]
    assert len(rows) == len(multiqpu.Fleet.local(queues=False))
    for r in rows:
        assert r["status"] == "ok", r
        assert 0.0 <= r["fidelity"] <= 1.0 and 0.0 <= r["estimated_fidelity"] <= 1.0
        assert r["fidelity_se"] >= 0
        assert r["queue_wait_s"] >= 0 and r["run_s"] >= 0
        assert r["cost_usd"] >= 0
        # a GHZ state is mostly 000 and 111 on every device
        assert r["fidelity"] > 0.5
        if r["spec"] == "local:ideal":  # noiseless: only 000 and 111 can occur
            assert r["fidelity"] == 1.0 and set(r["counts"]) <= {"000", "111"}
    # the scheduled batch: the run's mean estimated fidelity within the balanced policy's
    # 2 % budget of the best device, no circuit more than 10 % below it, and the noisiest
    # device (fake_manila, 0.86 against 0.98) gets nothing -- unless keeping to that would
    # have planned more than max_slowdown (1.5x) the fastest plan's time, which the report
    # then says (bound_by)
    sched = summary["scheduled"]
    assert sched["circuits"] == 24 and sched["policy"] == "balanced"
    placed = {d["device"]: d for d in sched["devices"]}
    assert "local:ideal" not in placed
    assert sum(d["circuits"] for d in placed.values()) == 24
    estimates = {r["spec"]: r["estimated_fidelity"] for r in rows if r["spec"] in placed}
    best = max(estimates.values())
    noisiest = min(estimates, key=lambda s: estimates[s])
    kept = (
        all(estimates[s] >= 0.90 * best - 1e-9 for s, d in placed.items() if d["circuits"])
        and sched["mean_estimated_fidelity"] >= 0.98 * best - 1e-9
        and placed[noisiest]["circuits"] == 0
    )
    assert kept or sched["bound_by"] == "max_slowdown", sched
    assert summary["scheduled"]["run_id"] in subprocess_free_runs()


def subprocess_free_runs() -> list[str]:
    """Run ids in this test's journal (``$MULTIQPU_JOURNAL``)."""
    from multiqpu.journal import Journal

    with Journal() as journal:
        return [r.run_id for r in journal.runs()]


def test_demo_table_for_humans(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--qubits", "2", "--shots", "200", "--time-scale", "0"]) == 0
    out = capsys.readouterr().out
    assert "2-qubit GHZ" in out and "Measured F" in out and "finished in" in out
    assert "local:ideal" in out and "1.000 ± 0.000" in out
    # then the scheduled batch's run report, with why devices were left alone
    assert "Scheduling 24 GHZ circuits" in out and "est. F" in out and "queue s" in out
    assert "Most work went to" in out and "on the best device" in out


def test_devices_imports_no_vendor_sdk(tmp_path: Path) -> None:
    """The listing reads snapshots: no vendor SDK (nor Aer) may load, or it cannot be fast."""
    env = {k: v for k, v in os.environ.items() if k != "MULTIQPU_CONFIG"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    code = (
        "import sys\n"
        "from multiqpu.cli import main\n"
        "rc = main(['devices', '--json'])\n"
        "vendor = {'qiskit_aer', 'qiskit_ibm_runtime', 'braket', 'boto3', 'botocore'}\n"
        "loaded = sorted(vendor & {m.split('.')[0] for m in sys.modules})\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stderr, proc.stderr
    assert len(json.loads(proc.stdout)) >= 1


def test_real_subprocess(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MULTIQPU_CONFIG"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    code = (
        "import sys\n"
        "from multiqpu.cli import main\n"
        "rc = main(['--help'])\n"
        "heavy = {'qiskit', 'qiskit_aer', 'qiskit_ibm_runtime', 'braket', 'boto3', 'rich'}\n"
        "print('LOADED', sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0 and "LOADED []" in proc.stdout, proc.stdout + proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "multiqpu", "devices", "--config", str(tmp_path / "no.toml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("multiqpu: error: ") and proc.stderr.count("\n") == 1
    proc = subprocess.run(
        [sys.executable, "-m", "multiqpu", "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"multiqpu {multiqpu.__version__}"
