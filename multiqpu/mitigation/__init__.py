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

Entry points: ``fleet.estimate(..., mitigation=[...])`` (:func:`estimate`) and
``fleet.sample(..., mitigation=[...])`` (:func:`sample`). See docs/mitigation.md.

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
    fleet: Any, circuit: QuantumCircuit, observables: Any, *, mitigation: Any, **options: Any
) -> MitigatedEstimate:
    """Mitigated expectation values (cut or not); see :mod:`multiqpu.mitigation._estimate`."""
    from multiqpu.mitigation._estimate import estimate as _estimate

    return await _estimate(fleet, circuit, observables, mitigation=mitigation, **options)


async def sample(fleet: Any, circuits: Any, *, mitigation: Any, **options: Any) -> MitigatedSample:
    """Mitigated per-circuit results; see :mod:`multiqpu.mitigation._sample`."""
    from multiqpu.mitigation._sample import sample as _sample

    return await _sample(fleet, circuits, mitigation=mitigation, **options)
