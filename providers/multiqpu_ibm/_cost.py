"""What a job would cost on IBM Quantum, and how long it would wait.

IBM bills QPU time ("quantum usage"). We model it as

    usage = shots x (circuit duration + repetition delay) summed over circuits + per-job overhead

with the circuit duration the critical path of the transpiled circuit under the calibrated gate
and readout durations. The price is IBM's pay-as-you-go list price.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from multiqpu.provider_api import CostEstimate

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.provider_api import Calibration

__all__ = [
    "JOB_OVERHEAD_S",
    "PRICE_DATE",
    "REP_DELAY_S",
    "TYPICAL_JOB_S",
    "USD_PER_QPU_SECOND",
    "circuit_duration",
    "estimate",
]

#: IBM Quantum Platform pay-as-you-go plan: USD 96 per minute of QPU time = 1.60 per second
#: (list price published on ibm.com/quantum/pricing; recorded for multiqpu in 2025).
USD_PER_QPU_SECOND = 96.0 / 60.0
PRICE_DATE = "2025"
#: Default repetition delay between shots on IBM backends (``default_rep_delay`` = 250 us).
REP_DELAY_S = 250e-6
#: Fixed per-job QPU time (loading, compilation on the control system); an assumption.
JOB_OVERHEAD_S = 2.0
#: Typical QPU time of one job in the queue ahead of yours, for queue-wait estimates.
TYPICAL_JOB_S = 10.0

_FALLBACK_1Q_S = 50e-9
_FALLBACK_2Q_S = 500e-9
_FALLBACK_MEASURE_S = 2e-6
_ZERO_TIME = frozenset({"rz", "barrier", "global_phase", "id_virtual"})


def circuit_duration(circuit: QuantumCircuit, calibration: Calibration) -> float:
    """Critical-path duration (seconds) of an ISA circuit, qubit ``i`` = physical qubit ``i``."""
    ready = [0.0] * circuit.num_qubits
    for inst in circuit.data:
        name = inst.operation.name
        qubits = tuple(circuit.find_bit(q).index for q in inst.qubits)
        if not qubits:
            continue
        start = max(ready[q] for q in qubits)
        if name == "barrier":
            for q in qubits:
                ready[q] = start
            continue
        if name in _ZERO_TIME:
            continue
        d = calibration.duration(name, qubits)
        if d is None:
            if name == "measure":
                d = _FALLBACK_MEASURE_S
            elif name == "delay":
                d = float(getattr(inst.operation, "duration", 0) or 0) * 1e-9
            else:
                d = _FALLBACK_1Q_S if len(qubits) == 1 else _FALLBACK_2Q_S
        for q in qubits:
            ready[q] = start + d
    return max(ready, default=0.0)


def estimate(
    isa_circuits: Sequence[QuantumCircuit],
    shots: int,
    calibration: Calibration,
    *,
    max_circuits_per_job: int,
    rep_delay_s: float = REP_DELAY_S,
) -> CostEstimate:
    """Price of running every circuit ``shots`` times on a real IBM backend."""
    jobs = max(1, math.ceil(len(isa_circuits) / max(1, max_circuits_per_job)))
    shot_seconds = sum(
        shots * (circuit_duration(c, calibration) + rep_delay_s) for c in isa_circuits
    )
    total_shots = shots * len(isa_circuits)
    per_task = JOB_OVERHEAD_S * USD_PER_QPU_SECOND
    total = jobs * per_task + shot_seconds * USD_PER_QPU_SECOND
    return CostEstimate(
        total_usd=total,
        per_task_usd=per_task,
        per_shot_usd=(shot_seconds * USD_PER_QPU_SECOND / total_shots) if total_shots else 0.0,
        tasks=jobs,
        shots=total_shots,
        source=(
            f"model: IBM pay-as-you-go USD {USD_PER_QPU_SECOND:.2f}/QPU-second ({PRICE_DATE}), "
            f"{rep_delay_s * 1e6:.0f} us repetition delay, {JOB_OVERHEAD_S:.0f} s per job"
        ),
    )


def simulation_cost(num_circuits: int, shots: int) -> CostEstimate:
    """Fake backends are simulations: free."""
    return CostEstimate(
        total_usd=0.0,
        tasks=1 if num_circuits else 0,
        shots=shots * num_circuits,
        source="free: local simulation of an IBM fake backend",
    )
