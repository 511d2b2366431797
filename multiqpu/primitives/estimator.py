"""``FleetEstimator``: Qiskit's ``BaseEstimatorV2`` over a multiqpu fleet.

Each PUB ``(circuit, observables, parameter_values, precision)`` broadcasts its observables
against its parameter bindings as Qiskit specifies. For every binding, the Pauli terms of
all observables paired with it are packed into as few measurement bases as possible
(:mod:`multiqpu.primitives._pauli`); all measurement circuits of all PUBs of one ``run`` go
to the fleet in a single batch, so the scheduler spreads them over the devices.

Precision: ``precision > 0`` runs ``ceil(1 / precision**2)`` shots per measurement circuit
(the rule of Qiskit's ``BackendEstimatorV2``); ``precision == 0`` asks for exact values,
which need an exact simulator in the fleet. ``stds`` are the standard errors of the
estimates, computed from the shots (covariances of terms read from the same shots
included); they are 0 for exact values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from qiskit.primitives import BaseEstimatorV2
from qiskit.primitives.containers import DataBin, PrimitiveResult, PubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub, EstimatorPubLike
from qiskit.primitives.primitive_job import PrimitiveJob

from multiqpu.errors import InvalidInputError
from multiqpu.primitives._dispatch import FleetLike, as_fleet, run_sync, sample
from multiqpu.primitives._pauli import (
    Basis,
    Term,
    estimate,
    measurement_circuit,
    merge_bases,
    terms_of,
)

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["FleetEstimator"]

#: Qiskit's BackendEstimatorV2 default (4096 shots per circuit).
DEFAULT_PRECISION = 0.015625


class FleetEstimator(BaseEstimatorV2):
    """Estimate expectation values on a fleet.

    Args:
        fleet: a :class:`~multiqpu.Fleet` (or anything ``fleet=`` accepts elsewhere:
            devices, specs, ``"ideal"``, ``"default"``).
        default_precision: used when neither ``run`` nor the PUB gives a precision;
            0 means exact.
        policy: the scheduler's placement policy (``"balanced"``, ``"fastest"``,
            ``"most_accurate"``, ``"cheapest"``).
    """

    def __init__(
        self,
        fleet: FleetLike = None,
        *,
        default_precision: float = DEFAULT_PRECISION,
        policy: str = "balanced",
    ) -> None:
        if default_precision < 0:
            raise InvalidInputError(f"precision must be >= 0, got {default_precision}")
        self._fleet = as_fleet(fleet, default="default")
        self._default_precision = float(default_precision)
        self._policy = policy

    @property
    def fleet(self) -> Any:
        return self._fleet

    @property
    def default_precision(self) -> float:
        return self._default_precision

    def run(
        self, pubs: Iterable[EstimatorPubLike], *, precision: float | None = None
    ) -> PrimitiveJob[PrimitiveResult[PubResult]]:
        if precision is None:
            precision = self._default_precision
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        for pub in coerced:
            if pub.precision is not None and pub.precision < 0:
                raise InvalidInputError(f"precision must be >= 0, got {pub.precision}")
        job: PrimitiveJob[PrimitiveResult[PubResult]] = PrimitiveJob(self._run, coerced)
        job._submit()
        return job

    # ------------------------------------------------------------------ execution
    def _run(self, pubs: list[EstimatorPub]) -> PrimitiveResult[PubResult]:
        return run_sync(self.arun(pubs))

    async def arun(self, pubs: list[EstimatorPub]) -> PrimitiveResult[PubResult]:
        """The async body of :meth:`run` (for callers already in an event loop)."""
        plans = [_PubPlan(pub, self._default_precision) for pub in pubs]
        circuits: list[QuantumCircuit] = []
        shots: list[int | None] = []
        for plan in plans:
            plan.offset = len(circuits)
            circuits.extend(plan.circuits)
            shots.extend([plan.shots] * len(plan.circuits))
        results = await sample(self._fleet, circuits, shots, policy=self._policy)
        out = []
        for plan in plans:
            mine = results[plan.offset : plan.offset + len(plan.circuits)]
            out.append(plan.finish([s.result for s in mine], [s.device for s in mine]))
        return PrimitiveResult(out, metadata={"version": 2})


class _PubPlan:
    """The measurement circuits of one PUB and how to turn their results into evs/stds."""

    def __init__(self, pub: EstimatorPub, default_precision: float) -> None:
        self.pub = pub
        self.offset = 0
        precision = default_precision if pub.precision is None else pub.precision
        self.precision = float(precision)
        self.shots: int | None = None if precision == 0 else math.ceil(1.0 / precision**2)
        circuit = pub.circuit
        n = circuit.num_qubits
        bound = pub.parameter_values.bind_all(circuit)  # object array, bindings shape
        self.shape = np.broadcast_shapes(bound.shape, pub.observables.shape)
        b_index, o_index = np.broadcast_arrays(
            np.arange(bound.size).reshape(bound.shape),
            np.arange(pub.observables.size).reshape(pub.observables.shape),
        )
        flat_obs = pub.observables.ravel()
        flat_bound = bound.ravel()
        # Per element of the broadcast shape: (binding, constant, [(term, ...)]).
        self.elements: list[tuple[int, float, list[Term]]] = []
        per_binding: dict[int, list[Term]] = {}
        for idx in np.ndindex(*self.shape):
            b, o = int(b_index[idx]), int(o_index[idx])
            constant, terms = terms_of(flat_obs[o], n)
            self.elements.append((b, constant, terms))
            per_binding.setdefault(b, []).extend(terms)
        self.circuits: list[QuantumCircuit] = []
        # binding -> (bases, circuit index of each basis)
        self.bases: dict[int, tuple[list[Basis], list[int]]] = {}
        for b, terms in per_binding.items():
            unique = list(dict.fromkeys(terms))
            bases, _ = merge_bases(unique)
            first = len(self.circuits)
            for basis in bases:
                self.circuits.append(measurement_circuit(flat_bound[b], basis))
            self.bases[b] = (bases, list(range(first, first + len(bases))))

    def finish(self, results: list[Any], devices: list[str]) -> PubResult:
        evs = np.zeros(len(self.elements))
        variances = np.zeros(len(self.elements))
        for k, (b, constant, terms) in enumerate(self.elements):
            value, variance = constant, 0.0
            if terms:
                bases, circuit_ids = self.bases[b]
                by_basis: dict[int, list[Term]] = {}
                for term in terms:
                    j = next(i for i, basis in enumerate(bases) if _covers(basis, term))
                    by_basis.setdefault(j, []).append(term)
                for j, mine in by_basis.items():
                    est = estimate(results[circuit_ids[j]], bases[j], mine)
                    value += est.value
                    variance += est.variance
            evs[k] = value
            variances[k] = variance
        shape = tuple(self.shape)
        data = DataBin(evs=evs.reshape(shape), stds=np.sqrt(variances).reshape(shape), shape=shape)
        share: dict[str, int] = {}
        for d in devices:
            share[d] = share.get(d, 0) + 1
        return PubResult(
            data,
            metadata={
                "target_precision": self.precision,
                "shots": self.shots,
                "circuit_metadata": self.pub.circuit.metadata,
                "num_circuits": len(self.circuits),
                "devices": share,
            },
        )


def _covers(basis: Basis, term: Term) -> bool:
    return all(p == 0 or basis[q] == p for q, p in enumerate(term.paulis))
