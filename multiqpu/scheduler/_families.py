"""Families of simulated fleets and workloads: one scenario per seed, drawn from wide ranges.

The reference fleet (``_fleets.reference_fleet``) is one fleet; a user's fleet is another
one every week. :func:`family_scenario` draws a whole scenario from a seed, so that a
benchmark can report distributions over fleets the scheduler was never tuned for
(``tests/benchmarks/scheduler_families.py``; the ranges are documented in
docs/scheduler.md, "Families of fleets"):

* **devices**: 3 to 20, each one of three kinds: superconducting (60 %: the IBM Heron r2 /
  Heron r1 / Eagle r3, IQM Garnet and Rigetti Ankaa-3 archetypes of ``_fleets``), trapped-ion
  (20 %: IonQ Forte, 10-40 ms a shot) or neutral-atom (20 %: ``NEUTRAL_ATOM``, 0.1-1 s a
  shot, one circuit a task);
* **queues**: a median wait log-uniform from 10 s to 8 h, per-job log jitter uniform in
  [0, 1.5], drift 0.2-0.8, a daily cycle; half the IBM-like devices run our jobs in
  sessions; the reported pending-job count is off by a log-normal factor (sigma 0.7);
* **hidden speed bias** (real / published execution time) log-uniform in [0.5, 2.5];
  per-job overhead x0.5-2 of the archetype's;
* **faults**: per device a transient failure rate uniform in [0, 0.2] (a quarter of the
  devices: 0); with probability 0.3 an outage window of 10 min to 3 h starting in the first
  4 h; with probability 0.15 the device is lost for good 5 min to 3 h into the run (never
  every device: the first device is never lost);
* **workload**: 200 to 10,000 circuits (log-uniform), 4 to 24 circuit shapes of 2 to 30
  qubits, 4 to 60 layers, some with long-range interactions, each shape with its own
  shots, log-uniform from 100 to 100,000.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from multiqpu.scheduler._fleets import ARCHETYPES
from multiqpu.scheduler._simfleet import SimCircuit, SimDevice, Workload

__all__ = ["NEUTRAL_ATOM", "Scenario", "family_scenario"]

# A gate-based neutral-atom machine, rounded from public figures (QuEra / Pasqal / Atom
# Computing class): ~100 usable qubits, reconfigurable (all-to-all) connectivity, CZ ~5e-3,
# readout ~2e-2, a few shots a second, one circuit a task on Braket ($0.30 + $0.01 a shot).
NEUTRAL_ATOM = SimDevice(
    "neutral_atom",
    100,
    "all_to_all",
    1e-3,
    5e-3,
    2e-2,
    shot_s=0.3,
    layer_s=2e-4,
    overhead_s=30.0,
    max_concurrent_jobs=10,
    max_circuits_per_job=1,
    price_per_task=0.3,
    price_per_shot=0.01,
)

_SUPERCONDUCTING = ("heron_r2", "heron_r1", "eagle_r3", "garnet", "ankaa3")
_HOUR = 3600.0


@dataclass(frozen=True)
class Scenario:
    """One drawn scenario: the fleet, the workload and what was drawn (for the report)."""

    seed: int
    fleet: tuple[SimDevice, ...]
    workload: Workload
    kinds: tuple[str, ...]  # "superconducting" / "trapped_ion" / "neutral_atom" per device


def _device(kind: str, i: int, rng: np.random.Generator) -> tuple[SimDevice, str]:
    if kind == "superconducting":
        arch = str(rng.choice(_SUPERCONDUCTING))
        base = ARCHETYPES[arch]
    elif kind == "trapped_ion":
        arch, base = "forte", ARCHETYPES["forte"]
        base = replace(base, shot_s=float(rng.uniform(0.01, 0.04)))
    else:
        arch, base = "neutral_atom", NEUTRAL_ATOM
        base = replace(base, shot_s=float(np.exp(rng.uniform(np.log(0.1), np.log(1.0)))))
    median = float(np.exp(rng.uniform(np.log(10.0), np.log(8 * _HOUR))))
    ibm = base.topology == "heavy_hex"
    others = float(np.exp(rng.uniform(np.log(20.0), np.log(600.0))))
    outages: tuple[tuple[float, float], ...] = ()
    if rng.random() < 0.3:
        a = float(rng.uniform(0.0, 4 * _HOUR))
        outages = ((a, a + float(rng.uniform(600.0, 3 * _HOUR))),)
    lost = float(rng.uniform(300.0, 3 * _HOUR)) if i > 0 and rng.random() < 0.15 else None
    dev = replace(
        base,
        name=f"{arch}_{i}",
        median_wait_s=median,
        wait_drift=float(rng.uniform(0.2, 0.8)),
        wait_jitter=float(rng.uniform(0.0, 1.5)),
        daily_amplitude=float(rng.uniform(0.2, 0.7)),
        peak_hour_utc=float(rng.uniform(0.0, 24.0)),
        others_job_s=others * float(np.exp(rng.normal(0.0, 0.7))),
        pending_cap=None if ibm else 4000,
        speed_bias=float(np.exp(rng.uniform(np.log(0.5), np.log(2.5)))),
        overhead_s=float(base.overhead_s * np.exp(rng.uniform(np.log(0.5), np.log(2.0)))),
        failure_rate=0.0 if rng.random() < 0.25 else float(rng.uniform(0.0, 0.2)),
        outages=outages,
        lost_at=lost,
        session_ttl_s=60.0 if ibm and rng.random() < 0.5 else 0.0,
    )
    return dev, kind


def _workload(rng: np.random.Generator) -> Workload:
    n = int(np.exp(rng.uniform(np.log(200), np.log(10_000))))
    kinds = int(rng.integers(4, 25))
    circuits = []
    for k in range(kinds):
        q = int(rng.integers(2, 31))
        layers = int(rng.integers(4, 61))
        density = float(rng.uniform(0.2, 0.6))
        g2 = max(1, round(layers * q * density / 2))
        g1 = round(layers * q * 0.8)
        lr = float(rng.choice([0.0, 0.0, 0.1, 0.3]))
        shots = int(np.exp(rng.uniform(np.log(100), np.log(100_000))))
        circuits.append(SimCircuit(q, layers, g1, g2, shots, lr, name=f"k{k}"))
    weights = rng.dirichlet(np.full(kinds, 2.0))
    return Workload(tuple(circuits), tuple(float(w) for w in weights), n)


def family_scenario(seed: int) -> Scenario:
    """The scenario of ``seed`` (see the module docstring for the ranges)."""
    rng = np.random.default_rng([seed, 0x5CED])
    n = int(rng.integers(3, 21))
    kinds = rng.choice(
        np.array(["superconducting", "trapped_ion", "neutral_atom"]), size=n, p=[0.6, 0.2, 0.2]
    )
    drawn = [_device(str(k), i, rng) for i, k in enumerate(kinds)]
    workload = _workload(rng)
    # every circuit must fit some device that is never lost: the widest one fits device 0
    widest = max(c.qubits for c in workload.circuits)
    fleet = [d for d, _ in drawn]
    if fleet[0].num_qubits < widest:
        fleet[0] = replace(ARCHETYPES["heron_r2"], **_queue_fields(fleet[0]), name="heron_r2_0")
        drawn[0] = (fleet[0], "superconducting")
    return Scenario(seed, tuple(fleet), workload, tuple(k for _, k in drawn))


def _queue_fields(d: SimDevice) -> dict[str, Any]:
    names = (
        "median_wait_s",
        "wait_drift",
        "wait_jitter",
        "daily_amplitude",
        "peak_hour_utc",
        "others_job_s",
        "speed_bias",
        "failure_rate",
        "outages",
        "session_ttl_s",
    )
    return {k: getattr(d, k) for k in names}
