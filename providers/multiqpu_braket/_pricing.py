"""Amazon Braket prices (US dollars) and cost estimates.

QPU tasks cost a fixed fee per task plus a fee per shot. Figures are the list prices on
https://aws.amazon.com/braket/pricing/ as recorded in this project's field notes
(PRICES_AS_OF); prices change, so check the page before spending real money. Managed
simulators (SV1, DM1, TN1) bill per minute of simulation with a 3-second minimum per task,
so their cost cannot be known before running: we give that minimum as a lower bound. Local
simulators and the offline emulator are free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from multiqpu.provider_api import CostEstimate

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["PER_TASK_USD", "PRICES_AS_OF", "estimate", "per_shot_usd"]

PRICES_AS_OF = "2025-06"
PER_TASK_USD = 0.30
#: lower-case fragment of the device ARN -> price per shot
PER_SHOT_USD: dict[str, float] = {
    "ionq/forte": 0.08,
    "ionq/aria": 0.03,
    "iqm/garnet": 0.00145,
    "rigetti/ankaa": 0.0009,
}
#: managed simulators: price per minute
PER_MINUTE_USD: dict[str, float] = {"amazon/sv1": 0.075, "amazon/dm1": 0.075, "amazon/tn1": 0.275}
MIN_BILLED_S = 3.0


def per_shot_usd(arn: str) -> float | None:
    """The per-shot price of a QPU, or None if the table doesn't know it."""
    low = arn.lower()
    return next((p for key, p in PER_SHOT_USD.items() if key in low), None)


def estimate(arn: str, circuits: Sequence[QuantumCircuit], shots: int) -> CostEstimate:
    """Cost of running each circuit as one Braket task of ``shots`` shots on ``arn``."""
    tasks = len(circuits)
    low = arn.lower()
    minute = next((p for key, p in PER_MINUTE_USD.items() if key in low), None)
    if minute is not None:
        floor = tasks * minute * MIN_BILLED_S / 60.0
        return CostEstimate(
            total_usd=floor,
            tasks=tasks,
            shots=tasks * shots,
            source=f"aws list price {PRICES_AS_OF}: ${minute}/min, 3 s minimum per task "
            "(lower bound; billed by simulation time)",
        )
    shot = per_shot_usd(arn)
    source = f"aws list price {PRICES_AS_OF}"
    if shot is None:  # unknown QPU: assume the dearest known price (an upper bound)
        shot = max(PER_SHOT_USD.values())
        source = (
            f"unknown price for {arn}: assumed the highest known per-shot price "
            f"(${shot}); see aws.amazon.com/braket/pricing"
        )
    return CostEstimate(
        total_usd=tasks * (PER_TASK_USD + shot * shots),
        per_task_usd=PER_TASK_USD,
        per_shot_usd=shot,
        tasks=tasks,
        shots=tasks * shots,
        source=source,
    )


def free(circuits: Sequence[QuantumCircuit], shots: int, what: str) -> CostEstimate:
    return CostEstimate(
        total_usd=0.0, tasks=len(circuits), shots=len(circuits) * shots, source=f"free ({what})"
    )
