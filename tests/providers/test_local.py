"""The local provider: ideal (exact and sampled) and noisy (any calibration profile) Aer
simulators. Statistical checks allow 5 standard errors per outcome (false-failure rate
below 1e-5 per test)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Clbit
from qiskit.quantum_info import Statevector

import multiqpu
from multiqpu import (
    Calibration,
    CircuitTooLargeError,
    ConfigError,
    DeviceStatus,
    InvalidInputError,
    JobError,
    JobStatus,
)
from multiqpu.testing import _circuits as circuits

K = 5.0  # standard errors


def assert_within_k_sigma(
    counts: Mapping[str, int], expected: Mapping[str, float], shots: int, k: float = K
) -> None:
    """Every outcome's frequency is within k binomial standard errors of its probability."""
    for key in set(counts) | set(expected):
        p = expected.get(key, 0.0)
        freq = counts.get(key, 0) / shots
        sigma = math.sqrt(max(p * (1 - p), 1e-12) / shots)
        assert abs(freq - p) <= k * sigma + 1 / shots, f"P({key}): {freq:.4f} vs exact {p:.4f}"


def exact_probs(circuit: QuantumCircuit) -> dict[str, float]:
    """Reference: qiskit.quantum_info.Statevector of the circuit without its (final)
    measurements, marginalised onto the measured qubits in clbit order."""
    reads = {
        circuit.find_bit(i.clbits[0]).index: circuit.find_bit(i.qubits[0]).index
        for i in circuit.data
        if i.operation.name == "measure"
    }
    state = Statevector(circuit.remove_final_measurements(inplace=False))
    probs = state.probabilities_dict(qargs=[reads[c] for c in range(circuit.num_clbits)])
    return {str(k): float(v) for k, v in probs.items()}


# ---------------------------------------------------------------- provider and options
def test_provider_shape() -> None:
    from multiqpu_local import provider

    assert (provider.name, provider.extra, tuple(provider.requires)) == (
        "local",
        "local",
        ("qiskit_aer",),
    )
    assert list(provider.default_devices()) == ["ideal"]
    assert list(provider.known_devices()) == ["ideal", "noisy"]
    assert dict(provider.env_options) == {}


def test_num_qubits_option() -> None:
    dev = multiqpu.device("local:ideal", num_qubits=7)
    assert dev.num_qubits == 7 and dev.target.num_qubits == 7
    assert dev.target.all_to_all and dev.calibration().num_qubits == 7
    assert multiqpu.device("local:ideal").num_qubits == 24
    with pytest.raises(CircuitTooLargeError):
        dev.validate([circuits.ghz(8)], 10)


@pytest.mark.parametrize(
    ("spec", "options", "key"),
    [
        ("local:ideal", {"shotz": 10}, "shotz"),
        ("local:ideal", {"calibration": "ibm:fake_manila"}, "calibration"),
        ("local:ideal", {"num_qubits": 0}, "num_qubits"),
        ("local:ideal", {"num_qubits": "7"}, "num_qubits"),
        ("local:ideal", {"seed": -1}, "seed"),
        ("local:ideal", {"limits": {"max_shots": 5}}, "limits"),
        ("local:noisy", {"readout_error": 1.5}, "readout_error"),
        ("local:noisy", {"gate_error_2q": "high"}, "gate_error_2q"),
        ("local:noisy", {"calibration": 42}, "calibration"),
        ("local:noisy", {"calibration": "missing-profile.json"}, "calibration"),
        ("local:noisy", {"calibration": "nope:device"}, "calibration"),
        ("local:noisy", {"calibration": "ibm:fake_manila", "num_qubits": 6}, "num_qubits"),
        (
            "local:noisy",
            {"calibration": "ibm:fake_manila", "readout_error": 0.1},
            "readout_error",
        ),
    ],
)
def test_bad_options_name_the_option(spec: str, options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        multiqpu.device(spec, **options)
    assert info.value.key == key or key in str(info.value)


def test_unknown_option_lists_accepted_ones() -> None:
    with pytest.raises(ConfigError, match="accepted: limits, num_qubits, seed"):
        multiqpu.device("local:ideal", colour="blue")


def test_unknown_device_name() -> None:
    with pytest.raises(ConfigError, match="ideal, noisy"):
        multiqpu.device("local:perfect")


async def test_free_online_no_queue() -> None:
    dev = multiqpu.device("local:ideal")
    assert await dev.status() is DeviceStatus.ONLINE
    q = await dev.queue_estimate()
    assert (q.pending_jobs, q.expected_wait_s, q.source) == (0, 0.0, "none")
    cost = dev.estimate_cost([circuits.bell()] * 3, 1000)
    assert cost.total_usd == 0.0 and cost.tasks == 3 and cost.shots == 3000


def test_building_devices_does_not_load_aer() -> None:
    script = (
        "import sys, multiqpu\n"
        "d = multiqpu.device('local:noisy', num_qubits=5, readout_error=0.02)\n"
        "d.calibration(); d.target; d.num_qubits\n"
        "i = multiqpu.device('local:ideal', num_qubits=3); i.calibration()\n"
        "print('qiskit_aer' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- exact mode
async def test_exact_matches_statevector() -> None:
    dev = multiqpu.device("local:ideal", num_qubits=5)
    full = circuits.rotations(5)
    partial = circuits.rotations(5, measure=[3, 0, 4])  # qubits 1, 2 marginalised
    result = await dev.run([full, partial], shots=None)
    for circuit, res in zip([full, partial], result, strict=True):
        assert res.shots is None and res.counts == {}
        assert res.probabilities is not None
        want = exact_probs(circuit)
        for key in set(want) | set(res.probabilities):
            assert abs(res.probabilities.get(key, 0.0) - want.get(key, 0.0)) <= 1e-9


async def test_exact_clbit_mapping_rules() -> None:
    """An unwritten clbit reads 0; a qubit read into two clbits gives both the same value;
    a clbit written twice keeps the last write; a loose clbit before a register keeps its
    place (clbit 0, rightmost)."""
    loose = Clbit()
    reg = ClassicalRegister(3, "r")
    qc = QuantumCircuit(QuantumRegister(2, "q"), [loose], reg)
    qc.ry(0.8, 0)
    qc.x(1)
    qc.measure(0, loose)  # clbit 0 <- q0
    qc.measure(0, reg[0])  # clbit 1 <- q0 as well
    qc.measure(0, reg[2])  # clbit 3 <- q0, then overwritten by q1
    qc.measure(1, reg[2])  # clbit 3 <- q1 (always 1); clbit 2 is never written
    probs = (await multiqpu.device("local:ideal", num_qubits=2).run([qc], None))[0].probabilities
    p1 = math.sin(0.4) ** 2
    assert probs is not None and set(probs) == {"1000", "1011"}
    assert abs(probs["1011"] - p1) <= 1e-12 and abs(probs["1000"] - (1 - p1)) <= 1e-12


async def test_exact_mid_circuit_measurement_and_reset() -> None:
    # H, measure, H again: the second outcome is uniform whatever the first was
    qc = QuantumCircuit(1, 2)
    qc.h(0)
    qc.measure(0, 0)
    qc.h(0)
    qc.measure(0, 1)
    # X, reset, RY(θ): the reset qubit starts again from |0>
    theta = 1.1
    rc = QuantumCircuit(1, 2)
    rc.x(0)
    rc.measure(0, 0)
    rc.reset(0)
    rc.ry(theta, 0)
    rc.measure(0, 1)
    dev = multiqpu.device("local:ideal", num_qubits=2)
    mid, reset = (r.probabilities for r in await dev.run([qc, rc], None))
    assert mid is not None and reset is not None
    assert all(abs(mid[k] - 0.25) <= 1e-12 for k in ("00", "01", "10", "11"))
    p1 = math.sin(theta / 2) ** 2
    assert abs(reset["11"] - p1) <= 1e-12 and abs(reset["01"] - (1 - p1)) <= 1e-12


async def test_exact_dynamic_circuit_agrees_with_sampling() -> None:
    """Deferred-measurement exact results vs Aer's own sampling of the dynamic circuit."""
    qc = QuantumCircuit(3, 4)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure(1, 0)  # mid-circuit: qubit 1 is used again
    qc.ry(0.7, 1)
    qc.cx(1, 2)
    qc.measure(0, 1)
    qc.reset(0)
    qc.rx(0.4, 0)
    qc.cx(0, 2)
    qc.measure(2, 2)
    qc.measure(0, 3)
    dev = multiqpu.device("local:ideal", num_qubits=3, seed=7)
    exact = (await dev.run([qc], None))[0].probabilities
    shots = 40_000
    sampled = (await dev.run([qc], shots))[0].counts
    assert exact is not None and abs(sum(exact.values()) - 1) <= 1e-12
    assert_within_k_sigma(sampled, exact, shots)


async def test_exact_refuses_classical_control() -> None:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(1)
    qc.measure(1, 1)
    dev = multiqpu.device("local:ideal", num_qubits=2, seed=3)
    with pytest.raises(InvalidInputError, match="shots"):
        await dev.run([qc], None)
    counts = (await dev.run([qc], 2000))[0].counts  # sampling runs it
    assert set(counts) <= {"00", "11"}


async def test_noisy_device_is_not_exact() -> None:
    with pytest.raises(InvalidInputError, match="exact"):
        await multiqpu.device("local:noisy", num_qubits=2).run([circuits.bell()], None)


# ---------------------------------------------------------------- sampling
async def test_sampling_within_k_sigma_of_exact() -> None:
    dev = multiqpu.device("local:ideal", num_qubits=6, seed=2024)
    circuit = circuits.rotations(4)
    shots = 20_000
    counts = (await dev.run([circuit], shots))[0].counts
    assert sum(counts.values()) == shots
    assert_within_k_sigma(counts, exact_probs(circuit), shots)


async def test_library_gates_are_unrolled() -> None:
    from qiskit.circuit.library import QFTGate

    qc = QuantumCircuit(3, 3)
    qc.x(0)
    qc.append(QFTGate(3), [0, 1, 2])
    qc.measure(range(3), range(3))
    dev = multiqpu.device("local:ideal", num_qubits=3, seed=1)
    exact = (await dev.run([qc], None))[0].probabilities
    assert exact is not None
    assert all(abs(p - 1 / 8) <= 1e-9 for p in exact.values()) and len(exact) == 8
    counts = (await dev.run([qc], 4000))[0].counts
    assert_within_k_sigma(counts, exact, 4000)


async def test_seeds_are_reproducible() -> None:
    batch = [circuits.rotations(3), circuits.ghz(3)]
    runs = []
    for seed in (5, 5, 6):
        dev = multiqpu.device("local:ideal", num_qubits=3, seed=seed)
        runs.append([r.counts for r in await dev.run(batch, 500)])
        runs[-1].extend(r.counts for r in await dev.run(batch, 500))
    assert runs[0] == runs[1], "same seed, same sequence of results"
    assert runs[0] != runs[2], "another seed, other results"
    assert runs[0][0] != runs[0][2], "successive runs of a seeded device differ"
    noisy = [multiqpu.device("local:noisy", num_qubits=3, seed=9) for _ in range(2)]
    first, second = [(await d.run(batch, 300)).counts for d in noisy]
    assert first == second


async def test_cancelled_job_reports_cancelled() -> None:
    dev = multiqpu.device("local:ideal", num_qubits=3)
    job = await dev.submit([circuits.ghz(3)] * 50, 100)
    await job.cancel()
    assert await job.status() is JobStatus.CANCELLED
    with pytest.raises(JobError, match="cancelled"):
        await job.result()


# ---------------------------------------------------------------- noisy
def manila_like(num_qubits: int = 5) -> Calibration:
    line = [(i, i + 1) for i in range(num_qubits - 1)]
    return Calibration.uniform(
        num_qubits,
        readout_error=0.02,
        gate_error_1q=4e-4,
        gate_error_2q=1e-2,
        t1=120e-6,
        t2=90e-6,
        edges=line + [(b, a) for a, b in line],
        duration_1q=36e-9,
        duration_2q=400e-9,
        readout_duration=5e-6,
    )


async def test_uniform_readout_error_physics() -> None:
    dev = multiqpu.device("local:noisy", num_qubits=2, readout_error=0.1, seed=4)
    dev0 = multiqpu.device("local:noisy", num_qubits=2, readout_error=0.0, gate_error_1q=0.05)
    shots = 8000
    counts = (await dev.run([circuits.x_on(1, 0)], shots))[0].counts
    assert_within_k_sigma(counts, {"0": 0.1, "1": 0.9}, shots)
    # an X gate with average infidelity e flips back with probability e (Aer's depolarising)
    counts = (await dev0.run([circuits.x_on(1, 0)], shots))[0].counts
    assert_within_k_sigma(counts, {"0": 0.05, "1": 0.95}, shots)


async def test_uniform_two_qubit_error_physics() -> None:
    """One CNOT with average infidelity e depolarises with λ = 4e/3: odd parity 2e/3."""
    e = 0.09
    dev = multiqpu.device(
        "local:noisy", num_qubits=2, readout_error=0.0, gate_error_1q=0.0, gate_error_2q=e
    )
    bell = circuits.bell()
    assert dev.transpile(bell).count_ops().get("cx") == 1
    shots = 8000
    counts = (await dev.run([bell], shots))[0].counts
    odd = 2 * e / 3
    even, odd_each = 0.5 - odd / 2, odd / 2
    expected = {"00": even, "11": even, "01": odd_each, "10": odd_each}
    assert_within_k_sigma(counts, expected, shots)


async def test_zero_noise_profile_is_ideal() -> None:
    dev = multiqpu.device("local:noisy", calibration=Calibration.ideal(3), seed=8)
    circuit = circuits.rotations(3)
    counts = (await dev.run([circuit], 10_000))[0].counts
    assert_within_k_sigma(counts, exact_probs(circuit), 10_000)


async def test_calibration_sources_agree(tmp_path: Path) -> None:
    cal = manila_like()
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(cal.to_dict()))
    from_obj = multiqpu.device("local:noisy", calibration=cal)
    from_file = multiqpu.device("local:noisy", calibration=str(path))
    for dev in (from_obj, from_file):
        assert dev.calibration().fingerprint() == cal.fingerprint()
        assert set(dev.target.coupling_map or ()) == set(cal.gate_error_2q)
        assert {"cx", "rz", "sx", "x"} <= set(dev.target.basis_gates)
    small = multiqpu.device("local:noisy", calibration=cal, num_qubits=3)
    assert small.num_qubits == 3
    assert set(small.target.coupling_map or ()) == {(0, 1), (1, 0), (1, 2), (2, 1)}


async def test_noise_aware_layout_and_metadata() -> None:
    """The transpiler avoids a bad qubit; results say where the circuit ran."""
    cal = manila_like()
    readout = dict(cal.readout_error)
    readout[0] = 0.4  # qubit 0 reads badly: a 2-qubit circuit should avoid it
    bad = Calibration.from_dict({**cal.to_dict(), "readout_error": readout})
    dev = multiqpu.device("local:noisy", calibration=bad, seed=1)
    result = (await dev.run([circuits.bell()], 1000))[0]
    meta = result.metadata
    assert 0 not in meta["physical_qubits"] and len(meta["physical_qubits"]) == 2
    assert meta["transpiled_depth"] >= 2 and 0.9 < meta["estimated_fidelity"] < 1
    assert isinstance(meta["seed"], int)


async def test_observed_ghz_fidelity_agrees_with_estimate() -> None:
    """Aer's channel and the profile's product-of-(1-error) estimate roughly agree."""
    dev = multiqpu.device("local:noisy", calibration="ibm:fake_manila", seed=21)
    ghz = circuits.ghz(3)
    estimate = dev.calibration().estimated_fidelity(dev.transpile(ghz))
    shots = 8000
    counts = (await dev.run([ghz], shots))[0].counts
    observed = (counts.get("000", 0) + counts.get("111", 0)) / shots
    assert 0.7 < estimate < 0.95
    assert abs(observed - estimate) <= 0.05, (observed, estimate)


async def test_emulation_behaves_like_the_emulated_device() -> None:
    """local:noisy emulating ibm:fake_manila vs ibm:fake_manila itself: same target, same
    profile, and per-outcome frequencies within K combined standard errors."""
    manila = multiqpu.device("ibm:fake_manila", seed=31)
    emu = multiqpu.device("local:noisy", calibration="ibm:fake_manila", seed=32)
    assert emu.calibration().fingerprint() == manila.calibration().fingerprint()
    assert emu.target == manila.target
    assert "ibm:fake_manila" in repr(emu)
    ghz = circuits.ghz(4)
    shots = 8000
    a = (await emu.run([ghz], shots))[0].counts
    b = (await manila.run([ghz], shots))[0].counts
    for key in set(a) | set(b):
        pa, pb = a.get(key, 0) / shots, b.get(key, 0) / shots
        pooled = (pa + pb) / 2
        sigma = math.sqrt(max(pooled * (1 - pooled), 1e-12) * 2 / shots)
        assert abs(pa - pb) <= K * sigma + 1 / shots, f"P({key}): {pa:.4f} vs {pb:.4f}"


async def test_emulates_a_device_object() -> None:
    source = multiqpu.device("local:noisy", calibration=manila_like(4))
    copy = multiqpu.device("local:noisy", calibration=source)
    assert copy.target == source.target
    assert copy.calibration().fingerprint() == source.calibration().fingerprint()


# ---------------------------------------------------------------- the docs' examples run
DOC = Path(__file__).resolve().parents[2] / "docs" / "providers" / "local.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.mark.parametrize("code", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_doc_snippet_runs(code: str) -> None:
    exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_snippet__"})


async def test_noisy_runs_dynamic_circuits() -> None:
    """Feed-forward survives mapping onto the emulated chip: X on qubit 1 iff qubit 0 read 1."""
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(1)
    qc.measure(1, 1)
    dev = multiqpu.device("local:noisy", calibration="ibm:fake_manila", seed=5)
    counts = (await dev.run([qc], 2000))[0].counts
    agree = (counts.get("00", 0) + counts.get("11", 0)) / 2000
    assert agree > 0.9, counts  # manila's readout and gate errors are a few per cent


async def test_exact_initialize_on_an_entangled_qubit() -> None:
    """initialize = reset + state preparation: the qubit leaves the Bell pair (its partner
    stays uniform) and starts again in the prepared state."""
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.initialize([math.sqrt(0.2), math.sqrt(0.8)], [1])
    qc.measure([0, 1], [0, 1])
    probs = (await multiqpu.device("local:ideal", num_qubits=2).run([qc], None))[0].probabilities
    want = {"00": 0.1, "01": 0.1, "10": 0.4, "11": 0.4}
    assert probs is not None
    assert all(abs(probs[k] - v) <= 1e-9 for k, v in want.items()) and len(probs) == 4
