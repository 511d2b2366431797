"""Braket noise pragmas built from a :class:`multiqpu.Calibration` (the ``dm`` device).

The model matches Braket's own ``LocalEmulator`` convention, so a calibration read from
device properties means the same thing on both devices:

* after a one-qubit gate with average gate error ``e``: ``depolarizing(3e/2)`` (a
  depolarizing channel of parameter p has average gate infidelity 2p/3);
* after a two-qubit gate with error ``e``: ``two_qubit_depolarizing(5e/4)`` (infidelity 4p/5);
* before each measurement: ``bit_flip(readout_error)``, or an asymmetric Kraus channel when
  the calibration gives P(1|0) and P(0|1) separately.

Virtual gates (``rz``) carry no error. T1/T2 are not added on top: randomized-benchmarking
errors already include decoherence during the gate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from multiqpu.provider_api import Calibration

__all__ = ["CalibrationNoise"]

_MAX_1Q = 0.75  # fully depolarizing
_MAX_2Q = 15 / 16


def _num(x: float) -> str:
    return repr(float(x))


class CalibrationNoise:
    """A :class:`multiqpu_braket._translate.NoiseHook` for one calibration."""

    def __init__(self, calibration: Calibration) -> None:
        self.calibration = calibration

    def gate(self, name: str, qubits: tuple[int, ...], refs: tuple[str, ...]) -> Iterable[str]:
        cal = self.calibration
        if len(qubits) == 2:
            p = min(_MAX_2Q, 1.25 * cal.error(name, qubits))
            if p > 0:
                yield f"#pragma braket noise two_qubit_depolarizing({_num(p)}) {refs[0]}, {refs[1]}"
            return
        for q, ref in zip(qubits, refs, strict=True):
            # one-qubit gates; wider gates (rare after transpilation) get per-qubit noise
            p = min(_MAX_1Q, 1.5 * cal.error(name, (q,)))
            if p > 0:
                yield f"#pragma braket noise depolarizing({_num(p)}) {ref}"

    def readout(self, qubit: int, ref: str) -> Iterable[str]:
        cal = self.calibration
        p10 = cal.prob_meas1_prep0.get(qubit)
        p01 = cal.prob_meas0_prep1.get(qubit)
        if p10 is not None and p01 is not None and (p10 > 0 or p01 > 0):
            a, b = min(max(p10, 0.0), 1.0), min(max(p01, 0.0), 1.0)
            k = (
                f"[[{_num(math.sqrt(1 - a))}, 0], [0, 0]]",
                f"[[0, 0], [{_num(math.sqrt(a))}, 0]]",
                f"[[0, {_num(math.sqrt(b))}], [0, 0]]",
                f"[[0, 0], [0, {_num(math.sqrt(1 - b))}]]",
            )
            yield f"#pragma braket noise kraus({', '.join(k)}) {ref}"
            return
        p = cal.readout_error.get(qubit, 0.0)
        if p > 0:
            yield f"#pragma braket noise bit_flip({_num(min(p, 0.5))}) {ref}"
