"""Canary circuits: mirror circuits with one known ideal outcome, and what a device's own
calibration predicts for them (see :mod:`multiqpu.trust`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import Device

__all__ = ["Canary", "canary_failures", "make_canary", "predicted_fidelity"]

_ONE_QUBIT = ("h", "s", "sdg", "x", "y", "z", "sx", "sxdg")


@dataclass(frozen=True)
class Canary:
    """A mirror circuit and the bitstring it ideally always returns."""

    circuit: QuantumCircuit
    expected: str  # in counts-key order (classical bit 0 rightmost)

    @property
    def width(self) -> int:
        return len(self.expected)


def make_canary(width: int, layers: int, rng: np.random.Generator) -> Canary:
    """``layers`` random Clifford layers (two random one-qubit Cliffords per qubit, then CX on
    alternating neighbour pairs), a barrier, their inverse, a barrier, X on a random subset;
    measured into ``width`` classical bits. Barriers keep a transpiler from cancelling the
    mirror."""
    from qiskit import QuantumCircuit

    forward = QuantumCircuit(width)
    for layer in range(layers):
        for q in range(width):
            for name in rng.choice(_ONE_QUBIT, size=2):
                getattr(forward, str(name))(q)
        for q in range(layer % 2, width - 1, 2):
            forward.cx(q, q + 1) if rng.random() < 0.5 else forward.cx(q + 1, q)
    qc = QuantumCircuit(width, name=f"canary-{width}x{layers}")
    qc.compose(forward, inplace=True)
    qc.barrier()
    qc.compose(forward.inverse(), inplace=True)
    qc.barrier()
    bits = rng.integers(0, 2, size=width)
    for q in np.flatnonzero(bits).tolist():
        qc.x(q)
    qc.measure_all(add_bits=True)
    expected = "".join(str(int(b)) for b in bits[::-1])
    return Canary(qc, expected)


def predicted_fidelity(device: Device, circuit: QuantumCircuit) -> float:
    """The device calibration's fidelity of the circuit as it would run there."""
    calibration = device.calibration()
    if calibration.is_ideal():
        return 1.0
    return float(calibration.estimated_fidelity(device.transpile(circuit)))


def canary_failures(counts: Mapping[str, int], expected: str) -> tuple[int, int]:
    """(shots that missed the ideal outcome, all shots)."""
    shots = sum(counts.values())
    return shots - int(counts.get(expected, 0)), shots
