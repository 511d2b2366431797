"""``FleetSampler``: Qiskit's ``BaseSamplerV2`` over a multiqpu fleet.

Every PUB ``(circuit, parameter_values, shots)`` is bound for each of its parameter sets;
all bound circuits of one ``run`` go to the fleet in a single batch. The result of each PUB
holds one :class:`~qiskit.primitives.BitArray` per classical register, shaped like the PUB's
bindings, exactly as Qiskit's own samplers return them (so ``result[0].data.meas``,
``.get_counts()``, ``.get_bitstrings()`` and qiskit-addon-cutting's reconstruction work
unchanged). Devices return counts, not shot order, so the shots of each circuit are laid out
from its counts in a random order.

Shots split over several devices (``split_shots``, or a failover after a device was lost;
docs/shots.md) are laid out from their merged counts only when the devices' shares pass
the compatibility test, as ``fleet.sample`` offers merged counts: otherwise the run raises
:class:`~multiqpu.errors.IncompatibleResultsError` naming the PUB and binding. A PUB with
split circuits has ``metadata["split_shots"]``: per binding, each device's shots and counts
and the test's p-value. ``split_shots`` is an option of the sampler (default ``"auto"``:
spread only for ``policy="fastest"``, see docs/shots.md).

Mitigation does not apply here: a ``BitArray`` holds measured shots, and a readout-corrected
(or extrapolated) quasi-distribution is not a set of shots (its entries can be negative), so
no honest ``BitArray`` carries it. ``mitigation=`` is refused with an error that points to
``fleet.sample(..., mitigation=...)`` (per-circuit quasi-distributions and mitigated
parities) and to ``fleet.estimator(mitigation=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from qiskit.primitives import BaseSamplerV2
from qiskit.primitives.containers import BitArray, DataBin, PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers.sampler_pub import SamplerPub, SamplerPubLike
from qiskit.primitives.primitive_job import PrimitiveJob

from multiqpu._sync import run_sync
from multiqpu.errors import InvalidInputError
from multiqpu.placement import Placement, check_width, resolve_placement, restrict_pool
from multiqpu.pool import DevicePool, PoolLike, as_pool
from multiqpu.primitives._dispatch import sample
from multiqpu.scheduler._shots import SplitShots, check_split

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["FleetSampler"]


class FleetSampler(BaseSamplerV2):
    """Sample circuits on a fleet.

    Args:
        fleet: a :class:`~multiqpu.Fleet` (or devices, specs, ``"ideal"``, ``"default"``).
        default_shots: shots when neither ``run`` nor the PUB gives them.
        policy: the scheduler's placement policy.
        seed: seeds the order in which each circuit's shots are laid out.
        mitigation: refused (see the module's docstring); must be None.
        placement: a data placement rule (a :class:`multiqpu.Placement` or a config rule's
            name): every bound circuit goes only to the devices it allows; refused with a
            :class:`multiqpu.PlacementError` before anything is submitted when it cannot be
            met (docs/trust.md).
        split_shots: ``"auto"``, True or False: whether a circuit's shots may be spread
            over several devices (docs/shots.md).
    """

    def __init__(
        self,
        fleet: PoolLike = None,
        *,
        default_shots: int = 1024,
        policy: str = "balanced",
        seed: int | None = None,
        mitigation: Any = None,
        placement: Placement | str | None = None,
        split_shots: SplitShots = "auto",
    ) -> None:
        if mitigation is not None:
            raise InvalidInputError(
                "the sampler returns measured shots, and mitigated results are "
                "quasi-distributions, not shots: mitigation= does not apply to it. Use "
                "fleet.sample(circuits, mitigation=...) for corrected quasi-distributions, or "
                "fleet.estimator(mitigation=...) for mitigated expectation values"
            )
        if default_shots < 1:
            raise InvalidInputError(f"default_shots must be >= 1, got {default_shots}")
        self._placement = resolve_placement(placement)
        self._pool = restrict_pool(as_pool(fleet, default="default"), self._placement)
        self._default_shots = int(default_shots)
        self._policy = policy
        self._split = check_split(split_shots)
        self._rng = np.random.default_rng(seed)

    @property
    def pool(self) -> DevicePool:
        """The :class:`~multiqpu.pool.DevicePool` this primitive runs on."""
        return self._pool

    @property
    def default_shots(self) -> int:
        return self._default_shots

    def run(
        self, pubs: Iterable[SamplerPubLike], *, shots: int | None = None
    ) -> PrimitiveJob[PrimitiveResult[SamplerPubResult]]:
        if shots is None:
            shots = self._default_shots
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        if self._placement is not None:  # refused here, before anything is submitted
            check_width(self._placement, self._pool.devices, [p.circuit for p in coerced])
        job: PrimitiveJob[PrimitiveResult[SamplerPubResult]] = PrimitiveJob(self._run, coerced)
        job._submit()
        return job

    def _run(self, pubs: list[SamplerPub]) -> PrimitiveResult[SamplerPubResult]:
        return run_sync(self.arun(pubs))

    async def arun(self, pubs: list[SamplerPub]) -> PrimitiveResult[SamplerPubResult]:
        """The async body of :meth:`run` (for callers already in an event loop)."""
        circuits: list[QuantumCircuit] = []
        shots: list[int | None] = []
        spans: list[tuple[int, int, tuple[int, ...]]] = []
        for pub in pubs:
            bound = pub.parameter_values.bind_all(pub.circuit)
            start = len(circuits)
            if pub.circuit.num_clbits:  # nothing to read otherwise: an empty result
                circuits.extend(bound.ravel().tolist())
                shots.extend([pub.shots] * bound.size)
            spans.append((start, len(circuits), bound.shape))
        results = await sample(
            self._pool, circuits, shots, policy=self._policy, split_shots=self._split
        )
        out = []
        for p, (pub, (start, stop, shape)) in enumerate(zip(pubs, spans, strict=True)):
            mine = results[start:stop]
            # merged counts only where the devices' shares are compatible (else refused)
            counts = [s.counts(f"PUB {p}, binding {j}") for j, s in enumerate(mine)]
            split = [{"binding": j, **s.split_info()} for j, s in enumerate(mine) if s.parts]
            res = self._pub_result(pub, shape, counts, [s.device for s in mine])
            if split:
                res.metadata["split_shots"] = split
            out.append(res)
        return PrimitiveResult(out, metadata={"version": 2})

    def _pub_result(
        self,
        pub: SamplerPub,
        shape: tuple[int, ...],
        counts: list[Mapping[str, int]],
        devices: list[str],
    ) -> SamplerPubResult:
        circuit = pub.circuit
        shots = int(pub.shots or 0)
        registers: dict[str, np.ndarray] = {}
        if counts:
            # (circuits, shots, clbits) booleans, clbit index order.
            bits = np.stack([self._shots_from_counts(c, shots, circuit.num_clbits)
                             for c in counts])  # fmt: skip
            for creg in circuit.cregs:
                cols = [circuit.find_bit(b).index for b in creg]
                # BitArray wants the register's most significant bit first.
                block = bits[:, :, cols[::-1]].reshape(*shape, shots, len(cols))
                registers[creg.name] = block
        meas = {
            name: BitArray.from_bool_array(block, order="big") for name, block in registers.items()
        }
        share: dict[str, int] = {}
        for d in devices:
            share[d] = share.get(d, 0) + 1
        return SamplerPubResult(
            DataBin(**meas, shape=shape),
            metadata={"shots": shots, "circuit_metadata": circuit.metadata, "devices": share},
        )

    def _shots_from_counts(self, counts: Mapping[str, int], shots: int, width: int) -> np.ndarray:
        rows = np.zeros((shots, width), dtype=bool)
        at = 0
        for key, n in counts.items():
            flat = key.replace(" ", "")
            # key character i from the right is clbit i
            row = np.frombuffer(flat[::-1].encode(), dtype=np.uint8) == ord("1")
            rows[at : at + n] = row
            at += n
        if at != shots:
            raise InvalidInputError(f"a device returned {at} shots, {shots} were asked for")
        self._rng.shuffle(rows, axis=0)
        return rows
