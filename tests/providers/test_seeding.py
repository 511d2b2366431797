"""Seeded simulators of every provider: a reproducible sequence of independent batches.

A device built with ``seed=s`` gives the same counts, batch after batch, as any other device
built with ``seed=s``; two batches of one device are independent samples (shots of one
circuit split over two jobs must not be copies). Unseeded devices draw fresh entropy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from qiskit import QuantumCircuit

import multiqpu
from multiqpu.provider_api import SimulatorDevice
from multiqpu.queue_model import QueuedDevice, QueueModel

# (spec, options); every simulator kind of every provider shipped with multiqpu
SIMULATORS: list[tuple[str, dict[str, Any]]] = [
    ("local:ideal", {"num_qubits": 3}),
    ("local:noisy", {"num_qubits": 3}),
    ("local:noisy", {"calibration": "ibm:fake_manila"}),
    ("braket:sv", {}),
    ("braket:dm", {}),
    ("braket:emulator", {}),
    ("ibm:fake_manila", {}),
    ("ibm:fake_torino", {}),
]
IDS = [f"{spec}{'-' + '-'.join(map(str, o.values())) if o else ''}" for spec, o in SIMULATORS]

#: chi-square(19) quantiles 0.0005 and 0.9995: 20 independent binomial batches fall inside
#: with probability 0.999; 20 copies of one batch give 0, over-dispersed batches a lot more.
CHI2_19_LOW, CHI2_19_HIGH = 4.912, 45.973


def coin(n: int = 1) -> QuantumCircuit:
    """H then measure on ``n`` qubits: every outcome equally likely."""
    qc = QuantumCircuit(n, n)
    qc.h(range(n))
    qc.measure(range(n), range(n))
    return qc


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


def build(index: int, **extra: Any) -> multiqpu.Device:
    spec, options = SIMULATORS[index]
    return multiqpu.device(spec, **options, **extra)


async def batches(device: multiqpu.Device, count: int, shots: int) -> list[Mapping[str, int]]:
    """Counts of ``count`` successive one-circuit batches (a Bell pair, then coins)."""
    out = []
    for _ in range(count):
        result = await device.run([bell(), coin()], shots)
        out.append({**{f"b{k}": v for k, v in result[0].counts.items()}, **result[1].counts})
    return out


@pytest.mark.parametrize("index", range(len(SIMULATORS)), ids=IDS)
async def test_same_seed_same_sequence_of_batches(index: int) -> None:
    first, second, other = build(index, seed=7), build(index, seed=7), build(index, seed=8)
    assert first.simulator and isinstance(first, SimulatorDevice)
    runs = [await batches(d, 3, 2000) for d in (first, second, other)]
    assert runs[0] == runs[1], "two devices with one seed give one sequence of batches"
    assert runs[0] != runs[2], "another seed, another sequence"
    assert runs[0][0] != runs[0][1] != runs[0][2], "batches of one device are not copies"


@pytest.mark.parametrize("index", range(len(SIMULATORS)), ids=IDS)
async def test_batches_are_independent_draws(index: int) -> None:
    """20 batches of 1,000 shots of a fair coin: the spread of the batch frequencies is
    binomial (chi-square homogeneity test), as for 20 independent jobs on hardware."""
    device = build(index, seed=11)
    k, shots = 20, 1000
    ones = [(await device.run([coin()], shots))[0].counts.get("1", 0) for _ in range(k)]
    p = sum(ones) / (k * shots)
    assert 0.4 < p < 0.6, p
    statistic = sum((x - shots * p) ** 2 for x in ones) / (shots * p * (1 - p))
    assert CHI2_19_LOW < statistic < CHI2_19_HIGH, (statistic, ones)


@pytest.mark.parametrize("index", [0, 3, 6], ids=[IDS[0], IDS[3], IDS[6]])
async def test_concurrent_batches_keep_the_sequence(index: int) -> None:
    """Batch k is the k-th *submitted*, whatever order the threads finish in."""
    sequential = build(index, seed=3)
    want = [(await sequential.run([coin(2)], 500))[0].counts for _ in range(3)]
    concurrent = build(index, seed=3)
    got = await asyncio.gather(*(concurrent.run([coin(2)], 500) for _ in range(3)))
    assert [r[0].counts for r in got] == want
    assert [r.metadata["batch"] for r in got] == [0, 1, 2]


@pytest.mark.parametrize("index", range(len(SIMULATORS)), ids=IDS)
async def test_unseeded_devices_work_and_differ(index: int) -> None:
    a, b = build(index), build(index)
    assert a.seed is None  # type: ignore[attr-defined]
    ra, rb = [(await d.run([coin(3)], 4000))[0] for d in (a, b)]
    for r in (ra, rb):
        assert sum(r.counts.values()) == 4000 and len(r.counts) == 8
    assert ra.counts != rb.counts, "fresh entropy per device"


async def test_a_queued_simulator_keeps_its_sequence() -> None:
    model = QueueModel.for_device("local:ideal", style="local", time_scale=0.0)
    queued = QueuedDevice(build(0, seed=5), model)
    plain = build(0, seed=5)
    assert queued.simulator and queued.exact
    got = [(await queued.run([coin(2)], 300))[0].counts for _ in range(2)]
    want = [(await plain.run([coin(2)], 300))[0].counts for _ in range(2)]
    assert got == want


def test_seed_must_be_a_non_negative_integer() -> None:
    with pytest.raises(multiqpu.MultiQPUError):
        build(3, seed=-1)
    with pytest.raises(multiqpu.MultiQPUError):
        build(0, seed="7")
