"""The primitives and the PennyLane device on shots split over devices (docs/shots.md): an
expectation value is estimated on each device's share and combined with inverse-variance
weights, never from counts summed over devices with different noise."""

from __future__ import annotations

import math

import numpy as np
import pennylane as qml
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

import multiqpu
from multiqpu.pipeline import combine
from multiqpu.primitives import FleetEstimator


def noisy(name: str, error: float, seed: int) -> multiqpu.Device:
    return multiqpu.device(
        "local:noisy", label=name, num_qubits=3, readout_error=error, gate_error_1q=0.0,
        gate_error_2q=0.0, seed=seed,
    )  # fmt: skip


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    return qc


def test_estimator_combines_per_device_values() -> None:
    fleet = multiqpu.Fleet([noisy("pa", 0.01, 1), noisy("pb", 0.10, 2)])
    est = FleetEstimator(fleet, policy="fastest", default_precision=0.0035)
    pub = est.run([(bell(), SparsePauliOp("ZZ"))]).result()[0]
    split = pub.metadata["split_shots"]
    assert len(split) == 1 and set(split[0]["devices"]) == {"local:pa", "local:pb"}
    c = combine(split[0]["values"], split[0]["std_errors"])
    assert float(pub.data.evs) == c.value and float(pub.data.stds) == c.std_error
    # readout errors of 1 % and 10 % move <ZZ> by ~0.04 and ~0.36: flagged, error widened
    assert split[0]["p_value"] < 1e-3 and split[0]["scale"] > 3


def test_estimator_split_over_ideal_devices_matches_exact() -> None:
    ideal = [multiqpu.device("local:ideal", label=f"pi{k}", num_qubits=3, seed=k) for k in (1, 2)]
    est = FleetEstimator(multiqpu.Fleet(ideal), policy="fastest", default_precision=0.004)
    qc = QuantumCircuit(2)
    qc.ry(1.1, 0)
    qc.cx(0, 1)
    pub = est.run([(qc, SparsePauliOp("ZZ"))]).result()[0]
    assert "split_shots" in pub.metadata
    assert abs(float(pub.data.evs) - 1.0) < 1e-12  # ZZ is +1 for this state on every shot
    pub = est.run([(qc, SparsePauliOp("ZI"))]).result()[0]
    assert abs(float(pub.data.evs) - math.cos(1.1)) < 4 * float(pub.data.stds)


def test_pennylane_expval_combines_per_device_values() -> None:
    fleet = multiqpu.Fleet([noisy("la", 0.01, 1), noisy("lb", 0.10, 2)])
    dev = qml.device("multiqpu.fleet", wires=2, fleet=fleet, policy="fastest")

    @qml.set_shots(shots=40_000)
    @qml.qnode(dev)
    def circuit() -> object:
        qml.RY(0.7, wires=0)
        qml.CNOT(wires=[0, 1])
        return qml.expval(qml.PauliZ(0) @ qml.PauliZ(1))

    value = float(circuit())
    se = float(dev.last_standard_errors[0])
    assert dev.work_share == {"local:la+local:lb": 1}  # one tape, its shots on both devices
    # <ZZ> = 1 for this state, seen through readout errors of 1 % and 10 %: the devices
    # disagree by far more than shot noise (~0.005), so the combined error is scaled up
    # (PDG factor) to cover the spread instead of reporting the bare ~0.004 (by how much
    # depends on the split: 0.025 when the noisier device got a small part, 0.05-0.14
    # for even splits)
    good, bad = (1 - 2 * 0.01) ** 2, (1 - 2 * 0.10) ** 2
    assert bad - 3 * se < value < good + 3 * se
    assert se > 0.015 and np.isfinite(value)


def measured_bell() -> QuantumCircuit:
    qc = bell()
    qc.measure_all()
    return qc


def test_sampler_refuses_counts_merged_over_incompatible_devices() -> None:
    from multiqpu.errors import IncompatibleResultsError
    from multiqpu.primitives import FleetSampler

    fleet = multiqpu.Fleet([noisy("sa", 0.01, 1), noisy("sb", 0.10, 2)])
    sampler = FleetSampler(fleet, policy="fastest", split_shots=True)
    with pytest.raises(IncompatibleResultsError, match="PUB 0, binding 0"):
        sampler.run([measured_bell()], shots=40_000).result()


def test_sampler_keeps_per_device_counts_of_a_compatible_split() -> None:
    from multiqpu.primitives import FleetSampler

    ideal = [multiqpu.device("local:ideal", label=f"si{k}", num_qubits=3, seed=k) for k in (1, 2)]
    sampler = FleetSampler(multiqpu.Fleet(ideal), policy="fastest", split_shots=True, seed=3)
    pub = sampler.run([measured_bell()], shots=20_000).result()[0]
    counts = pub.data.meas.get_counts()
    assert sum(counts.values()) == 20_000 and set(counts) == {"00", "11"}
    split = pub.metadata["split_shots"]
    assert len(split) == 1 and split[0]["binding"] == 0 and split[0]["compatible"]
    assert set(split[0]["devices"]) == {"local:si1", "local:si2"}
    assert sum(split[0]["shots"]) == 20_000
    # the per-device counts add up to the laid-out shots
    total: dict[str, int] = {}
    for share in split[0]["counts"]:
        for k, v in share.items():
            total[k] = total.get(k, 0) + v
    assert total == counts
    # |00> and |11> with probability 1/2: within 4 standard errors on each device
    for share, n in zip(split[0]["counts"], split[0]["shots"], strict=True):
        assert abs(share.get("00", 0) - n / 2) < 4 * math.sqrt(n / 4)
    # without split_shots the same run stays on one device
    pub = (
        FleetSampler(multiqpu.Fleet(ideal), policy="fastest", split_shots=False)
        .run([measured_bell()], shots=20_000)
        .result()[0]
    )
    assert "split_shots" not in pub.metadata


def test_pennylane_refuses_merged_samples_of_incompatible_devices() -> None:
    from multiqpu.errors import IncompatibleResultsError

    fleet = multiqpu.Fleet([noisy("pla", 0.01, 1), noisy("plb", 0.10, 2)])
    dev = qml.device("multiqpu.fleet", wires=2, fleet=fleet, policy="fastest")

    @qml.set_shots(shots=40_000)
    @qml.qnode(dev)
    def probs() -> object:
        qml.Hadamard(wires=0)
        qml.CNOT(wires=[0, 1])
        return qml.probs(wires=[0, 1])

    with pytest.raises(IncompatibleResultsError, match="other than expval"):
        probs()
