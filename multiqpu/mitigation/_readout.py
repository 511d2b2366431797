"""Readout calibration per (device, physical qubits) and the two ways to apply it.

Calibration (M3's "balanced" method): for ``n`` qubits, the rows of a ``2^m x 2^m``
Sylvester-Hadamard matrix (``2^m > n``) give ``2^m`` bit patterns in which every qubit is
prepared in 0 and in 1 equally often (and every pair of qubits in each of the four joint
states equally often); each pattern is a circuit of X gates and measurements on the
device's physical qubits (native gates, run as given). From the outcomes, every qubit's
``p10 = P(read 1 | prepared 0)`` and ``p01 = P(read 0 | prepared 1)``: the tensored model
M3 uses (its calibration matrices are ``[[1-p10, p01], [p10, 1-p01]]``).

Applying it:

* **Expectation values** (``fleet.estimate``, cut circuits): per shot. For one bit with
  flip probabilities ``p10, p01`` the recorded ``z = ±1`` has ``E[z] = a + b z_true`` with
  ``a = p01 - p10`` and ``b = 1 - p10 - p01``, so ``(z - a) / b`` is unbiased for ``z_true``;
  flips of different bits are independent, so the product over a Pauli's bits is unbiased
  for its parity. This is exactly the inverse of M3's tensored matrix applied to the
  observable, vectorised over distinct outcomes, and its per-shot values give the exact
  covariance of every estimate (which knitting needs; M3's quasi-distributions do not carry
  covariances). Tests check it against ``mthree``'s own expectation values.
* **Distributions** (``fleet.sample``): M3's matrix-free solver (``mthree.M3Mitigation``
  with these matrices) turns counts into a quasi-distribution. ``mthree`` is imported only
  there (it loads qiskit-ibm-runtime through ``runningman``: about a second).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

    from multiqpu.calibration import Calibration
    from multiqpu.device import Device

__all__ = [
    "BitModel",
    "ReadoutCalibration",
    "bit_model",
    "balanced_patterns",
    "calibration_circuits",
    "from_counts",
    "from_profile",
    "m3_quasi",
    "merge",
]

#: A qubit whose readout keeps less than this much signal (1 - p10 - p01) is refused.
MIN_CONTRAST = 0.05


@dataclass(frozen=True, eq=False)
class ReadoutCalibration:
    """Per-qubit readout flip probabilities of some physical qubits of one device.

    ``n0``/``n1``: preparations behind each estimate (``inf`` for a profile, whose figures
    carry no sampling error). ``source``: "measured" (now), "cache" or "profile".
    ``shots``: shots spent now (0 unless measured now).
    """

    device: str
    fingerprint: str
    qubits: tuple[int, ...]
    p10: tuple[float, ...]
    p01: tuple[float, ...]
    n0: tuple[float, ...]
    n1: tuple[float, ...]
    source: str
    measured_at: float | None = None
    shots: int = 0

    def index(self) -> dict[int, int]:
        return {q: i for i, q in enumerate(self.qubits)}

    def covers(self, qubits: Sequence[int]) -> bool:
        have = set(self.qubits)
        return all(q in have for q in qubits)

    def restricted(self, qubits: Sequence[int], *, source: str | None = None) -> ReadoutCalibration:
        """The same figures for a subset of the qubits (in the given order)."""
        idx = self.index()
        pick = [idx[q] for q in qubits]
        return ReadoutCalibration(
            self.device,
            self.fingerprint,
            tuple(qubits),
            tuple(self.p10[i] for i in pick),
            tuple(self.p01[i] for i in pick),
            tuple(self.n0[i] for i in pick),
            tuple(self.n1[i] for i in pick),
            source or self.source,
            self.measured_at,
            self.shots,
        )

    def matrices(self) -> list[np.ndarray]:
        """M3's per-qubit calibration matrices ``[[P(0|0), P(0|1)], [P(1|0), P(1|1)]]``."""
        import numpy as np

        return [
            np.array([[1 - a, b], [a, 1 - b]], dtype=np.float32)
            for a, b in zip(self.p10, self.p01, strict=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        def finite(values: Sequence[float]) -> list[float | None]:
            return [v if math.isfinite(v) else None for v in values]

        return {
            "device": self.device,
            "fingerprint": self.fingerprint,
            "qubits": list(self.qubits),
            "p10": list(self.p10),
            "p01": list(self.p01),
            "n0": finite(self.n0),
            "n1": finite(self.n1),
            "source": self.source,
            "measured_at": self.measured_at,
            "shots": self.shots,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReadoutCalibration:
        def num(values: Sequence[float | None]) -> tuple[float, ...]:
            return tuple(math.inf if v is None else float(v) for v in values)

        return cls(
            device=str(data["device"]),
            fingerprint=str(data["fingerprint"]),
            qubits=tuple(int(q) for q in data["qubits"]),
            p10=tuple(float(v) for v in data["p10"]),
            p01=tuple(float(v) for v in data["p01"]),
            n0=num(data["n0"]),
            n1=num(data["n1"]),
            source=str(data.get("source", "measured")),
            measured_at=data.get("measured_at"),
            shots=int(data.get("shots", 0)),
        )


# ---------------------------------------------------------------------- calibration circuits
def balanced_patterns(n: int) -> np.ndarray:
    """``(2^m, n)`` distinct bit patterns, ``2^m > n``: the rows of a Sylvester-Hadamard
    matrix without its constant column. Every column holds as many 0s as 1s, and every pair
    of columns each of the four combinations equally often (the columns are orthogonal)."""
    import numpy as np

    m = max(1, math.ceil(math.log2(n + 1)))
    h = np.array([[1]], dtype=np.int8)
    for _ in range(m):
        h = np.block([[h, h], [h, -h]])
    return (h[:, 1 : n + 1] < 0).astype(np.uint8)


def calibration_circuits(
    device: Device, qubits: Sequence[int]
) -> tuple[list[QuantumCircuit], np.ndarray]:
    """Balanced calibration circuits over ``qubits`` of ``device`` (full device width, native
    gates; classical bit ``i`` reads ``qubits[i]``) and their prepared bit patterns."""
    from qiskit import QuantumCircuit

    from multiqpu.mitigation._isa import native_1q

    patterns = balanced_patterns(len(qubits))
    basis = device.target.basis_gates
    circuits = []
    for j, row in enumerate(patterns):
        qc = QuantumCircuit(device.num_qubits, len(qubits), name=f"readout_cal_{j}")
        for i, bit in enumerate(row):
            if bit:
                qc.x(qubits[i])
        qc.barrier([qubits[i] for i in range(len(qubits))])
        qc.measure(list(qubits), list(range(len(qubits))))
        circuits.append(native_1q(qc, basis))
    return circuits, patterns


def _bits(counts: Mapping[str, float], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct outcomes as a ``(X, width)`` 0/1 array (column i = classical bit i) and
    their weights."""
    import numpy as np

    keys = [k.replace(" ", "") for k in counts]
    weights = np.fromiter((float(v) for v in counts.values()), float, len(keys))
    if not keys:
        return np.zeros((0, width), dtype=np.uint8), weights
    raw = np.frombuffer("".join(keys).encode(), dtype=np.uint8).reshape(len(keys), -1) - 48
    if raw.shape[1] != width:
        raise InvalidInputError(f"outcomes have {raw.shape[1]} bits, expected {width}")
    return raw[:, ::-1].astype(np.uint8), weights


def from_counts(
    device: str,
    fingerprint: str,
    qubits: Sequence[int],
    patterns: np.ndarray,
    counts: Sequence[Mapping[str, int]],
    *,
    shots: int,
) -> ReadoutCalibration:
    """Per-qubit flip probabilities from the balanced circuits' counts."""
    import numpy as np

    n = len(qubits)
    flips = np.zeros((2, n))
    trials = np.zeros((2, n))
    for row, table in zip(patterns, counts, strict=True):
        bits, w = _bits(table, n)
        wrong = (bits != row[None, :]) * w[:, None]  # (X, n)
        total = w.sum()
        for prep in (0, 1):
            sel = row == prep
            flips[prep, sel] += wrong[:, sel].sum(axis=0)
            trials[prep, sel] += total
    p = flips / np.maximum(trials, 1)
    cal = ReadoutCalibration(
        device,
        fingerprint,
        tuple(int(q) for q in qubits),
        tuple(float(v) for v in p[0]),
        tuple(float(v) for v in p[1]),
        tuple(float(v) for v in trials[0]),
        tuple(float(v) for v in trials[1]),
        "measured",
        time.time(),
        shots,
    )
    check(cal)
    return cal


def from_profile(
    device: str, calibration: Calibration, qubits: Sequence[int]
) -> ReadoutCalibration:
    """Flip probabilities from the device's calibration profile (no shots spent): the
    asymmetric figures where the vendor gives them, else the mean readout error."""
    p10, p01 = [], []
    for q in qubits:
        mean = calibration.readout_error.get(q, 0.0)
        p10.append(float(calibration.prob_meas1_prep0.get(q, mean)))
        p01.append(float(calibration.prob_meas0_prep1.get(q, mean)))
    inf = tuple(math.inf for _ in qubits)
    cal = ReadoutCalibration(
        device, calibration.fingerprint(), tuple(qubits), tuple(p10), tuple(p01), inf, inf,
        "profile", None, 0,
    )  # fmt: skip
    check(cal)
    return cal


def merge(
    device: str,
    fingerprint: str,
    qubits: Sequence[int],
    parts: Sequence[ReadoutCalibration],
    *,
    source: str,
) -> ReadoutCalibration:
    """One calibration of ``qubits`` taking each qubit from the first part that has it."""
    p10, p01, n0, n1 = [], [], [], []
    for q in qubits:
        for part in parts:
            i = part.index().get(q)
            if i is not None:
                break
        else:
            raise KeyError(f"no calibration of qubit {q} of {device}")
        p10.append(part.p10[i])
        p01.append(part.p01[i])
        n0.append(part.n0[i])
        n1.append(part.n1[i])
    stamps = [p.measured_at for p in parts if p.measured_at is not None]
    return ReadoutCalibration(
        device, fingerprint, tuple(qubits), tuple(p10), tuple(p01), tuple(n0), tuple(n1),
        source, min(stamps) if stamps else None, 0,
    )  # fmt: skip


def check(cal: ReadoutCalibration) -> None:
    for q, a, b in zip(cal.qubits, cal.p10, cal.p01, strict=True):
        if 1 - a - b < MIN_CONTRAST:
            raise InvalidInputError(
                f"qubit {q} of {cal.device} reads out almost at random (P(1|0)={a:.3f}, "
                f"P(0|1)={b:.3f}); readout correction would only amplify noise. Exclude the "
                "device or this qubit"
            )


# ---------------------------------------------------------------------- per-bit parameters
#: Identifies one measured calibration parameter: (device, qubit, "p10" | "p01", value,
#: preparations). Circuits corrected with the same measurement share the key, so the
#: calibration's error is counted as common to them.
ParamKey = tuple[str, int, str, float, float]


@dataclass(frozen=True, eq=False)
class BitModel:
    """Per classical bit of one circuit: the affine map of its readout, ``E[z] = a + b z``,
    and the calibration parameters (keys and variances) it was built from, for propagating
    the calibration's own sampling error (profiles carry none)."""

    a: np.ndarray  # (B,) p01 - p10
    b: np.ndarray  # (B,) 1 - p10 - p01
    keys: tuple[tuple[ParamKey, ParamKey] | None, ...]  # per bit: (p10 key, p01 key)
    variances: Mapping[ParamKey, float]

    @classmethod
    def identity(cls, width: int) -> BitModel:
        import numpy as np

        return cls(np.zeros(width), np.ones(width), (None,) * width, {})


def _binomial_var(p: float, n: float) -> float:
    if not math.isfinite(n) or n <= 0:
        return 0.0
    # Agresti-Coull-style floor so that a rate measured as 0 still has an uncertainty
    q = (p * n + 1.0) / (n + 2.0)
    return q * (1.0 - q) / n


def bit_model(cal: ReadoutCalibration | None, clbit_qubits: Sequence[int | None]) -> BitModel:
    import numpy as np

    width = len(clbit_qubits)
    if cal is None:
        return BitModel.identity(width)
    a, b = np.zeros(width), np.ones(width)
    keys: list[tuple[ParamKey, ParamKey] | None] = [None] * width
    variances: dict[ParamKey, float] = {}
    idx = cal.index()
    for bit, q in enumerate(clbit_qubits):
        if q is None:
            continue
        i = idx[q]
        a[bit] = cal.p01[i] - cal.p10[i]
        b[bit] = 1 - cal.p10[i] - cal.p01[i]
        v10, v01 = _binomial_var(cal.p10[i], cal.n0[i]), _binomial_var(cal.p01[i], cal.n1[i])
        if v10 > 0 or v01 > 0:
            k10: ParamKey = (cal.device, int(q), "p10", cal.p10[i], cal.n0[i])
            k01: ParamKey = (cal.device, int(q), "p01", cal.p01[i], cal.n1[i])
            keys[bit] = (k10, k01)
            variances[k10], variances[k01] = v10, v01
    return BitModel(a, b, tuple(keys), variances)


# ---------------------------------------------------------------------- M3 (distributions)
def m3_quasi(
    counts: Mapping[str, int],
    cal: ReadoutCalibration,
    clbit_qubits: Sequence[int | None],
    *,
    distance: int | None = None,
) -> tuple[dict[str, float], float]:
    """M3's corrected quasi-distribution of ``counts`` and its mitigation overhead (the
    factor by which the variance of an expectation value grows)."""
    import numpy as np

    try:
        import mthree
    except ImportError:
        from multiqpu.errors import MissingExtraError

        raise MissingExtraError("mitigation", "mitigation", "mthree") from None
    identity = np.eye(2, dtype=np.float32)
    mats = cal.matrices()
    idx = cal.index()
    per_bit = [identity if q is None else mats[idx[q]] for q in clbit_qubits]
    mit = mthree.M3Mitigation()
    mit.cals_from_matrices(per_bit)
    width = len(clbit_qubits)
    clean = {k.replace(" ", ""): v for k, v in counts.items()}
    quasi = mit.apply_correction(
        clean, list(range(width)), distance=distance, return_mitigation_overhead=True
    )
    overhead = float(getattr(quasi, "mitigation_overhead", 1.0) or 1.0)
    return {k: float(v) for k, v in quasi.items()}, overhead
