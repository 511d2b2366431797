"""Result-corruption fault models for :class:`~multiqpu.testing.faults.FaultyDevice`.

Each model is a frozen value; :func:`corrupt` applies a sequence of them, in order, to one job's
:class:`~multiqpu.device.RunResult`. Randomness comes from a NumPy generator the device derives
from its seed and the job's submission index, so a run replays exactly.

A measured bit is a classical bit that a ``measure`` writes; ``qubits`` name circuit qubits
(as submitted to the device) and select the classical bits measured from them. Counts keys are
bitstrings in Qiskit's order (classical bit 0 is the rightmost character).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from multiqpu.device import CircuitResult, RunResult
from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = [
    "BitFlips",
    "Corruption",
    "Drift",
    "OtherCircuitCounts",
    "UniformCounts",
    "corrupt",
    "normalise_corruption",
]

_MAX_EXACT_UNIFORM_BITS = 20


def _check_p(name: str, p: float) -> None:
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise InvalidInputError(f"{name} must be a probability in [0, 1], got {p!r}")


def _check_qubits(qubits: Sequence[int] | None) -> tuple[int, ...] | None:
    if qubits is None:
        return None
    out = tuple(qubits)
    if not out or any(isinstance(q, bool) or not isinstance(q, int) or q < 0 for q in out):
        raise InvalidInputError(
            f"qubits must be a non-empty sequence of indices >= 0, got {qubits!r}"
        )
    return out


@dataclass(frozen=True)
class BitFlips:
    """Flip each measured bit of ``qubits`` (default: every measured bit) with probability ``p``,
    independently per shot. On exact results (``shots=None``) the same channel is applied to the
    probabilities."""

    p: float
    qubits: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _check_p("BitFlips.p", self.p)
        object.__setattr__(self, "qubits", _check_qubits(self.qubits))


@dataclass(frozen=True)
class OtherCircuitCounts:
    """Return the counts of another circuit: the next circuit of the same job with as many
    classical bits (cyclically), else a circuit of the most recent earlier job that came back
    with as many classical bits; left unchanged when there is none. Counts for a different shot
    total are resampled from the other circuit's distribution."""


@dataclass(frozen=True)
class UniformCounts:
    """Counts drawn uniformly over all outcomes of the circuit's classical bits."""


@dataclass(frozen=True)
class Drift:
    """Bit flips that start mid-run and grow: jobs ``0 .. start_after_jobs - 1`` are honest; job
    ``k >= start_after_jobs`` flips measured bits with
    ``p = min(max_p, p_per_job * (k - start_after_jobs + 1))`` (jobs counted in submission
    order)."""

    start_after_jobs: int
    p_per_job: float = 0.01
    max_p: float = 0.5
    qubits: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if (
            isinstance(self.start_after_jobs, bool)
            or not isinstance(self.start_after_jobs, int)
            or self.start_after_jobs < 0
        ):
            raise InvalidInputError(
                f"Drift.start_after_jobs must be an int >= 0, got {self.start_after_jobs!r}"
            )
        _check_p("Drift.p_per_job", self.p_per_job)
        _check_p("Drift.max_p", self.max_p)
        object.__setattr__(self, "qubits", _check_qubits(self.qubits))

    def p_at(self, job_index: int) -> float:
        """The flip probability of the job with this submission index."""
        if job_index < self.start_after_jobs:
            return 0.0
        return min(self.max_p, self.p_per_job * (job_index - self.start_after_jobs + 1))


Corruption = BitFlips | OtherCircuitCounts | UniformCounts | Drift
_MODELS = (BitFlips, OtherCircuitCounts, UniformCounts, Drift)


def normalise_corruption(
    corrupt: Corruption | Sequence[Corruption] | None,
) -> tuple[Corruption, ...]:
    """``corrupt=`` as a tuple of models; a clear error for anything else."""
    if corrupt is None:
        return ()
    models = (corrupt,) if isinstance(corrupt, _MODELS) else tuple(corrupt)
    for m in models:
        if not isinstance(m, _MODELS):
            raise InvalidInputError(
                "corrupt= takes BitFlips, OtherCircuitCounts, UniformCounts or Drift (or a "
                f"sequence of them), got {m!r}"
            )
    return models


# ----------------------------------------------------------------------------- bit helpers
def _measured_positions(circuit: QuantumCircuit, qubits: tuple[int, ...] | None) -> list[int]:
    """Classical bit indices measured from ``qubits`` (all measured bits when None)."""
    wanted = None if qubits is None else set(qubits)
    out: set[int] = set()
    for inst in circuit.data:
        if inst.operation.name != "measure":
            continue
        q = circuit.find_bit(inst.qubits[0]).index
        if wanted is None or q in wanted:
            out.add(circuit.find_bit(inst.clbits[0]).index)
    return sorted(out)


def _counts_to_bits(counts: Mapping[str, int], width: int) -> np.ndarray:
    """One row per shot, column c = classical bit c."""
    keys = list(counts)
    rows = np.array([[k[width - 1 - c] == "1" for c in range(width)] for k in keys], dtype=bool)
    reps = np.array([counts[k] for k in keys], dtype=np.int64)
    return np.repeat(rows.reshape(len(keys), width), reps, axis=0)


def _flip_counts(
    counts: Mapping[str, int], positions: list[int], p: float, rng: np.random.Generator
) -> dict[str, int]:
    if not counts or not positions or p == 0.0:
        return dict(counts)
    width = len(next(iter(counts)))
    cols = [c for c in positions if c < width]
    bits = _counts_to_bits(counts, width)
    flips = rng.random((bits.shape[0], len(cols))) < p
    bits[:, cols] ^= flips
    # count rows as integers (fast), then back to keys
    weights = np.left_shift(np.int64(1), np.arange(width, dtype=np.int64))
    values, freq = np.unique(bits.astype(np.int64) @ weights, return_counts=True)
    return {format(int(v), f"0{width}b"): int(f) for v, f in zip(values, freq, strict=True)}


def _flip_probabilities(
    probs: Mapping[str, float], positions: list[int], p: float
) -> dict[str, float]:
    out = dict(probs)
    if not out or p == 0.0:
        return out
    width = len(next(iter(out)))
    for c in (c for c in positions if c < width):
        i = width - 1 - c
        new: dict[str, float] = {}
        for k, v in out.items():
            flipped = k[:i] + ("0" if k[i] == "1" else "1") + k[i + 1 :]
            new[k] = new.get(k, 0.0) + (1.0 - p) * v
            new[flipped] = new.get(flipped, 0.0) + p * v
        out = new
    return out


def _uniform(r: CircuitResult, width: int, rng: np.random.Generator) -> CircuitResult:
    if r.probabilities is not None and not r.counts:
        if width > _MAX_EXACT_UNIFORM_BITS:
            raise InvalidInputError(
                f"UniformCounts on exact results is limited to {_MAX_EXACT_UNIFORM_BITS} bits"
            )
        p = 1.0 / 2**width
        return replace(r, probabilities={format(v, f"0{width}b"): p for v in range(2**width)})
    shots = sum(r.counts.values())
    bits = rng.integers(0, 2, size=(shots, width)).astype(bool)
    weights = np.left_shift(np.int64(1), np.arange(width, dtype=np.int64))
    values, freq = np.unique(bits.astype(np.int64) @ weights, return_counts=True)
    counts = {format(int(v), f"0{width}b"): int(f) for v, f in zip(values, freq, strict=True)}
    return replace(r, counts=counts, probabilities=None)


def _take_other(r: CircuitResult, other: CircuitResult, rng: np.random.Generator) -> CircuitResult:
    if r.probabilities is not None and not r.counts:
        return replace(r, probabilities=dict(other.distribution()))
    shots = sum(r.counts.values())
    if sum(other.counts.values()) == shots:
        return replace(r, counts=dict(other.counts))
    dist = other.distribution()
    keys = list(dist)
    drawn = rng.multinomial(shots, np.array([dist[k] for k in keys]) / sum(dist.values()))
    return replace(r, counts={k: int(n) for k, n in zip(keys, drawn, strict=True) if n})


def _key_width(r: CircuitResult) -> int | None:
    first = next(iter(r.counts or r.probabilities or {}), None)
    return None if first is None else len(first)


def _width(r: CircuitResult, circuit: QuantumCircuit) -> int:
    width = _key_width(r)
    return circuit.num_clbits if width is None else width


def corrupt(
    models: Sequence[Corruption],
    circuits: Sequence[QuantumCircuit],
    result: RunResult,
    *,
    job_index: int,
    rng: np.random.Generator,
    history: Sequence[CircuitResult] = (),
) -> RunResult:
    """``result`` with ``models`` applied, in order, to every circuit's outcome.

    ``history`` holds circuit results of earlier jobs, most recent first, for
    :class:`OtherCircuitCounts`."""
    original = list(result.results)
    results = list(original)
    for model in models:
        for i, (circ, r) in enumerate(zip(circuits, results, strict=True)):
            width = _width(r, circ)
            if isinstance(model, BitFlips | Drift):
                p = model.p if isinstance(model, BitFlips) else model.p_at(job_index)
                positions = _measured_positions(circ, model.qubits)
                if r.counts:
                    new = replace(r, counts=_flip_counts(r.counts, positions, p, rng))
                else:
                    probs = _flip_probabilities(r.probabilities or {}, positions, p)
                    new = replace(r, probabilities=probs)
                results[i] = new
            elif isinstance(model, UniformCounts):
                results[i] = _uniform(r, width, rng)
            else:  # OtherCircuitCounts
                n = len(original)
                same_job = [
                    original[(i + d) % n]
                    for d in range(1, n)
                    if _width(original[(i + d) % n], circuits[(i + d) % n]) == width
                ]
                earlier = [h for h in history if _key_width(h) == width]
                sources = same_job or earlier
                if sources:
                    results[i] = _take_other(r, sources[0], rng)
    return replace(result, results=tuple(results))
