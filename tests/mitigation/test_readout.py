"""Readout correction: calibration circuits run on the device's physical qubits, the
per-shot inverse agrees with M3, mitigated estimates are unbiased, and calibrations are
cached by (device, qubits, calibration fingerprint) and not measured again."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit

import multiqpu
from multiqpu.mitigation._cache import ReadoutCache, clear_memory
from multiqpu.mitigation._readout import (
    ReadoutCalibration,
    balanced_patterns,
    bit_model,
    calibration_circuits,
    from_counts,
    m3_quasi,
)
from multiqpu.mitigation._uncertainty import column_stats
from multiqpu.testing.faults import FaultyDevice

ANGLES = (0.3, 1.1, 2.0)


def product_state() -> QuantumCircuit:
    """RY rotations only: <Z_i> = cos(theta_i); gate noise is negligible next to readout."""
    qc = QuantumCircuit(len(ANGLES))
    for q, theta in enumerate(ANGLES):
        qc.ry(theta, q)
    return qc


def exact_z() -> list[float]:
    return [math.cos(t) for t in ANGLES]


# ---------------------------------------------------------------- calibration circuits
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_balanced_patterns_prepare_every_qubit_in_0_and_1_equally(n: int) -> None:
    p = balanced_patterns(n)
    assert p.shape[1] == n
    assert (p.sum(axis=0) == len(p) // 2).all()
    assert len({tuple(r) for r in p}) == len(p)


async def test_measured_flip_rates_match_the_physical_qubits_profile() -> None:
    # The calibration circuits run as given on the chosen physical qubits: the measured
    # P(1|0) and P(0|1) agree with those qubits' figures in the device's calibration
    # (which the simulator uses), within 4 binomial standard errors.
    dev = multiqpu.device("ibm:fake_kyiv", seed=5)
    cal = dev.calibration()
    qubits = (0, 14, 18, 37)
    circuits, patterns = calibration_circuits(dev, qubits)
    from multiqpu.mitigation._isa import adopt

    for c in circuits:
        adopt(dev, c)
    shots = 4000
    result = await dev.run(circuits, shots)
    measured = from_counts(
        dev.spec, cal.fingerprint(), qubits, patterns, [r.counts for r in result], shots=0
    )
    for i, q in enumerate(qubits):
        for got, want, n in (
            (measured.p10[i], cal.prob_meas1_prep0[q], measured.n0[i]),
            (measured.p01[i], cal.prob_meas0_prep1[q], measured.n1[i]),
        ):
            se = math.sqrt(want * (1 - want) / n)
            assert abs(got - want) < 4 * se + 1e-3, (q, got, want)


# ---------------------------------------------------------------- the two ways to apply it
def test_per_shot_inverse_agrees_with_m3() -> None:
    rng = np.random.default_rng(1)
    cal = ReadoutCalibration(
        "dev", "fp", (4, 7, 9), (0.02, 0.05, 0.01), (0.04, 0.03, 0.08),
        (1e4,) * 3, (1e4,) * 3, "measured",
    )  # fmt: skip
    keys = [format(i, "03b") for i in range(8)]
    counts = dict(zip(keys, rng.integers(200, 2000, size=8).tolist(), strict=True))
    clbits = (9, 4, 7)  # classical bit 0 reads qubit 9, ...
    quasi, overhead = m3_quasi(counts, cal, clbits, distance=-1)
    model = bit_model(cal, clbits)
    for mask in (0b001, 0b010, 0b100, 0b011, 0b111):
        via_m3 = sum(v * (-1) ** bin(int(k, 2) & mask).count("1") for k, v in quasi.items())
        ours = column_stats(counts, 3, [mask], model).mean[0]
        assert ours == pytest.approx(via_m3, abs=2e-5)
    assert overhead >= 1.0


async def test_readout_mitigated_estimate_is_unbiased_and_raw_is_not() -> None:
    fleet = multiqpu.Fleet([multiqpu.device("ibm:fake_manila", seed=21)])
    obs = ["IIZ", "IZI", "ZII", "ZZZ"]
    exact = [*exact_z(), float(np.prod(exact_z()))]
    res = await fleet.estimate(product_state(), obs, shots=60_000, mitigation=[multiqpu.Readout()])
    raw = res.stages["unmitigated"]
    raw_z = [abs(v - e) / s for v, e, s in zip(raw.values, exact, raw.std_errors, strict=True)]
    z = [abs(v - e) / s for v, e, s in zip(res.values, exact, res.std_errors, strict=True)]
    assert max(raw_z) > 6  # readout bias is many standard errors
    assert max(z) < 4  # corrected: consistent with the exact values
    assert res.report.shots_calibration > 0
    cal_se = res.stages["mitigated"].calibration_errors
    assert all(c > 0 for c in cal_se)  # the calibration's own error is accounted for


async def test_profile_readout_spends_no_shots_and_still_corrects() -> None:
    fleet = multiqpu.Fleet([multiqpu.device("ibm:fake_manila", seed=22)])
    res = await fleet.estimate(
        product_state(), ["ZZZ"], shots=40_000, mitigation=[multiqpu.Readout(calibrate=False)]
    )
    exact = float(np.prod(exact_z()))
    assert res.report.shots_calibration == 0
    assert {c.source for c in res.report.calibrations} == {"profile"}
    assert abs(res.value - exact) < abs(res.unmitigated.values[0] - exact)
    assert abs(res.value - exact) < 4 * res.std_error


# ---------------------------------------------------------------- cached, not re-run
async def test_calibration_is_cached_and_not_run_again(tmp_path: Path) -> None:
    dev = FaultyDevice(multiqpu.device("ibm:fake_kyiv", seed=23), name="kyiv-counted")
    fleet = multiqpu.Fleet([dev])
    readout = multiqpu.Readout(cache_dir=tmp_path / "cals")

    first = await fleet.estimate(product_state(), ["ZZZ"], shots=4000, mitigation=[readout])
    ran_first = sum(len(s.circuit_keys) for s in dev.submissions)
    assert first.report.shots_calibration > 0
    assert ran_first > 1  # the circuit and its calibration circuits
    assert list((tmp_path / "cals").glob("*.json"))

    clear_memory()  # a new process: only the file remains
    second = await fleet.estimate(product_state(), ["ZZZ"], shots=4000, mitigation=[readout])
    ran_second = sum(len(s.circuit_keys) for s in dev.submissions) - ran_first
    assert ran_second == 1  # only the circuit itself
    assert second.report.shots_calibration == 0
    assert {c.source for c in second.report.calibrations} == {"cache"}
    exact = float(np.prod(exact_z()))
    assert abs(second.value - exact) < 4 * second.std_error


def test_cache_keys_device_qubits_fingerprint_and_age(tmp_path: Path) -> None:
    cache = ReadoutCache(tmp_path)
    cal = ReadoutCalibration(
        "ibm:x", "fp1", (3, 5, 8), (0.01, 0.02, 0.03), (0.04, 0.05, 0.06),
        (500.0,) * 3, (500.0,) * 3, "measured", measured_at=1000.0, shots=3000,
    )  # fmt: skip
    cache.store(cal)
    clear_memory()
    hit = cache.lookup("ibm:x", "fp1", (8, 3), max_age_s=None)
    assert hit is not None and hit.qubits == (8, 3) and hit.p10 == (0.03, 0.01)
    assert hit.source == "cache"
    assert cache.lookup("ibm:x", "fp2", (3,), max_age_s=None) is None  # recalibrated device
    assert cache.lookup("ibm:y", "fp1", (3,), max_age_s=None) is None  # another device
    assert cache.lookup("ibm:x", "fp1", (3, 4), max_age_s=None) is None  # qubit 4 unknown
    assert cache.lookup("ibm:x", "fp1", (3,), max_age_s=60.0) is None  # too old
    # a second calibration of other qubits combines with the first
    other = ReadoutCalibration(
        "ibm:x", "fp1", (4,), (0.07,), (0.08,), (500.0,), (500.0,), "measured",
        measured_at=2000.0,
    )  # fmt: skip
    cache.store(other)
    both = cache.lookup("ibm:x", "fp1", (3, 4), max_age_s=None)
    assert both is not None and both.p10 == (0.01, 0.07)
