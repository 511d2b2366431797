"""The canary and quarantine keys of tests/benchmarks/trust.py (issue 11, points 1-3).

Device family (drawn per scenario): ``local:ideal`` and the IBM fake backends ``fake_torino``,
``fake_sherbrooke``, ``fake_kyiv``, ``fake_brisbane``, ``fake_manila`` (calibrated noise,
readout errors 1-5 %). Canaries: :func:`multiqpu._canary.make_canary`, width 2-5, 1-4
Clifford layers before the mirror (drawn), predicted by the device's own calibration
(:meth:`multiqpu.trust.Trust.predicted_failure`), tested by :class:`multiqpu.trust.CanaryTest`
with the defaults of :class:`multiqpu.trust.Trust` (alpha 1e-3, min_flip 0.03).

* ``detect_shots_p50``: a :class:`~multiqpu.testing.faults.FaultyDevice` around a device of
  the family flips each measured bit with p = 0.05 (``BitFlips(0.05)``); fresh canaries of 25
  shots run on it one after the other until the test flags it; the canary shots spent then
  (a run not flagged within 5,000 shots counts as 5,000).
* ``false_positive_rate``: honest device-runs, each 20 canaries of 100 shots (2,000 canary
  shots, a long run's worth) on a device of the family. Each (device, canary) pair's honest
  outcome is simulated once with 20,000 shots on the device (its calibrated noise model); the
  runs draw their canaries' failures binomially from those measured rates.
* ``canary_shot_overhead``: ``fleet.sample`` with ``trust=Trust()`` (default rate) on 2-5
  ``local:ideal`` devices, 40-400 random 2-4 qubit circuits, 100-4,000 shots each (drawn);
  canary shots / all shots, per run.
* ``corrupted_estimate_error_sigma``: ``fleet.estimate`` of a 5-qubit circuit (ry angles and a
  CX chain, drawn) on four 3-qubit ``local:ideal`` devices, so that it is cut; one of them is
  a FaultyDevice with ``BitFlips(0.05)``; observable ZZZZZ, 200,000 shots; |estimate -
  exact| / standard error with ``trust=Trust()`` and without.

Seeds: 0-4 were used while developing; the default run adds 100-109 (fresh; ``--quick``:
seed 0 and smaller counts).
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu
from multiqpu._canary import canary_failures, make_canary, predicted_fidelity
from multiqpu.testing.faults import BitFlips, FaultyDevice
from multiqpu.trust import CanaryTest, Trust

__all__ = ["DEV_SEEDS", "FRESH_SEEDS", "measure"]

DEV_SEEDS = (0, 1, 2, 3, 4)
FRESH_SEEDS = tuple(range(100, 110))
FAMILY = (
    "local:ideal",
    "ibm:fake_torino",
    "ibm:fake_sherbrooke",
    "ibm:fake_kyiv",
    "ibm:fake_brisbane",
    "ibm:fake_manila",
)
CAP = 5000  # canary shots after which a detection run gives up
_devices: dict[str, multiqpu.Device] = {}


def _device(spec: str) -> multiqpu.Device:
    if spec not in _devices:
        opts = {"num_qubits": 6} if spec == "local:ideal" else {}
        _devices[spec] = multiqpu.device(spec, seed=1, **opts)
    return _devices[spec]


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.median(a)), 4),
        "p90": round(float(np.quantile(a, 0.9)), 4),
        "max": round(float(a.max()), 4),
    }


# ----------------------------------------------------------------------------- detection
async def _detect(seed: int, trust: Trust) -> int | None:
    rng = np.random.default_rng([seed, 1])
    base = _device(FAMILY[int(rng.integers(len(FAMILY)))])
    width, layers = int(rng.integers(2, 6)), int(rng.integers(1, 5))
    liar = FaultyDevice(base, name="liar", corrupt=BitFlips(0.05), seed=seed)
    test = CanaryTest(alpha=trust.alpha, min_flip=trust.min_flip)
    while not test.flagged and test.shots < CAP:
        canary = make_canary(width, layers, rng)
        q0 = trust.predicted_failure(predicted_fidelity(base, canary.circuit))
        result = await liar.run([canary.circuit], 25)
        test.update(*canary_failures(result[0].counts, canary.expected), q0, width)
    return test.flagged_at_shots


# ----------------------------------------------------------------------------- false flags
async def _honest_rates(n_canaries: int, seed: int, trust: Trust) -> list[tuple[float, float, int]]:
    """(measured honest failure rate, predicted q0, width) per (device, canary)."""
    rng = np.random.default_rng([seed, 2])
    out = []
    for spec in FAMILY:
        device = _device(spec)
        for _ in range(n_canaries):
            width, layers = int(rng.integers(2, 6)), int(rng.integers(1, 5))
            canary = make_canary(width, layers, rng)
            q0 = trust.predicted_failure(predicted_fidelity(device, canary.circuit))
            result = await device.run([canary.circuit], 20_000)
            failures, shots = canary_failures(result[0].counts, canary.expected)
            out.append((failures / shots, q0, width))
    return out


def _false_flags(rates: list[tuple[float, float, int]], runs: int, seed: int, trust: Trust) -> int:
    rng = np.random.default_rng([seed, 3])
    per_device = len(rates) // len(FAMILY)
    flagged = 0
    for _ in range(runs):
        d = int(rng.integers(len(FAMILY)))
        mine = rates[d * per_device : (d + 1) * per_device]
        test = CanaryTest(alpha=trust.alpha, min_flip=trust.min_flip)
        for _ in range(20):
            q, q0, width = mine[int(rng.integers(len(mine)))]
            test.update(int(rng.binomial(100, q)), 100, q0, width)
        flagged += test.flagged
    return flagged


# ----------------------------------------------------------------------------- overhead
def _random_circuit(rng: np.random.Generator, width: int) -> QuantumCircuit:
    qc = QuantumCircuit(width)
    for q in range(width):
        qc.ry(float(rng.uniform(0, np.pi)), q)
    for q in range(width - 1):
        qc.cx(q, q + 1)
    qc.measure_all()
    return qc


async def _overhead(seed: int) -> float:
    rng = np.random.default_rng([seed, 4])
    n_dev = int(rng.integers(2, 6))
    fleet = multiqpu.Fleet(
        [
            multiqpu.device("local:ideal", num_qubits=4, seed=seed * 10 + i, label=f"o{i}")
            for i in range(n_dev)
        ]
    )
    n = int(rng.integers(40, 401))
    shots = int(rng.integers(100, 4001))
    circuits = [_random_circuit(rng, int(rng.integers(2, 5))) for _ in range(n)]
    res = await fleet.sample(circuits, shots=shots, trust=Trust(), journal=False)
    assert res.report.trust is not None
    return res.report.trust.overhead


# ----------------------------------------------------------------------------- cut estimate
async def _estimate_sigma(seed: int, trust: Trust | None) -> float:
    rng = np.random.default_rng([seed, 5])
    liar_at = int(rng.integers(4))
    devices: list[multiqpu.Device] = []
    for i in range(4):
        d = multiqpu.device("local:ideal", num_qubits=3, seed=seed * 10 + i, label=f"s{i}")
        if i == liar_at:
            d = FaultyDevice(d, name="liar", corrupt=BitFlips(0.05), seed=seed)
        devices.append(d)
    qc = QuantumCircuit(5)
    for q in range(5):
        qc.ry(float(rng.uniform(0.2, 1.2)), q)
    for q in range(4):
        qc.cx(q, q + 1)
    obs = SparsePauliOp("ZZZZZ")
    exact = float(Statevector(qc).expectation_value(obs).real)
    out = await multiqpu.Fleet(devices).estimate(qc, obs, shots=200_000, trust=trust, seed=seed)
    return abs(float(out.values[0]) - exact) / float(out.std_errors[0])


async def _measure(seeds: tuple[int, ...], quick: bool) -> dict[str, Any]:
    trust = Trust()
    detect_runs = [s * 100 + k for s in seeds for k in range(6 if quick else 5)]
    detected = [await _detect(s, trust) for s in detect_runs]
    # a run not flagged within the cap counts at the cap (a lower bound on its shots)
    shots = [float(CAP if d is None else d) for d in detected]
    rates: list[tuple[float, float, int]] = []
    for s in seeds[: 1 if quick else 3]:
        rates += await _honest_rates(4 if quick else 6, s, trust)
    per_seed = -(-(200 if quick else 1000) // len(seeds))  # at least 1,000 runs in all
    flags = sum(_false_flags(rates, per_seed, s, trust) for s in seeds)
    total_runs = per_seed * len(seeds)
    overhead = [await _overhead(s) for s in seeds]
    with_trust = [await _estimate_sigma(s, trust) for s in seeds]
    without = [await _estimate_sigma(s, None) for s in seeds]
    return {
        "detect_shots_p50": float(np.median(shots)),
        "detect_shots": {
            **_stats(shots),
            "runs": len(detect_runs),
            "not_flagged_within_cap": detected.count(None),
            "cap": CAP,
        },
        "false_positive_rate": round(flags / total_runs, 4),
        "false_positive_runs": total_runs,
        "honest_rate_over_prediction_max": round(max(q / q0 for q, q0, _ in rates), 3),
        "canary_shot_overhead": _stats(overhead)["max"],
        "canary_shot_overhead_dist": _stats(overhead),
        "corrupted_estimate_error_sigma": _stats(with_trust)["p90"],
        "corrupted_estimate_error_sigma_dist": _stats(with_trust),
        "corrupted_estimate_error_sigma_without_trust": _stats(without),
    }


def measure(seeds: tuple[int, ...], *, quick: bool = False) -> dict[str, Any]:
    return asyncio.run(_measure(seeds, quick))
