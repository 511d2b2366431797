"""The base of every simulator device: one abstract method, and seeding done once, here.

A simulator adapter subclasses :class:`SimulatorDevice` and implements
:meth:`SimulatorDevice._simulate` (blocking; it runs in a worker thread, one thread per
batch). The base owns the rest: it is free, always online, has no queue, and it owns the
random numbers.

Seeding. ``seed=s`` makes a device reproducible as a *sequence* of batches: batch ``k``
(counted in submission order) of every device built with seed ``s`` gets the same random
generator, derived as the ``k``-th child of ``numpy.random.SeedSequence(s)``. Two batches of
one device get independent generators, so shots of one circuit split over two jobs, repeated
ZNE points and repeated sub-experiments are independent samples (as on hardware), not copies.
Without a seed each device draws fresh entropy. The generator is made on the submitting
thread, so concurrent batches that finish in any order stay reproducible.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from multiqpu.device import (
    CircuitResult,
    CostEstimate,
    Device,
    DeviceLimits,
    DeviceStatus,
    Job,
    QueueEstimate,
    ThreadJob,
)
from multiqpu.errors import InvalidInputError, JobError

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

__all__ = ["Batch", "SimulatorDevice", "SimulatorJob"]

SimulationOutput = tuple[Sequence[CircuitResult], Mapping[str, Any]]


class Batch(Sequence["QuantumCircuit"]):
    """The circuits of one batch, as :meth:`SimulatorDevice._simulate` receives them.

    A plain sequence, except that iterating it raises :class:`~multiqpu.JobError`
    (``"cancelled"``) once the job was cancelled: a simulator that loops over its circuits
    stops at the next circuit without any code of its own."""

    def __init__(self, circuits: Sequence[QuantumCircuit], stop: threading.Event) -> None:
        self._circuits = list(circuits)
        self._stop = stop

    def __len__(self) -> int:
        return len(self._circuits)

    @overload
    def __getitem__(self, index: int) -> QuantumCircuit: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[QuantumCircuit]: ...
    def __getitem__(self, index: int | slice) -> QuantumCircuit | Sequence[QuantumCircuit]:
        return self._circuits[index]

    def __iter__(self) -> Iterator[QuantumCircuit]:
        for circuit in self._circuits:
            if self._stop.is_set():
                raise JobError("cancelled")
            yield circuit

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()


class SimulatorJob(ThreadJob):
    """A :class:`ThreadJob` whose batch stops at the next circuit once cancelled."""

    def __init__(self, device: str, work: Any, stop: threading.Event) -> None:
        self._stop = stop
        super().__init__(device, work)

    async def cancel(self) -> None:
        self._stop.set()
        await super().cancel()


class SimulatorDevice(Device):
    """A simulator (also a fake backend or an emulator): implement :meth:`_simulate`, plus
    ``num_qubits``, ``target`` and ``calibration()``."""

    simulator = True
    #: what :meth:`queue_estimate` reports as its source (no queue: ``"none"``)
    queue_source: Literal["live", "model", "none"] = "none"

    def __init__(
        self,
        name: str,
        provider: str,
        *,
        seed: int | None = None,
        limits: DeviceLimits | None = None,
    ) -> None:
        super().__init__(name, provider, limits=limits)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise InvalidInputError(f"seed must be a non-negative integer or None, got {seed!r}")
        #: the device's seed (None: fresh entropy); see the module docstring
        self.seed = seed
        self._seeds: np.random.SeedSequence | None = None
        self._seed_lock = threading.Lock()
        #: batches submitted so far (the index the next batch gets)
        self.batches = 0

    # ---------------------------------------------------------------- the one method
    @abc.abstractmethod
    def _simulate(
        self, circuits: Batch, shots: int | None, rng: np.random.Generator
    ) -> SimulationOutput:
        """Simulate one validated batch (blocking; runs in a worker thread).

        Return ``(results, metadata)``: one :class:`~multiqpu.CircuitResult` per circuit, in
        order, and the run's metadata. Draw every random number from ``rng`` (the batch's own
        generator); derive simulator seeds from it, e.g. ``int(rng.integers(2**31 - 1))``."""

    # ---------------------------------------------------------------- seeding
    def batch_rng(self) -> tuple[int, np.random.Generator]:
        """The next batch's index and random generator (advances the sequence)."""
        import numpy as np

        with self._seed_lock:
            if self._seeds is None:
                self._seeds = np.random.SeedSequence(self.seed)
            (child,) = self._seeds.spawn(1)
            index = self.batches
            self.batches += 1
        return index, np.random.default_rng(child)

    # ---------------------------------------------------------------- shared behaviour
    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        index, rng = self.batch_rng()
        stop = threading.Event()
        batch = Batch(circuits, stop)

        def work() -> SimulationOutput:
            results, metadata = self._simulate(batch, shots, rng)
            return results, {"seed": self.seed, "batch": index, **metadata}

        return SimulatorJob(self.spec, work, stop)

    async def status(self) -> DeviceStatus:
        return DeviceStatus.ONLINE

    async def queue_estimate(self) -> QueueEstimate:
        return QueueEstimate(pending_jobs=0, expected_wait_s=0.0, source=self.queue_source)

    def estimate_cost(self, circuits: Sequence[QuantumCircuit], shots: int) -> CostEstimate:
        return CostEstimate(
            total_usd=0.0, tasks=len(circuits), shots=len(circuits) * (shots or 0), source="free"
        )
