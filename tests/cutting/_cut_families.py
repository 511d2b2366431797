"""Circuit families for the cutting tests (8-14 qubits, parameters bound, seeded) and
exact expectation values to compare with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit.library import efficient_su2
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu
from multiqpu.testing.faults import FaultyDevice


def hea(n: int = 12, reps: int = 2, seed: int = 1) -> QuantumCircuit:
    """Hardware-efficient ansatz (EfficientSU2, linear entanglement)."""
    qc = efficient_su2(n, entanglement="linear", reps=reps)
    rng = np.random.default_rng(seed)
    return qc.assign_parameters(rng.uniform(-np.pi, np.pi, qc.num_parameters))


def qaoa(n: int = 8, layers: int = 1, seed: int = 2) -> QuantumCircuit:
    """QAOA for MaxCut on a ring: RZZ cost layers and RX mixers."""
    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(n, name=f"qaoa_{n}")
    qc.h(range(n))
    for _ in range(layers):
        gamma, beta = rng.uniform(0.2, 1.2, 2)
        for i in range(n):
            qc.rzz(2 * gamma, i, (i + 1) % n)
        for q in range(n):
            qc.rx(2 * beta, q)
    return qc


def ghz(n: int = 10, tilt: float = 0.3) -> QuantumCircuit:
    """GHZ-like: a CX chain from |+>, with small rotations so not every Pauli is trivial."""
    qc = QuantumCircuit(n, name=f"ghz_{n}")
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    for q in range(0, n, 3):
        qc.ry(tilt * (q + 1) / n, q)
    return qc


def random_blocks(n: int = 10, depth: int = 3, seed: int = 3) -> QuantumCircuit:
    """Random two-block circuit: random U gates and random CX/CZ/RZZ/SWAP inside each half,
    and one random two-qubit gate across the halves per layer."""
    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(n, name=f"random_{n}")
    half = n // 2
    blocks = [list(range(half)), list(range(half, n))]
    for _ in range(depth):
        for q in range(n):
            qc.u(*rng.uniform(0, 2 * np.pi, 3), q)
        for block in blocks:
            order = rng.permutation(block)
            for a, b in zip(order[::2], order[1::2], strict=False):
                _two(qc, rng, int(a), int(b))
        _two(qc, rng, int(rng.choice(blocks[0])), int(rng.choice(blocks[1])))
    return qc


def _two(qc: QuantumCircuit, rng: np.random.Generator, a: int, b: int) -> None:
    kind = rng.integers(4)
    if kind == 0:
        qc.cx(a, b)
    elif kind == 1:
        qc.cz(a, b)
    elif kind == 2:
        qc.rzz(float(rng.uniform(0, np.pi)), a, b)
    else:
        qc.cx(a, b)
        qc.ry(float(rng.uniform(0, np.pi)), b)


def observables_for(n: int, seed: int = 0) -> list[Any]:
    """Observables in every accepted form, spanning the whole register."""
    rng = np.random.default_rng(seed)
    paulis = ["".join(rng.choice(list("IXYZ"), n)) for _ in range(3)]
    z_ends = "Z" + "I" * (n - 2) + "Z"
    zz_mid = "I" * (n // 2 - 1) + "ZZ" + "I" * (n - n // 2 - 1)
    return [
        SparsePauliOp([z_ends, zz_mid, "X" * n], [0.6, -0.8, 0.3]),
        "Z" * n,
        SparsePauliOp(paulis, [0.5, 0.25, -0.25]),
    ]


def exact_values(circuit: QuantumCircuit, observables: Sequence[Any]) -> np.ndarray:
    state = Statevector(circuit.remove_final_measurements(inplace=False))
    out = []
    for o in observables:
        op = SparsePauliOp(o) if isinstance(o, str) else o
        out.append(state.expectation_value(op).real)
    return np.array(out)


def ideal_fleet(*widths: int, seed: int = 11, recording: bool = False) -> multiqpu.Fleet:
    """Ideal simulators of the given widths (labelled, so a fleet holds several);
    ``recording``: wrapped so that each keeps a list of the jobs it accepted."""
    devices = [
        multiqpu.device("local:ideal", num_qubits=w, seed=seed + i, label=f"ideal{w}-{i}")
        for i, w in enumerate(widths)
    ]
    if recording:
        devices = [FaultyDevice(d, name=d.name) for d in devices]
    return multiqpu.Fleet(devices)
