"""Simulated fleets for the virtual clock, built from published device figures.

:func:`reference_fleet` is the 10-device fleet of the scheduler benchmark; :func:`random_fleet`
draws any number of devices from the same archetypes for "what if" questions. Archetype
figures are medians from vendors' public device pages (2024-2025) rounded: IBM Heron r2
(156 qubits, CZ ~3e-3, readout ~1.2e-2, CZ 68 ns, 250 us repetition delay), Heron r1 (133,
CZ ~4e-3, readout ~2.5e-2), Eagle r3 (127, ECR ~7.5e-3, readout ~1.3e-2, ECR 660 ns); IQM
Garnet (20, square lattice, CZ ~5e-3, readout ~2.5e-2), Rigetti Ankaa-3 (84, square,
two-qubit ~7e-3, readout ~5e-2), IonQ Forte (36, all-to-all, two-qubit ~4e-3, readout
~5e-3, tens of milliseconds per shot). Braket devices run one circuit per task with a per-task
fee; IQM and Rigetti batch up to 100 circuits per task (Braket program sets), IonQ runs one.
Queue medians, load drift, speed bias and reporting bias are drawn from stated
distributions (see docs/scheduler.md), not picked per device.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from multiqpu.scheduler._simfleet import SimDevice

__all__ = ["ARCHETYPES", "random_fleet", "reference_fleet"]

ARCHETYPES: dict[str, SimDevice] = {
    "heron_r2": SimDevice(
        "heron_r2",
        156,
        "heavy_hex",
        2.5e-4,
        3e-3,
        1.2e-2,
        shot_s=2.6e-4,
        layer_s=7e-8,
        overhead_s=8.0,
    ),
    "heron_r1": SimDevice(
        "heron_r1",
        133,
        "heavy_hex",
        3e-4,
        4e-3,
        2.5e-2,
        shot_s=2.6e-4,
        layer_s=8.4e-8,
        overhead_s=8.0,
    ),
    "eagle_r3": SimDevice(
        "eagle_r3",
        127,
        "heavy_hex",
        2.5e-4,
        7.5e-3,
        1.3e-2,
        shot_s=2.6e-4,
        layer_s=6.6e-7,
        overhead_s=8.0,
    ),
    "garnet": SimDevice(
        "garnet",
        20,
        "square",
        1e-3,
        5e-3,
        2.5e-2,
        shot_s=4e-4,
        layer_s=4e-8,
        overhead_s=4.0,
        max_concurrent_jobs=10,
        max_circuits_per_job=100,
        price_per_task=0.3,
        price_per_shot=0.00145,
    ),
    "ankaa3": SimDevice(
        "ankaa3",
        84,
        "square",
        1e-3,
        7e-3,
        5e-2,
        shot_s=2e-4,
        layer_s=7e-8,
        overhead_s=4.0,
        max_concurrent_jobs=10,
        max_circuits_per_job=100,
        price_per_task=0.3,
        price_per_shot=0.0009,
    ),
    "forte": SimDevice(
        "forte",
        36,
        "all_to_all",
        2e-4,
        4e-3,
        5e-3,
        shot_s=2e-2,
        layer_s=6e-4,
        overhead_s=20.0,
        max_concurrent_jobs=50,
        max_circuits_per_job=1,
        price_per_task=0.3,
        price_per_shot=0.08,
    ),
}

# Archetype proportions of random_fleet: what one organisation might reach through IBM and
# Braket, an ion trap included.
_MIX = (
    "heron_r2",
    "heron_r2",
    "heron_r2",
    "heron_r1",
    "heron_r1",
    "eagle_r3",
    "eagle_r3",
    "garnet",
    "ankaa3",
    "forte",
)

# The benchmark fleet: the same without the IonQ Forte and with a fourth Heron r2. The
# benchmark's job (2,000 circuits x 10,000 shots) would cost about $800 a circuit on Forte
# ($0.08 a shot) and take 200 s a circuit there: ``most_accurate``, which sends every circuit
# its best device, would spend ~$1.2M and ~6 days on it. Nobody assembles that fleet for that
# job; IBM runs many Heron r2 systems, so a fourth one is what such a user would add.
_REFERENCE = tuple("heron_r2" if kind == "forte" else kind for kind in _MIX)


# Queue tiers of multiqpu.queue_model (the embedded default fleet's simulated queues):
# (median wait at average load in seconds, mean pending jobs at average load).
TIERS: dict[str, tuple[float, float]] = {
    "idle": (20.0, 2.0),
    "moderate": (240.0, 40.0),
    "busy": (900.0, 250.0),
    "very_busy": (2700.0, 1200.0),
}


# IBM devices run our jobs in a Session (qiskit-ibm-runtime Session mode, paid plans): the
# first job queues, later ones are prioritised while the session is active. The TTL after the
# last job is our assumption (IBM calls it the interactive timeout); the IBM adapter makes
# the same one (multiqpu_ibm._device.SESSION_TTL_S: the core never imports an adapter).
IBM_SESSION_TTL_S = 60.0


def _draw(archetype: str, name: str, rng: np.random.Generator) -> SimDevice:
    base = ARCHETYPES[archetype]
    ion = base.topology == "all_to_all"
    braket = base.topology != "heavy_hex"
    tier = "very_busy" if ion else str(rng.choice(list(TIERS)))
    wait, pending = TIERS[tier]
    jitter = float(np.exp(rng.normal(0.0, 0.3)))
    return replace(
        base,
        name=name,
        median_wait_s=wait * jitter,
        wait_drift=float(rng.uniform(0.3, 0.7)),
        wait_jitter=float(rng.uniform(0.15, 0.35)),
        daily_amplitude=float(rng.uniform(0.3, 0.7)),
        peak_hour_utc=float(rng.uniform(13.0, 19.0)),
        # seconds of wait per reported pending job: the tier's ratio, off by ~1.6x either way
        others_job_s=float(wait / pending * np.exp(rng.normal(0.0, 0.5))),
        pending_cap=4000 if braket else None,
        # real vs published speed
        speed_bias=float(np.exp(rng.normal(0.0, 0.25))),
        overhead_s=float(base.overhead_s * np.exp(rng.normal(0.0, 0.3))),
        failure_rate=float(rng.uniform(0.0, 0.02)),
        session_ttl_s=0.0 if braket else IBM_SESSION_TTL_S,
    )


def reference_fleet(seed: int = 2024) -> list[SimDevice]:
    """The benchmark's 10 devices: 4 Heron r2, 2 Heron r1, 2 Eagle r3, an IQM Garnet and a
    Rigetti Ankaa-3, with queues and biases drawn from ``seed`` (no IonQ Forte: see
    ``_REFERENCE``; :func:`random_fleet` still draws it)."""
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    out = []
    for arch in _REFERENCE:
        counts[arch] = counts.get(arch, 0) + 1
        out.append(_draw(arch, f"{arch}_{counts[arch]}", rng))
    return out


def random_fleet(n: int, seed: int = 0) -> list[SimDevice]:
    """``n`` devices drawn from the archetypes (3 Heron r2 : 2 Heron r1 : 2 Eagle r3 : 1
    Garnet : 1 Ankaa-3 : 1 Forte)."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(np.array(_MIX), size=n)
    return [_draw(str(k), f"{k}_{i}", rng) for i, k in enumerate(kinds)]
