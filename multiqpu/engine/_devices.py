"""Simulators on an engine: each batch as a task (:class:`EngineDevice`), or a simulator as
a Ray actor holding CPUs (:class:`RayDevice`).

Both are :class:`~multiqpu.delegating.DelegatingDevice` s around the simulator built on the
driver, so the scheduler sees an ordinary device: the same spec, qubits, target,
calibration and limits. Only the batch runs elsewhere, on a copy of the simulator rebuilt
from its recipe (provider, name, options: what :func:`multiqpu.device` resolved), once per
worker process or actor. The batch's random generator is still drawn on the driver, from
the driver's device (:meth:`~multiqpu.simulator.SimulatorDevice.batch_rng`), so a seeded
device gives the same results on every engine, and a batch run again after its worker was
lost gives the same results as the first try would have.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.delegating import DelegatingDevice
from multiqpu.device import CircuitResult, FutureJob, Job, JobTimings
from multiqpu.engine._dispatch import RUN_S, circuit_blobs, dispatcher_of
from multiqpu.errors import ConfigError, JobError
from multiqpu.simulator import Batch, SimulatorDevice

if TYPE_CHECKING:
    from collections.abc import Awaitable

    import numpy as np
    from qiskit import QuantumCircuit

    from multiqpu.device import Device
    from multiqpu.engine._base import Engine
    from multiqpu.engine._ray import RayEngine
    from multiqpu.pool import DevicePool

__all__ = ["EngineDevice", "EngineJob", "RayDevice", "actor_devices", "offload", "recipe_of"]

#: (provider, name, options): what rebuilds a device (set by multiqpu.config when it builds one)
Recipe = tuple[str, str, Mapping[str, Any]]
Output = tuple[list[CircuitResult], dict[str, Any]]

#: Actor calls retried after the actor died (each retry starts a new actor when needed).
_ACTOR_ATTEMPTS = 5


def recipe_of(device: Device) -> Recipe | None:
    """How to rebuild ``device`` elsewhere, if it can be: a simulator built by
    :func:`multiqpu.device` (or a config file) whose batches go through ``_simulate``."""
    recipe: Recipe | None = getattr(device, "build_recipe", None)
    if recipe is None or not isinstance(device, SimulatorDevice):
        return None
    # Simulators whose _submit bypasses _simulate (IBM fakes on the runtime engine) stay put.
    own = type(device)._submit is SimulatorDevice._submit or getattr(device, "engine", "") == "fast"
    return recipe if own else None


_BUILT: dict[bytes, SimulatorDevice] = {}
_BUILT_LOCK = threading.Lock()


def _rebuild(recipe: Recipe) -> SimulatorDevice:
    key = pickle.dumps(recipe)
    with _BUILT_LOCK:
        found = _BUILT.get(key)
        if found is None:
            from multiqpu.providers import get_provider

            provider, name, options = recipe
            built = get_provider(provider).device(name, **dict(options))
            assert isinstance(built, SimulatorDevice)
            _BUILT[key] = found = built
    return found


class EngineJob(FutureJob):
    """A batch running on an engine: ``work`` awaits ``(results, metadata)``."""

    def __init__(self, device: str, work: Awaitable[Output], metadata: Mapping[str, Any]) -> None:
        submitted = time.time()
        super().__init__(
            f"engine-{uuid.uuid4().hex[:12]}",
            device,
            asyncio.ensure_future(work),
            submitted_at=submitted,
        )
        self._started = submitted  # on the engine at once: running, as far as anyone can tell
        self._metadata = dict(metadata)

    def _timings(self, metadata: Mapping[str, Any]) -> tuple[JobTimings, Mapping[str, Any]]:
        finished = time.time()
        # a batch that waited for a worker (behind other batches, or other tasks) was
        # queued meanwhile: the scheduler learns the engine's queue and the run's speed
        metadata = dict(metadata)
        run_s = metadata.pop(RUN_S, None)
        started = self._submitted if run_s is None else max(self._submitted, finished - run_s)
        return JobTimings(self._submitted, started, finished), {**metadata, **self._metadata}


class EngineDevice(DelegatingDevice):
    """A simulator whose batches run as tasks of ``engine`` (a worker process, a Ray task)."""

    def __init__(self, inner: SimulatorDevice, engine: Engine, recipe: Recipe) -> None:
        super().__init__(inner)
        self.engine = engine
        self._recipe = recipe
        self._recipe_handle: Any = None

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        inner = self.inner
        assert isinstance(inner, SimulatorDevice)
        index, rng = inner.batch_rng()
        if self._recipe_handle is None:
            self._recipe_handle = self.engine.put(self._recipe)
        # Batches submitted in one turn of the event loop share tasks; circuits are
        # serialized once per circuit (multiqpu.engine._dispatch).
        work = dispatcher_of(self.engine).submit(
            self._recipe_handle, circuit_blobs(circuits), shots, rng
        )
        meta = {"seed": inner.seed, "batch": index, "engine": self.engine.kind}
        return EngineJob(self.spec, work, meta)


def offload(engine: Engine, pool: DevicePool) -> DevicePool:
    """``pool`` with every rebuildable simulator wrapped in an :class:`EngineDevice`
    (sharing the pool's learned knowledge)."""
    from multiqpu.pool import DevicePool

    out: list[Device] = []
    for d in pool:
        recipe = recipe_of(d)
        if recipe is None or isinstance(d, EngineDevice | RayDevice):
            out.append(d)
        else:
            assert isinstance(d, SimulatorDevice)
            out.append(EngineDevice(d, engine, recipe))
    return DevicePool(out, knowledge=pool.knowledge, canary_tests=pool.canary_tests)


# ---------------------------------------------------------------------- Ray actors
class SimulatorActor:
    """The body of a simulator actor: the simulator rebuilt from its recipe; batches run in
    threads of the actor, at most ``slots`` at once (the CPUs it holds)."""

    def __init__(self, recipe: Recipe, slots: int) -> None:
        self.device = _rebuild(recipe)
        self.slots = asyncio.Semaphore(max(1, slots))

    async def simulate(
        self, circuits: Sequence[QuantumCircuit], shots: int | None, rng: np.random.Generator
    ) -> Output:
        async with self.slots:
            results, metadata = await asyncio.to_thread(
                self.device._simulate, Batch(circuits, threading.Event()), shots, rng
            )
        return list(results), dict(metadata)

    async def pid(self) -> int:
        import os

        return os.getpid()


class RayDevice(DelegatingDevice):
    """A simulator running as an async Ray actor holding ``num_cpus`` CPUs. If the actor
    dies (its node or process lost, or killed), the batch is sent again, to a restarted or
    new actor, with the same random generator: nothing is lost, and the results are those the
    first try would have given."""

    def __init__(
        self, inner: SimulatorDevice, engine: RayEngine, recipe: Recipe, *, num_cpus: float = 1
    ) -> None:
        super().__init__(inner)
        self.engine = engine
        self.num_cpus = num_cpus
        self._recipe = recipe
        self.actor: Any = self._start()
        #: actors started again after one died
        self.restarts = 0

    def _start(self) -> Any:
        ray = self.engine.ray()
        cls = _actor_class(ray)
        return cls.options(
            num_cpus=self.num_cpus, scheduling_strategy="SPREAD", max_restarts=-1,
            max_task_retries=-1, max_concurrency=1000,
        ).remote(self._recipe, max(1, int(self.num_cpus)))  # fmt: skip

    async def _run(self, circuits: list[QuantumCircuit], shots: int | None,
                   rng: np.random.Generator) -> Output:  # fmt: skip
        ray = self.engine.ray()
        for attempt in range(_ACTOR_ATTEMPTS):
            actor = self.actor
            try:
                out: Output = await self.engine.wait(actor.simulate.remote(circuits, shots, rng))
                return out
            except ray.exceptions.RayActorError:
                if attempt + 1 == _ACTOR_ATTEMPTS:
                    raise JobError(
                        f"the Ray actor of {self.spec} died {_ACTOR_ATTEMPTS} times in a row"
                    ) from None
                if self.actor is actor:  # not replaced yet by a concurrent batch
                    self.actor = self._start()
                    self.restarts += 1
        raise AssertionError("unreachable")

    async def _submit(self, circuits: Sequence[QuantumCircuit], shots: int | None) -> Job:
        inner = self.inner
        assert isinstance(inner, SimulatorDevice)
        index, rng = inner.batch_rng()
        meta = {"seed": inner.seed, "batch": index, "engine": "ray-actor"}
        return EngineJob(self.spec, self._run(list(circuits), shots, rng), meta)


_ACTOR_CLASS: dict[int, Any] = {}


def _actor_class(ray: Any) -> Any:
    found = _ACTOR_CLASS.get(id(ray))
    if found is None:
        found = _ACTOR_CLASS[id(ray)] = ray.remote(SimulatorActor)
    return found


def actor_devices(engine: RayEngine, devices: Sequence[Device], *, num_cpus: float) -> list[Device]:
    """Each rebuildable simulator of ``devices`` as a :class:`RayDevice`; the others as
    they are (real QPUs are submitted to and polled from the driver)."""
    if not num_cpus > 0:
        raise ConfigError(f"num_cpus must be > 0, got {num_cpus!r}", key="num_cpus")
    out: list[Device] = []
    for d in devices:
        recipe = recipe_of(d)
        if recipe is None:
            out.append(d)
        else:
            assert isinstance(d, SimulatorDevice)
            out.append(RayDevice(d, engine, recipe, num_cpus=num_cpus))
    return out
