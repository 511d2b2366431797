"""Simulated devices and workloads for the virtual clock (no Qiskit, no sleeping).

A :class:`SimDevice` is a QPU reduced to what scheduling sees: a noise profile (median errors
with a per-qubit spread, a topology), a timing model (per-shot time, per-layer time, per-job
overhead, and a hidden ``speed_bias`` between the published and the real figures), a queue
(a median wait with a daily cycle, a slowly drifting load, per-job jitter, and a reported
``pending_jobs`` count that is a poor predictor of the wait; optionally sessions, in which
only the first of our jobs queues), reliability (per-job failure
rate, outage windows, a time at which it is lost for good) and a price.

A :class:`SimCircuit` is a circuit reduced to its shape (qubits, layers, gate counts, shots,
how much long-range connectivity it needs). The estimated fidelity of a circuit on a device
is the product of (1 - error) over its operations on the device's best qubits and links,
with SWAPs added for the connectivity the topology lacks: the same quantity
:meth:`multiqpu.Calibration.estimated_fidelity` computes on a transpiled circuit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["SimCircuit", "SimDevice", "Workload"]

Topology = Literal["heavy_hex", "square", "all_to_all"]
_DAY_S = 86_400.0
# Extra two-qubit gates per long-range interaction (a SWAP is 3 CX) and extra layers.
_SWAP_2Q = {"heavy_hex": 3.0, "square": 2.0, "all_to_all": 0.0}
SESSION_LATENCY_S = 2.0  # a job sent into a live session: submission and loading


def _stable(name: str) -> int:
    return sum((i + 1) * ord(ch) for i, ch in enumerate(name)) % (2**31)


@dataclass(frozen=True)
class SimDevice:
    """A simulated QPU (see the module docstring). Times are seconds, errors probabilities."""

    name: str
    num_qubits: int = 127
    topology: Topology = "heavy_hex"
    error_1q: float = 3e-4
    error_2q: float = 5e-3
    readout_error: float = 1.5e-2
    error_spread: float = 0.5  # lognormal sigma of per-qubit/per-link errors around the median
    shot_s: float = 2.5e-4  # per shot: reset/repetition delay + readout (ions: cooling)
    layer_s: float = 1e-7  # per circuit layer (about one two-qubit gate time)
    overhead_s: float = 5.0  # per job: loading, compilation, result upload
    speed_bias: float = 1.0  # real / published execution time (hidden from the scheduler)
    median_wait_s: float = 600.0  # queue wait at average load
    wait_drift: float = 0.5  # sigma of the slowly drifting load (log scale, ~2 h memory)
    wait_jitter: float = 0.2  # sigma of per-job jitter (log scale)
    daily_amplitude: float = 0.5
    peak_hour_utc: float = 15.0
    others_job_s: float = 60.0  # mean length of other users' jobs: pending = wait / this
    pending_cap: int | None = None  # Braket reports '>4000'
    max_concurrent_jobs: int = 5
    max_circuits_per_job: int = 300
    failure_rate: float = 0.0  # per job, transient
    outages: tuple[tuple[float, float], ...] = ()  # virtual-time windows without progress
    lost_at: float | None = None  # the device goes away for good at this virtual time
    price_per_task: float = 0.0
    price_per_shot: float = 0.0
    # > 0: our jobs run in a session (IBM Session mode): the first waits in the queue; once
    # one starts, our jobs already queued and those sent while the session lives (a job of
    # ours running or ready there, or the last one ended less than this long ago) start
    # SESSION_LATENCY_S after they are sent, without queueing again
    session_ttl_s: float = 0.0

    # ------------------------------------------------------------------ noise
    def _sorted_errors(self, median: float, count: int, salt: str) -> np.ndarray:
        rng = np.random.default_rng(_stable(f"{self.name}/{salt}"))
        errs = median * np.exp(self.error_spread * rng.standard_normal(count))
        return np.sort(np.clip(errs, 0.0, 0.5))

    def fidelity(self, c: SimCircuit) -> float:
        """Estimated fidelity on the device's best ``c.qubits`` qubits (0 if it does not fit)."""
        if c.qubits > self.num_qubits:
            return 0.0
        ro = self._sorted_errors(self.readout_error, self.num_qubits, "ro")[: c.qubits]
        e1 = float(self._sorted_errors(self.error_1q, self.num_qubits, "1q")[: c.qubits].mean())
        links = max(c.qubits - 1, 1)
        e2 = float(self._sorted_errors(self.error_2q, 2 * self.num_qubits, "2q")[:links].mean())
        n2 = c.gates_2q * (1.0 + _SWAP_2Q[self.topology] * c.long_range)
        log_f = c.gates_1q * math.log1p(-e1) + n2 * math.log1p(-e2) + float(np.log1p(-ro).sum())
        return math.exp(log_f)

    # ------------------------------------------------------------------ time
    def raw_seconds(self, c: SimCircuit) -> float:
        """Published execution time of one circuit: shots x (per-shot + layers x layer)."""
        layers = c.layers * (1.0 + _SWAP_2Q[self.topology] * c.long_range)
        return c.shots * (self.shot_s + layers * self.layer_s)

    def price(self, c: SimCircuit) -> float:
        return self.price_per_task + self.price_per_shot * c.shots

    # ------------------------------------------------------------------ queue
    def load(self, t: float, epoch_s: float = 0.0) -> float:
        hour = ((epoch_s + t) % _DAY_S) / 3600.0
        return 1.0 + self.daily_amplitude * math.cos(2 * math.pi * (hour - self.peak_hour_utc) / 24)

    def outage_end(self, t: float) -> float:
        """``t``, or the end of the outage window containing it."""
        for a, b in self.outages:
            if a <= t < b:
                return b
        return t


@dataclass(frozen=True)
class SimCircuit:
    """A circuit's shape: what placement needs to know about it."""

    qubits: int
    layers: int
    gates_1q: int
    gates_2q: int
    shots: int = 4000
    long_range: float = 0.0  # fraction of 2q gates between qubits not adjacent on a line
    name: str = ""


@dataclass(frozen=True)
class Workload:
    """``n`` circuits drawn i.i.d. from ``circuits`` with probabilities ``weights``."""

    circuits: tuple[SimCircuit, ...]
    weights: tuple[float, ...]
    n: int

    @classmethod
    def mixed(cls, n: int, *, seed: int = 7, shots: int = 4000, kinds: int = 24) -> Workload:
        """A mix like cut-circuit fragments and data shards: 2-12 qubits, shallow to
        moderately deep, some with long-range interactions; ``kinds`` distinct shapes."""
        rng = np.random.default_rng(seed)
        circuits = []
        for i in range(kinds):
            q = int(rng.integers(2, 13))
            layers = int(rng.integers(4, 41))
            density = float(rng.uniform(0.2, 0.6))  # 2q gates per qubit per layer
            g2 = max(1, round(layers * q * density / 2))
            g1 = round(layers * q * 0.8)
            lr = float(rng.choice([0.0, 0.0, 0.1, 0.3]))
            circuits.append(SimCircuit(q, layers, g1, g2, shots, lr, name=f"c{i}"))
        weights = rng.dirichlet(np.full(kinds, 2.0))
        return cls(tuple(circuits), tuple(float(w) for w in weights), n)

    def probabilities(self) -> np.ndarray:
        w = np.asarray(self.weights, dtype=float)
        return w / w.sum()


def fleet_arrays(devices: Sequence[SimDevice], workload: Workload) -> dict[str, np.ndarray]:
    """Per (circuit kind, device) tables: fits, fidelity, raw seconds, price."""
    cs = workload.circuits
    fits = np.array([[c.qubits <= d.num_qubits for d in devices] for c in cs])
    fid = np.array([[d.fidelity(c) for d in devices] for c in cs])
    raw = np.array([[d.raw_seconds(c) for d in devices] for c in cs])
    price = np.array([[d.price(c) for d in devices] for c in cs])
    shots = np.array([c.shots for c in cs])
    return {"fits": fits, "fidelity": fid, "raw_s": raw, "price": price, "shots": shots}
