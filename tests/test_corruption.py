"""Result-corruption fault models of FaultyDevice (``corrupt=``): each model's statistics on a
circuit with a known outcome, reproducibility from the seed, and bad input."""

from __future__ import annotations

import math

import pytest
from qiskit import QuantumCircuit

import multiqpu
from multiqpu.errors import InvalidInputError
from multiqpu.testing.faults import (
    BitFlips,
    Drift,
    FaultyDevice,
    OtherCircuitCounts,
    UniformCounts,
)

SHOTS = 4000


@pytest.fixture(scope="module")
def ideal() -> multiqpu.Device:
    return multiqpu.device("local:ideal", num_qubits=6, seed=5)


def basis(bits: str) -> QuantumCircuit:
    """Prepares |bits> (Qiskit order: the rightmost character is qubit 0) and measures all."""
    qc = QuantumCircuit(len(bits))
    for q, b in enumerate(reversed(bits)):
        if b == "1":
            qc.x(q)
    qc.measure_all()
    return qc


def flip_rate(counts: dict[str, int], ideal_key: str, position: int) -> float:
    """Share of shots whose classical bit ``position`` differs from the ideal outcome."""
    i = len(ideal_key) - 1 - position
    wrong = sum(n for k, n in counts.items() if k[i] != ideal_key[i])
    return wrong / sum(counts.values())


def within(rate: float, p: float, shots: int, k: float = 5.0) -> bool:
    return abs(rate - p) <= k * math.sqrt(p * (1 - p) / shots) + 1e-12


async def test_bit_flips_on_all_measured_bits_at_rate_p(ideal: multiqpu.Device) -> None:
    dev = FaultyDevice(ideal, corrupt=BitFlips(0.05), seed=1)
    result = await dev.run([basis("0110")], SHOTS)
    counts = dict(result[0].counts)
    assert sum(counts.values()) == SHOTS
    for position in range(4):
        assert within(flip_rate(counts, "0110", position), 0.05, SHOTS)
    assert dev.corrupted == [result.job_id]


async def test_bit_flips_only_on_named_qubits(ideal: multiqpu.Device) -> None:
    dev = FaultyDevice(ideal, corrupt=BitFlips(0.2, qubits=[1]), seed=2)
    counts = dict((await dev.run([basis("0101")], SHOTS))[0].counts)
    assert within(flip_rate(counts, "0101", 1), 0.2, SHOTS)
    assert all(flip_rate(counts, "0101", q) == 0.0 for q in (0, 2, 3))


async def test_bit_flips_are_reproducible_from_the_seed(ideal: multiqpu.Device) -> None:
    async def draw(seed: int) -> list[dict[str, int]]:
        dev = FaultyDevice(ideal, corrupt=BitFlips(0.1), seed=seed)
        return [dict((await dev.run([basis("111")], 500))[0].counts) for _ in range(3)]

    first = await draw(7)
    assert first == await draw(7)
    assert first != await draw(8)
    assert first[0] != first[1]  # two jobs are independent draws


async def test_bit_flips_on_exact_probabilities(ideal: multiqpu.Device) -> None:
    dev = FaultyDevice(ideal, corrupt=BitFlips(0.1, qubits=[0]))
    probs = (await dev.run([basis("10")], None))[0].probabilities
    assert probs is not None
    assert probs["10"] == pytest.approx(0.9) and probs["11"] == pytest.approx(0.1)


async def test_other_circuit_counts_within_a_job_and_across_jobs(ideal: multiqpu.Device) -> None:
    dev = FaultyDevice(ideal, corrupt=OtherCircuitCounts(), seed=3)
    result = await dev.run([basis("001"), basis("100")], SHOTS)
    assert dict(result[0].counts) == {"100": SHOTS}
    assert dict(result[1].counts) == {"001": SHOTS}
    # a lone circuit gets a circuit of the earlier job, resampled to its own shots
    alone = await dev.run([basis("111")], 100)
    assert dict(alone[0].counts) in ({"001": 100}, {"100": 100})
    # nothing of the same width anywhere: left as it was
    wide = await dev.run([basis("11111")], 100)
    assert dict(wide[0].counts) == {"11111": 100}
    assert wide.job_id not in dev.corrupted


async def test_uniform_counts(ideal: multiqpu.Device) -> None:
    dev = FaultyDevice(ideal, corrupt=UniformCounts(), seed=4)
    counts = dict((await dev.run([basis("000")], 8000))[0].counts)
    assert sum(counts.values()) == 8000 and len(counts) == 8
    for n in counts.values():
        assert within(n / 8000, 1 / 8, 8000)


async def test_drift_starts_mid_run_and_grows(ideal: multiqpu.Device) -> None:
    model = Drift(start_after_jobs=2, p_per_job=0.05, max_p=0.12)
    assert [model.p_at(k) for k in range(5)] == pytest.approx([0, 0, 0.05, 0.10, 0.12])
    dev = FaultyDevice(ideal, corrupt=model, seed=5)
    rates = []
    for _ in range(5):
        counts = dict((await dev.run([basis("0000")], SHOTS))[0].counts)
        rates.append(flip_rate(counts, "0000", 2))
    assert rates[:2] == [0.0, 0.0]
    for rate, p in zip(rates[2:], (0.05, 0.10, 0.12), strict=True):
        assert within(rate, p, SHOTS)
    assert len(dev.corrupted) == 3


async def test_models_apply_in_order(ideal: multiqpu.Device) -> None:
    dev = FaultyDevice(ideal, corrupt=[UniformCounts(), BitFlips(1.0)], seed=6)
    counts = (await dev.run([basis("0")], 1000))[0].counts
    assert sum(counts.values()) == 1000 and set(counts) == {"0", "1"}


def test_bad_corruption_input_is_refused(ideal: multiqpu.Device) -> None:
    with pytest.raises(InvalidInputError, match="probability"):
        BitFlips(1.5)
    with pytest.raises(InvalidInputError, match="qubits"):
        BitFlips(0.1, qubits=[-1])
    with pytest.raises(InvalidInputError, match="start_after_jobs"):
        Drift(start_after_jobs=-1)
    with pytest.raises(InvalidInputError, match="corrupt="):
        FaultyDevice(ideal, corrupt="flip")  # type: ignore[arg-type]
