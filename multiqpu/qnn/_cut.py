"""Model parallelism: training a QNN wider than every device of the fleet through cutting.

:class:`CutExecutor` is an executor with one worker, the whole pool: every circuit of a
shard (a forward circuit or a parameter-shift circuit, in one of the model's measurement
bases) is estimated by the one estimate pipeline (:func:`multiqpu.pipeline.estimate`), which
cuts it into fragments that fit the devices, spreads the sub-experiments over the pool and
knits the results into the expectation of each Pauli term group the model reads from that
basis, with a standard error. The model reads those values (and their variances) exactly as
it reads a device's counts, so the forward pass, the parameter-shift Jacobian, the loss and
every aggregation strategy are unchanged; the gradient's variance includes the cutting
overhead. The circuits of a shard are estimated concurrently (at most ``concurrency`` at
a time), each with its own sampling seed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu.qnn._executor import Completion, Executor

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.pool import DevicePool
    from multiqpu.primitives._pauli import Basis, Estimate, Term
    from multiqpu.qnn.model import QNNModel, Work

__all__ = ["CutExecutor", "CutResult"]


def _key(terms: Sequence[Term]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(t.paulis) for t in terms)


@dataclass(frozen=True)
class CutResult:
    """One circuit's knitted estimates: ``{term group: (value, standard error)}``."""

    values: dict[tuple[tuple[int, ...], ...], tuple[float, float]]

    def estimate(self, basis: Basis, terms: Sequence[Term]) -> Estimate:
        from multiqpu.primitives._pauli import Estimate

        value, se = self.values[_key(terms)]
        return Estimate(value, se * se)


class CutExecutor(Executor):
    """See the module docstring. ``options`` go to :func:`multiqpu.pipeline.estimate`
    (e.g. ``max_fragment_qubits``, ``policy``)."""

    def __init__(
        self,
        pool: DevicePool,
        model: QNNModel,
        *,
        concurrency: int = 4,
        seed: int = 0,
        **options: Any,
    ) -> None:
        self.pool = pool
        self.model = model
        self.names = ["cut:" + "+".join(d.spec for d in pool)]
        self.concurrency = [1]
        self.options = options
        self._parallel = concurrency
        self._limits: dict[int, asyncio.Semaphore] = {}  # per event loop
        self._tasks: set[asyncio.Task[Completion]] = set()
        self._seed = seed
        self._calls = 0
        self._t0 = time.perf_counter()
        # per measurement basis: the term groups (one per output) it is read for
        self._groups: dict[int, list[Sequence[Term]]] = {}
        for split in model._split:
            for j, terms in split:
                self._groups.setdefault(j, []).append(terms)

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def start(self, d: int, work: Work, shots: int | None, tag: Any) -> None:
        self._tasks.add(asyncio.ensure_future(self._run(d, work, shots, tag)))

    async def _one(self, circuit: QuantumCircuit, j: int, shots: int | None) -> CutResult:
        from qiskit.quantum_info import SparsePauliOp

        from multiqpu.pipeline import estimate

        groups = self._groups.get(j, [])
        unmeasured = circuit.remove_final_measurements(inplace=False)
        assert unmeasured is not None
        n = unmeasured.num_qubits
        observables = []
        for terms in groups:  # after the basis rotation every term is a Z string
            labels = []
            for t in terms:
                z = ["I"] * n
                for q, p in enumerate(t.paulis):
                    if p:
                        z[n - 1 - q] = "Z"
                labels.append(("".join(z), t.coeff))
            observables.append(SparsePauliOp.from_list(labels))
        self._calls += 1
        seed = self._seed + self._calls
        loop = id(asyncio.get_running_loop())
        limit = self._limits.setdefault(loop, asyncio.Semaphore(max(self._parallel, 1)))
        async with limit:
            result = await estimate(self.pool, unmeasured, observables, shots=shots, seed=seed,
                                    **self.options)  # fmt: skip
        values = {
            _key(terms): (float(v), float(s))
            for terms, v, s in zip(groups, result.values, result.std_errors, strict=True)
        }
        return CutResult(values)

    async def _run(self, d: int, work: Work, shots: int | None, tag: Any) -> Completion:
        submitted = self.now()
        circuits = work.circuits()
        results = await asyncio.gather(
            *(self._one(c, int(j), shots) for c, j in zip(circuits, work.template, strict=True))
        )
        return Completion(tag, d, list(results), submitted, self.now())  # type: ignore[arg-type]

    async def next(self) -> Completion:
        from multiqpu.errors import InvalidInputError

        if not self._tasks:
            raise InvalidInputError("no shard is running")
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        task = min(done, key=id)
        self._tasks.discard(task)
        return task.result()

    def in_flight(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
