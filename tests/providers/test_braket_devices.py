"""The offline Braket devices (sv, dm, emulator): exactness, noise physics against an
independent density-matrix model built from the calibration, asyncio behaviour, options,
and calibration normalisation without importing braket."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("braket")

from multiqpu_braket import provider
from multiqpu_braket._calibration import parse_properties
from multiqpu_braket._emulator import _document, load_profile
from qiskit import QuantumCircuit
from qiskit.quantum_info import DensityMatrix, Kraus, Pauli, Statevector

import multiqpu
from multiqpu import Calibration, ConfigError, Device, InvalidInputError, RunResult
from multiqpu.simulation import active_qubits, compact_circuit

SIGMAS = 5.0


def run(device: Device, circuits: list[QuantumCircuit], shots: int | None) -> RunResult:
    return asyncio.run(device.run(circuits, shots))


def ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n, n)
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    qc.measure(range(n), range(n))
    return qc


# ---------------------------------------------------------------------- independent reference
def _depolarizing(lam: float, n: int) -> Kraus:
    """(1-lam) rho + lam I/d as Pauli Kraus operators."""
    labels = ["".join(p) for p in np.array(np.meshgrid(*[list("IXYZ")] * n)).T.reshape(-1, n)]
    d2 = 4**n
    ops = []
    for label in labels:
        w = (1 - lam + lam / d2) if set(label) == {"I"} else lam / d2
        ops.append(math.sqrt(w) * Pauli(label).to_matrix())
    return Kraus(ops)


def reference_distribution(isa: QuantumCircuit, cal: Calibration) -> dict[str, float]:
    """Exact output distribution of a device-mapped circuit under the documented model:
    depolarizing with average gate infidelity = calibrated error after each gate, classical
    readout flips. Qiskit density matrices only (no Braket, no Aer)."""
    qubits = active_qubits(isa)
    small = compact_circuit(isa, qubits)
    sub = cal.subset(qubits)
    rho = DensityMatrix.from_label("0" * small.num_qubits)
    readout: dict[int, int] = {}
    for inst in small.data:
        name = inst.operation.name
        qs = [small.find_bit(q).index for q in inst.qubits]
        if name == "measure":
            readout[small.find_bit(inst.clbits[0]).index] = qs[0]
            continue
        if name == "barrier":
            continue
        rho = rho.evolve(inst.operation, qs)
        err = sub.error(name, tuple(qs))
        if err > 0:  # Braket p = 3e/2 (1q), 5e/4 (2q) -> lam = 2e, 4e/3
            lam = 2 * err if len(qs) == 1 else 4 * err / 3
            rho = rho.evolve(_depolarizing(lam, len(qs)), qs)
    clbits = sorted(readout)
    probs = rho.probabilities_dict(qargs=[readout[c] for c in clbits])
    out: dict[str, float] = {}
    for key, p in probs.items():  # key over clbits, rightmost = first clbit
        bits = key[::-1]
        for flips in range(2 ** len(bits)):
            q = p
            new = []
            for i, b in enumerate(bits):
                flip = (flips >> i) & 1
                r = sub.readout_error.get(readout[clbits[i]], 0.0)
                q *= r if flip else 1 - r
                new.append(str(int(b) ^ flip))
            k = "".join(new)[::-1]
            out[k] = out.get(k, 0.0) + q
    return out


def assert_within_sigmas(count: int, shots: int, p: float) -> None:
    sigma = math.sqrt(max(p * (1 - p), 1e-12) / shots)
    assert abs(count / shots - p) <= SIGMAS * sigma, (count / shots, p, sigma)


# ---------------------------------------------------------------------- sv
def test_sv_exact_matches_statevector() -> None:
    rng = np.random.default_rng(5)
    qc = QuantumCircuit(4, 3)
    for q in range(4):
        qc.u(*rng.uniform(-math.pi, math.pi, 3), q)
    qc.cx(0, 2)
    qc.cz(3, 1)
    qc.rzz(0.4, 1, 2)
    qc.sx(3)
    qc.measure([2, 0, 3], [0, 1, 2])
    got = run(multiqpu.device("braket:sv"), [qc], None)[0]
    assert got.shots is None and got.counts == {}
    body = qc.remove_final_measurements(inplace=False)
    want = Statevector(body).probabilities_dict(qargs=[2, 0, 3])
    assert got.probabilities is not None
    for key in set(want) | set(got.probabilities):
        assert abs(got.probabilities.get(key, 0.0) - want.get(key, 0.0)) <= 1e-9


def test_sv_sampling_is_seeded_and_unbiased() -> None:
    qc = QuantumCircuit(2, 2)
    qc.ry(2 * math.asin(math.sqrt(0.3)), 0)  # P(q0 = 1) = 0.3
    qc.measure([0, 1], [0, 1])
    a = run(multiqpu.device("braket:sv", seed=7), [qc], 5000)[0]
    b = run(multiqpu.device("braket:sv", seed=7), [qc], 5000)[0]
    assert a.counts == b.counts and a.metadata["seed"] == 7
    assert set(a.counts) <= {"00", "01"}
    assert_within_sigmas(a.counts.get("01", 0), 5000, 0.3)


# ---------------------------------------------------------------------- noise physics
def _ghz_check(device: Device, shots: int = 4000) -> tuple[float, float]:
    circuit = ghz(3)
    result = run(device, [circuit], shots)[0]
    ref = reference_distribution(device.transpile(circuit), device.calibration())
    p = ref.get("000", 0.0) + ref.get("111", 0.0)
    success = result.counts.get("000", 0) + result.counts.get("111", 0)
    assert_within_sigmas(success, shots, p)
    for key in ("001", "010", "100"):  # the error pattern too, not just its total
        assert_within_sigmas(result.counts.get(key, 0), shots, ref.get(key, 0.0))
    return success / shots, p


def test_emulator_ghz_fidelity_follows_calibration() -> None:
    dev = multiqpu.device("braket:emulator", seed=3)
    measured, predicted = _ghz_check(dev)
    sigma = math.sqrt(predicted * (1 - predicted) / 4000)
    assert predicted < 1 - 10 * sigma  # a clear drop, which the samples reproduce
    assert measured < 1 - 5 * sigma


def test_dm_ghz_fidelity_follows_calibration() -> None:
    cal = Calibration.uniform(3, readout_error=0.03, gate_error_1q=0.004, gate_error_2q=0.04)
    dev = multiqpu.device("braket:dm", calibration=cal, seed=4)
    measured, predicted = _ghz_check(dev)
    assert predicted < 0.9 and measured < 0.92  # ~9 % lost to the configured noise
    ideal = run(multiqpu.device("braket:dm", calibration=Calibration.ideal(3)), [ghz(3)], 2000)
    assert set(ideal[0].counts) <= {"000", "111"}


def test_dm_asymmetric_readout() -> None:
    cal = Calibration(
        num_qubits=2,
        prob_meas1_prep0={0: 0.02, 1: 0.02},
        prob_meas0_prep1={0: 0.15, 1: 0.15},
        readout_error={0: 0.085, 1: 0.085},
        source="test",
    )
    qc = QuantumCircuit(2, 2)
    qc.x(1)
    qc.measure([0, 1], [0, 1])
    counts = run(multiqpu.device("braket:dm", calibration=cal, seed=1), [qc], 8000)[0].counts
    q0_reads_1 = counts.get("01", 0) + counts.get("11", 0)
    q1_reads_0 = counts.get("00", 0) + counts.get("01", 0)
    assert_within_sigmas(q0_reads_1, 8000, 0.02)
    assert_within_sigmas(q1_reads_0, 8000, 0.15)


# ---------------------------------------------------------------------- asyncio behaviour
def test_simulation_runs_off_the_event_loop() -> None:
    """While a run is in progress the loop keeps scheduling other coroutines: a ticker sees
    the run unfinished on many consecutive turns of the loop."""
    dev = multiqpu.device("braket:emulator", seed=1)

    async def scenario() -> tuple[int, RunResult]:
        task = asyncio.ensure_future(dev.run([ghz(3)] * 3, 500))
        ticks_while_running = 0
        while not task.done():
            await asyncio.sleep(0)
            ticks_while_running += not task.done()
        return ticks_while_running, await task

    ticks, result = asyncio.run(scenario())
    assert ticks >= 2
    assert len(result) == 3


# ---------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("sv", {"calibration": Calibration.ideal(2)}, "accepted options: limits, seed"),
        ("emulator", {"region": "us-east-1"}, "option 'region'"),
        ("dm", {"seed": "7"}, "seed must be an integer"),
        ("sv", {"limits": 5}, "limits must be"),
        ("dm", {"calibration": "/no/such/file.json"}, "neither an existing file"),
        ("dm", {"calibration": 3}, "calibration must be"),
        ("qpu9", {}, "unknown Braket device"),
        ("arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet", {"seed": 1}, "option 'seed'"),
        ("arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet", {"region": 5}, "region must be"),
        ("arn:aws:nope", {}, "not a Braket device ARN"),
    ],
)
def test_bad_options_are_config_errors(name: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        provider.device(name, **options)


def test_dm_calibration_sources(tmp_path: Path) -> None:
    from_spec = provider.device("dm", calibration="braket:emulator")
    assert from_spec.num_qubits == 20
    assert from_spec.target.coupling_map is not None
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(Calibration.uniform(4, readout_error=0.01).to_dict()))
    assert provider.device("dm", calibration=str(path)).calibration().readout_error[3] == 0.01
    props = tmp_path / "props.json"
    props.write_text(_document("iqm_garnet_modelled.json"))
    cal = provider.device("dm", calibration=str(props)).calibration()
    assert cal.gate_error_2q == load_profile().calibration.gate_error_2q


def test_emulator_limits_and_errors() -> None:
    dev = provider.device("emulator")
    assert dev.limits.max_shots == 20000  # from the properties' shotsRange
    with pytest.raises(InvalidInputError):
        run(dev, [ghz(2)], 30000)
    qc = QuantumCircuit(2, 2)
    qc.measure(0, 0)
    qc.x(0)
    qc.measure(0, 1)
    with pytest.raises(InvalidInputError, match="mid-circuit"):
        run(dev, [qc], 10)
    assert dev.estimate_cost([ghz(2)], 100).total_usd == 0.0


# ---------------------------------------------------------------------- calibration
def test_calibration_matches_braket_reading_of_the_properties() -> None:
    from braket.emulation.device_emulator_properties import DeviceEmulatorProperties

    text = _document("iqm_garnet_modelled.json")
    vendor = DeviceEmulatorProperties.from_json(text)
    profile = load_profile()
    cal = profile.calibration
    assert profile.labels == tuple(vendor.qubit_labels)
    for i, label in enumerate(profile.labels):
        props = vendor.one_qubit_properties[str(label)]
        fid = {f.fidelityType.name: f.fidelity for f in props.oneQubitFidelity}
        assert cal.gate_error_1q[i] == pytest.approx(1 - fid["RANDOMIZED_BENCHMARKING"])
        assert cal.error("r", (i,)) == pytest.approx(1 - fid["RANDOMIZED_BENCHMARKING"])
        assert cal.readout_error[i] == pytest.approx(1 - fid["READOUT"])
        assert cal.t1[i] == pytest.approx(props.T1.value * 1e-6)
        assert cal.t2[i] == pytest.approx(props.T2.value * 1e-6)
    for edge, props in vendor.two_qubit_properties.items():
        a, b = (profile.labels.index(int(x)) for x in edge.split("-"))
        f = props.twoQubitGateFidelity[0].fidelity
        assert cal.error("cz", (a, b)) == pytest.approx(1 - f)
        assert cal.error("cz", (b, a)) == pytest.approx(1 - f)
        assert (a, b) in (profile.edges or ()) and (b, a) in (profile.edges or ())
    assert cal.timestamp is not None and "modelled" in cal.source


def test_ionq_style_properties() -> None:
    doc = {
        "paradigm": {
            "qubitCount": 3,
            "nativeGateSet": ["GPI", "GPI2", "MS"],
            "connectivity": {"fullyConnected": True, "connectivityGraph": {}},
        },
        "action": {"braket.ir.openqasm.program": {"supportedOperations": ["x", "rz", "cnot"]}},
        "provider": {
            "fidelity": {"1Q": {"mean": 0.9998}, "2Q": {"mean": 0.995}, "spam": {"mean": 0.993}},
            "timing": {"T1": 100.0, "T2": 1.0, "1Q": 1.35e-4, "2Q": 6e-4, "readout": 3e-4},
        },
    }
    profile = parse_properties(doc, source="test")
    cal = profile.calibration
    assert profile.edges is None and profile.basis_gates == ("x", "rz", "cx")
    assert cal.readout_error[2] == pytest.approx(0.007)
    assert cal.gate_error_1q[0] == pytest.approx(2e-4)
    assert cal.gate_error_2q[(0, 2)] == pytest.approx(0.005)
    assert (cal.t1[1], cal.t2[1], cal.readout_duration) == (100.0, 1.0, 3e-4)
    assert cal.duration("cx", (0, 1)) == 6e-4


def _fid(name: str, value: float) -> dict[str, Any]:
    return {"fidelityType": {"name": name}, "fidelity": value}


def test_rigetti_style_properties() -> None:
    """0-based labels with a dead qubit, a one-way connectivity graph, two 2q gates per pair."""
    one = {"T1": {"value": 2e-5, "unit": "s"}, "T2": {"value": 1.5e-5, "unit": "s"}}
    doc = {
        "paradigm": {
            "qubitCount": 4,
            "nativeGateSet": ["rx", "rz", "iswap"],
            "connectivity": {
                "fullyConnected": False,
                "connectivityGraph": {"0": ["1"], "1": ["3"]},
            },
        },
        "standardized": {
            "oneQubitProperties": {
                str(q): {
                    **one,
                    "oneQubitFidelity": [
                        _fid("RANDOMIZED_BENCHMARKING", 0.998),
                        _fid("READOUT", 0.95),
                    ],
                }
                for q in (0, 1, 3)
            },
            "twoQubitProperties": {
                "0-1": {
                    "twoQubitGateFidelity": [
                        {"gateName": "CZ", "fidelity": 0.97, "fidelityType": {"name": "RB"}},
                        {"gateName": "ISWAP", "fidelity": 0.99, "fidelityType": {"name": "RB"}},
                    ]
                },
                "1-3": {
                    "twoQubitGateFidelity": [
                        {"gateName": "ISWAP", "fidelity": 0.98, "fidelityType": {"name": "RB"}},
                    ]
                },
            },
        },
    }
    profile = parse_properties(doc, source="test")
    cal = profile.calibration
    assert profile.labels == (0, 1, 2, 3) and cal.num_qubits == 4
    assert profile.basis_gates == ("rx", "rz", "iswap")
    assert set(profile.edges or ()) == {(0, 1), (1, 0), (1, 3), (3, 1)}
    assert 2 not in cal.readout_error and cal.readout_error[3] == pytest.approx(0.05)
    assert cal.gate_error_2q[(0, 1)] == pytest.approx(0.01)  # the native iswap, not cz
    assert cal.error("cz", (1, 0)) == pytest.approx(0.03)
    assert cal.error("rx", (0,)) == pytest.approx(0.002) and cal.error("rz", (0,)) == 0.0
    assert cal.t1[0] == 2e-5


def test_device_level_v3_properties() -> None:
    """Standardized v3 (AQT-style): device-wide figures apply to every qubit and pair."""
    doc = {
        "paradigm": {
            "qubitCount": 3,
            "nativeGateSet": ["prx", "xx"],
            "connectivity": {"fullyConnected": True, "connectivityGraph": {}},
        },
        "standardized": {
            "oneQubitProperties": {
                str(q): {"oneQubitFidelity": [_fid("RANDOMIZED_BENCHMARKING", 0.9995)]}
                for q in range(3)
            },
            "T1": {"value": 10.0, "unit": "s"},
            "T2": {"value": 500.0, "unit": "ms"},
            "readoutFidelity": [{"fidelity": 0.996}],
            "twoQubitGateFidelity": [{"fidelity": 0.975}],
            "twoQubitGateDuration": {"value": 300.0, "unit": "us"},
        },
    }
    cal = parse_properties(doc, source="test").calibration
    assert cal.readout_error[2] == pytest.approx(0.004)
    assert cal.gate_error_2q[(0, 2)] == pytest.approx(0.025)
    assert cal.error("rxx", (1, 2)) == pytest.approx(0.025)
    assert (cal.t1[1], cal.t2[1]) == (10.0, 0.5)
    assert cal.duration("rxx", (0, 1)) == pytest.approx(3e-4)


def test_offline_queries_do_not_import_braket() -> None:
    code = """
import asyncio, sys, time
t0 = time.perf_counter()
from multiqpu_braket import provider
from qiskit import QuantumCircuit
dev = provider.device("emulator")
cal = dev.calibration()
assert dev.num_qubits == 20 and dev.target.num_qubits == 20 and cal.num_qubits == 20
qc = QuantumCircuit(1, 1); qc.measure(0, 0)
dev.estimate_cost([qc], 100)
asyncio.run(dev.status()); asyncio.run(dev.queue_estimate())
provider.device("sv").calibration(); provider.device("dm").target
heavy = {"braket", "boto3", "botocore", "qiskit_aer"} & {m.split(".")[0] for m in sys.modules}
print(sorted(heavy), round(time.perf_counter() - t0, 3))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "[]", out
