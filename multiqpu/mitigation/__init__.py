"""Error mitigation per device, before recombination.

Noisy devices give biased answers, each biased its own way; averaging or knitting raw
results from several devices mixes those biases. multiqpu corrects every shard's or
fragment's results with the calibration of the device that produced them, then recombines:

    request -> plan -> schedule -> execute -> mitigate (per device) -> recombine

Options (compose them in a list, order does not matter):

* :class:`Readout`: measurement-error correction with each device's readout calibration
  (M3's balanced calibration, run through the fleet on that device and cached by device,
  qubits and calibration fingerprint; or the device's calibration profile, spending no shots).
* :class:`ZNE`: zero-noise extrapolation by folding the two-qubit gates of the circuit as
  the device mapped it, with one fit per (circuit, device): scales from different devices
  never meet in one fit.
* :class:`PauliTwirl`: Pauli twirling of two-qubit gates.

Mitigation is a stage of the one pipeline (:mod:`multiqpu.pipeline`):
:class:`MitigationStage`. Entry points: ``fleet.estimate(..., mitigation=[...])``
(:func:`estimate`) and ``fleet.sample(..., mitigation=[...])`` (:func:`sample`), which take
a device pool, a fleet or a list of devices. See docs/mitigation.md.

Importing this package is cheap; numpy, Qiskit and mthree load when work starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multiqpu.mitigation._options import (
    ZNE,
    Mitigation,
    MitigationSpec,
    PauliTwirl,
    Readout,
    resolve,
)
from multiqpu.mitigation._results import (
    MitigatedCircuit,
    MitigatedEstimate,
    MitigatedSample,
    MitigationReport,
    Stage,
)
from multiqpu.mitigation._stage import MitigationStage
from multiqpu.mitigation._zne import (
    DeviceFit,
    Exponential,
    Extrapolator,
    FitResult,
    Polynomial,
    Richardson,
    fit_per_device,
)

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.pool import PoolLike

__all__ = [
    "DeviceFit",
    "Exponential",
    "Extrapolator",
    "FitResult",
    "MitigatedCircuit",
    "MitigatedEstimate",
    "MitigatedSample",
    "Mitigation",
    "MitigationReport",
    "MitigationSpec",
    "MitigationStage",
    "PauliTwirl",
    "Polynomial",
    "Readout",
    "Richardson",
    "Stage",
    "ZNE",
    "estimate",
    "fit_per_device",
    "resolve",
    "sample",
]


async def estimate(
    fleet: PoolLike, circuit: QuantumCircuit, observables: Any, *, mitigation: Any,
    **options: Any,
) -> MitigatedEstimate:  # fmt: skip
    """Mitigated expectation values (cut or not): :func:`multiqpu.pipeline.estimate` with
    the mitigation stage."""
    from multiqpu.pipeline import estimate as run

    return await run(fleet, circuit, observables, mitigation=resolve(mitigation), **options)  # type: ignore[return-value]


async def sample(
    fleet: PoolLike, circuits: Any, *, mitigation: Any, shots: Any = 1024,
    policy: str = "balanced", **options: Any,
) -> MitigatedSample:  # fmt: skip
    """Mitigated per-circuit results: :func:`multiqpu.pipeline.sample` with the mitigation
    stage."""
    from multiqpu.pipeline import sample as run

    return await run(fleet, circuits, shots, policy, mitigation=resolve(mitigation), **options)  # type: ignore[return-value]
