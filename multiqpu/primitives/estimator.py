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

Mitigation: ``FleetEstimator(fleet, mitigation=[multiqpu.Readout(), multiqpu.ZNE()])`` runs
the measurement circuits through :func:`multiqpu.mitigation.sample`, so each circuit is
corrected on the device that ran it before any combination; ``evs`` are the mitigated values
and ``stds`` their propagated standard errors (shot noise, readout-calibration error,
extrapolation; terms of one observable summed linearly, an upper bound: see
:mod:`multiqpu.primitives._mitigated`). ``evs_unmitigated``/``stds_unmitigated`` hold the
plain estimates from the same (scale-1) shots, and the result's metadata the
:class:`~multiqpu.mitigation.MitigationReport`. Exact values (precision 0) are refused.
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

from multiqpu._sync import run_sync
from multiqpu.errors import InvalidInputError
from multiqpu.placement import Placement, check_width, resolve_placement, restrict_pool
from multiqpu.pool import DevicePool, PoolLike, as_pool
from multiqpu.primitives._dispatch import Sampled, sample
from multiqpu.primitives._mitigated import check_spec, parity_sum, run_mitigated, shots_needed
from multiqpu.primitives._pauli import (
    Basis,
    Estimate,
    Term,
    estimate,
    measured_qubits,
    measurement_circuit,
    merge_bases,
    term_masks,
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
        mitigation: ``multiqpu.Readout()``, ``multiqpu.ZNE(...)``, ``multiqpu.PauliTwirl()``
            or a list of them: every measurement circuit corrected on the device that ran it
            (see docs/mitigation.md). Needs shots (precision > 0).
        placement: a data placement rule (a :class:`multiqpu.Placement` or a config rule's
            name): every circuit of every ``run`` (measurement bases, mitigation's
            calibration and folded circuits) goes only to the devices it allows; a rule
            that allows no device, or a circuit wider than every allowed device, is refused
            with a :class:`multiqpu.PlacementError` before anything is submitted
            (docs/trust.md).
    """

    def __init__(
        self,
        fleet: PoolLike = None,
        *,
        default_precision: float = DEFAULT_PRECISION,
        policy: str = "balanced",
        mitigation: Any = None,
        placement: Placement | str | None = None,
    ) -> None:
        if default_precision < 0:
            raise InvalidInputError(f"precision must be >= 0, got {default_precision}")
        self._mitigation = check_spec(mitigation)
        self._placement = resolve_placement(placement)
        self._pool = restrict_pool(as_pool(fleet, default="default"), self._placement)
        self._default_precision = float(default_precision)
        self._policy = policy

    @property
    def pool(self) -> DevicePool:
        """The :class:`~multiqpu.pool.DevicePool` this primitive runs on."""
        return self._pool

    @property
    def default_precision(self) -> float:
        return self._default_precision

    @property
    def mitigation(self) -> Any:
        """The resolved :class:`~multiqpu.mitigation.MitigationSpec`, or None."""
        return self._mitigation

    def run(
        self, pubs: Iterable[EstimatorPubLike], *, precision: float | None = None
    ) -> PrimitiveJob[PrimitiveResult[PubResult]]:
        if precision is None:
            precision = self._default_precision
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        for pub in coerced:
            if pub.precision is not None and pub.precision < 0:
                raise InvalidInputError(f"precision must be >= 0, got {pub.precision}")
        if self._placement is not None:  # refused here, before anything is submitted
            check_width(self._placement, self._pool.devices, [p.circuit for p in coerced])
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
        if self._mitigation is not None:
            return await self._arun_mitigated(plans, circuits, shots)
        results = await sample(self._pool, circuits, shots, policy=self._policy)
        out = []
        for plan in plans:
            mine = results[plan.offset : plan.offset + len(plan.circuits)]
            out.append(plan.finish(list(mine), [s.device for s in mine]))
        return PrimitiveResult(out, metadata={"version": 2})

    async def _arun_mitigated(
        self, plans: list[_PubPlan], circuits: list[QuantumCircuit], shots: list[int | None]
    ) -> PrimitiveResult[PubResult]:
        assert self._mitigation is not None
        counts = shots_needed(shots, "precision 0")
        if not circuits:
            return PrimitiveResult([p.finish([], []) for p in plans], metadata={"version": 2})
        mitigated = await run_mitigated(self._pool, circuits, counts, self._mitigation,
                                        self._policy)  # fmt: skip
        out = []
        for plan in plans:
            mine = list(mitigated.circuits[plan.offset : plan.offset + len(plan.circuits)])
            out.append(plan.finish_mitigated(mine, self._mitigation.describe()))
        return PrimitiveResult(out, metadata={"version": 2, "mitigation": mitigated.report})


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

    def _grouped(self, b: int, terms: list[Term]) -> dict[int, list[Term]]:
        """This binding's terms by the index of the basis that measures them."""
        bases, _ = self.bases[b]
        by_basis: dict[int, list[Term]] = {}
        for term in terms:
            j = next(i for i, basis in enumerate(bases) if _covers(basis, term))
            by_basis.setdefault(j, []).append(term)
        return by_basis

    def finish_mitigated(self, items: list[Any], describe: str) -> PubResult:
        """evs/stds from mitigated results; the plain estimates alongside."""
        size = len(self.elements)
        evs, stds = np.zeros(size), np.zeros(size)
        raw_evs, raw_vars = np.zeros(size), np.zeros(size)
        for k, (b, constant, terms) in enumerate(self.elements):
            value, se, raw, raw_var = constant, 0.0, constant, 0.0
            if terms:
                bases, circuit_ids = self.bases[b]
                for j, mine in self._grouped(b, terms).items():
                    item = items[circuit_ids[j]]
                    width = len(measured_qubits(bases[j]))
                    offset = self.circuits[circuit_ids[j]].num_clbits - width
                    masks = term_masks(bases[j], mine)
                    v, s = parity_sum(item, [(int(m), t.coeff) for m, t in
                                             zip(masks, mine, strict=True)], offset)  # fmt: skip
                    value += v
                    se += s  # linear: terms of all bases may share one device's calibration
                    est = estimate(item.result, bases[j], mine)
                    raw += est.value
                    raw_var += est.variance
            evs[k], stds[k], raw_evs[k], raw_vars[k] = value, se, raw, raw_var
        shape = tuple(self.shape)
        data = DataBin(
            evs=evs.reshape(shape),
            stds=stds.reshape(shape),
            evs_unmitigated=raw_evs.reshape(shape),
            stds_unmitigated=np.sqrt(raw_vars).reshape(shape),
            shape=shape,
        )
        meta = self._metadata([it.device for it in items])
        meta["mitigation"] = describe
        return PubResult(data, metadata=meta)

    def _metadata(self, devices: list[str]) -> dict[str, Any]:
        share: dict[str, int] = {}
        for d in devices:
            share[d] = share.get(d, 0) + 1
        return {
            "target_precision": self.precision,
            "shots": self.shots,
            "circuit_metadata": self.pub.circuit.metadata,
            "num_circuits": len(self.circuits),
            "devices": share,
        }

    def finish(self, results: list[Sampled], devices: list[str]) -> PubResult:
        """evs/stds from the sampled results; a circuit whose shots ran on several devices
        is estimated per device and combined with inverse-variance weights."""
        spreads: list[dict[str, Any]] = []
        evs = np.zeros(len(self.elements))
        variances = np.zeros(len(self.elements))
        for k, (b, constant, terms) in enumerate(self.elements):
            value, variance = constant, 0.0
            if terms:
                bases, circuit_ids = self.bases[b]
                for j, mine in self._grouped(b, terms).items():
                    est = _estimate(results[circuit_ids[j]], bases[j], mine, spreads)
                    value += est.value
                    variance += est.variance
            evs[k] = value
            variances[k] = variance
        shape = tuple(self.shape)
        data = DataBin(evs=evs.reshape(shape), stds=np.sqrt(variances).reshape(shape), shape=shape)
        meta = self._metadata(devices)
        if spreads:
            meta["split_shots"] = spreads
        return PubResult(data, metadata=meta)


def _estimate(
    sampled: Sampled, basis: Basis, terms: list[Term], spreads: list[dict[str, Any]]
) -> Estimate:
    """The terms' estimate from one circuit's result; from each device's share, combined
    with inverse-variance weights, when its shots ran on several devices."""
    if not sampled.parts:
        return estimate(sampled.result, basis, terms)
    from multiqpu.pipeline._combine import combine

    ests = [estimate(p.result, basis, terms) for p in sampled.parts]
    c = combine([e.value for e in ests], [e.std for e in ests])
    spreads.append(
        {
            "devices": [p.device for p in sampled.parts],
            "values": [e.value for e in ests],
            "std_errors": [e.std for e in ests],
            "spread": c.spread,
            "p_value": c.p_value,
            "scale": c.scale,
        }
    )
    return Estimate(c.value, c.std_error**2)


def _covers(basis: Basis, term: Term) -> bool:
    return all(p == 0 or basis[q] == p for q, p in enumerate(term.paulis))
