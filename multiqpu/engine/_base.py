"""The engine contract and the local engine.

An :class:`Engine` runs the classical side of a run: plain functions as tasks (``call``,
``amap``, ``map``), simulator batches next to them (``offload``) and simulator devices
(``devices``). Submitting to and polling real QPUs never goes through an engine: that is
I/O-bound and stays in asyncio on the driver.

:class:`LocalEngine` is what runs without one: in-process, in worker threads
(``processes=0``, the default: exactly the behaviour of a run without an engine), or in a
pool of ``processes`` worker processes for CPU-bound simulation, result folding and
reconstruction (it pays off from a few hundred milliseconds of work per task; below that
the pickling costs more than it saves).
"""

from __future__ import annotations

import abc
import asyncio
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from multiqpu.device import Device
    from multiqpu.pool import DevicePool

__all__ = ["Engine", "LocalEngine"]

T = TypeVar("T")


class Engine(abc.ABC):
    """Where CPU-bound work runs. Functions given to an engine must be importable module-level
    functions (they may run in another process or on another machine); their arguments
    and results are pickled."""

    #: ``"local"`` or ``"ray"``
    kind: str = ""

    @property
    @abc.abstractmethod
    def workers(self) -> int:
        """How many tasks run at once (CPUs of the cluster; 1 in-process)."""

    @property
    def remote(self) -> bool:
        """Whether tasks leave this process (then results are folded and reconstruction is
        done in tasks too; in-process they run in worker threads as without an engine)."""
        return self.workers > 1

    @abc.abstractmethod
    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` as one task, awaited without blocking the event loop."""

    async def amap(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        """``[fn(x) for x in items]``, the items as concurrent tasks, results in order."""
        tasks = [asyncio.ensure_future(self.call(fn, x)) for x in items]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:  # the first failure cancels the rest
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    @abc.abstractmethod
    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        """:meth:`amap` from synchronous code (sweeps, benchmarks): results in order."""

    def put(self, obj: T) -> T:
        """A handle to pass ``obj`` to many tasks while shipping it once (Ray: the object
        store; in-process: ``obj`` itself). Pass it as a *top-level* argument of a task."""
        return obj

    def offload(self, pool: DevicePool) -> DevicePool:
        """``pool`` with its simulators' batches run as this engine's tasks (same seeds, same
        results: the random generator of each batch is still drawn on the driver). Devices
        that are not simulators, or that cannot be rebuilt from their spec and options,
        stay as they are. In-process the pool is returned unchanged."""
        if not self.remote:
            return pool
        from multiqpu.engine._devices import offload

        return offload(self, pool)

    def devices(self, specs: Sequence[str | Device], *, num_cpus: float = 1,
                **options: Any) -> list[Device]:  # fmt: skip
        """Devices for a fleet: each spec (``"local:ideal"``) or device built here; on Ray,
        each simulator runs as an actor holding ``num_cpus`` CPUs, spread over the cluster."""
        from multiqpu.config import make_device
        from multiqpu.device import Device

        return [s if isinstance(s, Device) else make_device(s, options) for s in specs]

    def close(self) -> None:  # noqa: B027 (nothing to release by default)
        """Release what the engine holds (worker processes; Ray is left running)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}, {self.workers} workers>"


class LocalEngine(Engine):
    """The default engine. ``processes=0``: in-process (worker threads); ``processes=n``:
    a pool of ``n`` worker processes (``None``: one per CPU)."""

    kind = "local"

    def __init__(self, processes: int | None = 0) -> None:
        if processes is not None and (
            isinstance(processes, bool) or not isinstance(processes, int) or processes < 0
        ):
            raise InvalidInputError(f"processes must be an integer >= 0 or None, got {processes!r}")
        self.processes = (os.cpu_count() or 1) if processes is None else processes
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return max(1, self.processes)

    @property
    def remote(self) -> bool:
        return self.processes > 0

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: the driver runs an event loop and Aer threads, which fork would copy
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.processes, mp_context=ctx)
        return self._pool

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if not self.remote:
            return await asyncio.to_thread(fn, *args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), fn, *args)

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        if not self.remote:
            return [fn(x) for x in items]
        return list(self._executor().map(fn, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
