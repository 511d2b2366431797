"""fleet.sample(..., mitigation=...): per-circuit results in input order with the device
that produced each, M3-corrected quasi-distributions, and expectation values with errors."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit

import multiqpu


def ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    qc.measure_all()
    return qc


def parity(dist: dict[str, float], mask: int) -> float:
    return sum(v * (-1) ** bin(int(k, 2) & mask).count("1") for k, v in dist.items())


def basis_state(bits: str) -> QuantumCircuit:
    """|bits> (bit 0 rightmost): only X gates, so readout error is all the noise there is."""
    qc = QuantumCircuit(len(bits))
    for q, b in enumerate(reversed(bits)):
        if b == "1":
            qc.x(q)
    qc.measure_all()
    return qc


async def test_mitigated_sample_corrects_each_circuit_on_its_device() -> None:
    fleet = multiqpu.Fleet(
        [multiqpu.device("ibm:fake_manila", seed=51), multiqpu.device("ibm:fake_kyiv", seed=52)]
    )
    states = ["101", "1111", "01"]
    circuits = [basis_state(b) for b in states]
    res = await fleet.sample(circuits, shots=[6000, 8000, 4000], mitigation=[multiqpu.Readout()])
    assert len(res) == 3
    for bits, item in zip(states, res, strict=True):
        n = len(bits)
        assert item.device in fleet
        assert sum(item.counts.values()) == item.result.shots
        assert len(next(iter(item.quasi_dist))) == n
        mask = (1 << n) - 1
        exact = (-1) ** bits.count("1")
        value, se = item.expectation(mask)
        assert abs(value - exact) < 4 * se
        raw = parity({k: v / item.result.shots for k, v in item.counts.items()}, mask)
        assert abs(value - exact) < abs(raw - exact)
        # the M3 quasi-distribution gives the same value as the per-shot inverse
        assert parity(dict(item.quasi_dist), mask) == pytest.approx(value, abs=5e-3)
        assert max(item.quasi_dist, key=lambda k: item.quasi_dist[k]) == bits
    assert res.report.shots_base == 18_000
    assert res.report.shots_calibration > 0


async def test_sample_with_zne_extrapolates_the_distribution_linearly() -> None:
    noisy = multiqpu.device(
        "local:noisy", num_qubits=3, gate_error_2q=0.04, gate_error_1q=0.0, readout_error=0.0,
        seed=53,
    )  # fmt: skip
    res = await multiqpu.Fleet([noisy]).sample(
        [ghz(3)], shots=30_000, mitigation=[multiqpu.ZNE(scales=(1, 2, 3))]
    )
    item = res[0]
    value, se = item.expectation("IZZ")
    raw = parity({k: v / item.result.shots for k, v in item.counts.items()}, 0b011)
    assert abs(value - 1) < 4 * se
    assert abs(value - 1) < abs(raw - 1)
    assert sum(item.quasi_dist.values()) == pytest.approx(1.0, abs=1e-9)
    assert parity(dict(item.quasi_dist), 0b011) == pytest.approx(value, abs=1e-9)


async def test_sample_refuses_nonlinear_extrapolation_and_bad_observables() -> None:
    fleet = multiqpu.Fleet([multiqpu.device("local:noisy", num_qubits=2, seed=1)])
    with pytest.raises(multiqpu.InvalidInputError, match="linear extrapolator"):
        await fleet.sample([ghz(2)], mitigation=[multiqpu.ZNE(extrapolator="exponential")])
    res = await fleet.sample([ghz(2)], shots=100, mitigation=[])
    with pytest.raises(multiqpu.InvalidInputError, match="'Z'/'I'"):
        res[0].expectation("XZ")
