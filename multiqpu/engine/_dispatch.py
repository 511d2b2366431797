"""Shipping simulator batches to an engine cheaply: what the driver pays per sub-experiment.

The driver is what a big cluster waits on (it plans, places, ships and merges every
sub-experiment on one core), so two things here keep its share small:

* **Circuits are serialized once** (:func:`circuit_blobs`): each circuit as QPY bytes
  (Qiskit's Rust serializer, about 3x cheaper than pickling a circuit both ways), and a
  sub-experiment run in the pilot, the main stage and the top-ups is serialized once
  (:mod:`multiqpu._circuit_memo`). Circuits QPY cannot hold are pickled.
* **Batches submitted together travel together** (:class:`Dispatcher`): every batch
  submitted to an engine before the event loop turns over is queued, and the queue goes as
  at most ``workers`` tasks (:func:`simulate_chunk`), each running its share of the batches
  one after another. A task's batches are independent: each has its own random generator,
  drawn on the driver, so a chunk run again after its worker died gives the results the
  first try would have, whatever the chunking.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult
    from multiqpu.engine._base import Engine

__all__ = [
    "RUN_S",
    "Dispatcher",
    "circuit_blobs",
    "dispatcher_of",
    "load_circuit",
    "simulate_chunk",
]

Output = tuple[list["CircuitResult"], dict[str, Any]]
#: One batch of a chunk: (which recipe, circuit blobs, shots, random generator).
Item = tuple[int, list[bytes], "int | None", "np.random.Generator"]

#: Metadata key of a batch's own run time (seconds), read and removed by the job.
RUN_S = "_run_s"

_QPY = b"Q"  # blob tags: QPY bytes follow, or a pickle
_PICKLE = b"P"


def _serialize(circuit: QuantumCircuit) -> bytes:
    from multiqpu._journal_codec import circuit_to_qpy

    try:
        return _QPY + circuit_to_qpy(circuit)  # the journal's bytes, when it has them
    except Exception:  # metadata or instructions QPY cannot hold
        return _PICKLE + pickle.dumps(circuit, protocol=pickle.HIGHEST_PROTOCOL)


def circuit_blobs(circuits: Sequence[QuantumCircuit]) -> list[bytes]:
    """Each circuit serialized: once per circuit for the library's own circuits (the
    sub-experiments, :mod:`multiqpu._circuit_memo`), each time for others (a user's circuit
    may be changed in place between runs)."""
    from multiqpu._circuit_memo import memo

    return [memo(c, "engine_blob", _serialize) for c in circuits]


def load_circuit(blob: bytes) -> QuantumCircuit:
    """The circuit :func:`circuit_blobs` serialized."""
    if blob[:1] == _QPY:
        from multiqpu._journal_codec import circuit_from_qpy

        return circuit_from_qpy(blob[1:])
    circuit: QuantumCircuit = pickle.loads(blob[1:])
    return circuit


def simulate_chunk(items: Sequence[Item], *recipes: Any) -> tuple[list[Output], float]:
    """One task: the batches ``items`` one after another, each on the simulator its recipe
    rebuilds (cached per worker process); the recipes come as top-level arguments (object
    store handles on Ray). Returns the outputs and the CPU seconds the task took."""
    import threading as _threading
    import time

    from multiqpu.engine._devices import _rebuild
    from multiqpu.simulator import Batch

    cpu0 = time.process_time()
    out: list[Output] = []
    for which, blobs, shots, rng in items:
        t0 = time.perf_counter()
        device = _rebuild(recipes[which])
        batch = Batch([load_circuit(b) for b in blobs], _threading.Event())
        results, metadata = device._simulate(batch, shots, rng)
        # how long this batch ran (not its wait in the chunk): the job's execution time
        out.append((list(results), {**metadata, RUN_S: time.perf_counter() - t0}))
    return out, time.process_time() - cpu0


class Dispatcher:
    """Queues the batches submitted to ``engine`` during one turn of the event loop and
    sends them as at most ``engine.workers`` chunk tasks when the loop turns over."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._workers: int | None = None
        # per event loop (an engine may serve loops in several threads): batches not sent yet
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._running: set[asyncio.Future[None]] = set()  # the loop holds tasks weakly
        #: tasks sent, batches they carried, CPU seconds they took (for benchmarks)
        self.tasks = 0
        self.batches = 0
        self.worker_cpu_s = 0.0

    def submit(
        self, recipe: Any, blobs: list[bytes], shots: int | None, rng: np.random.Generator
    ) -> asyncio.Future[Output]:
        """Queue one batch; its future resolves to ``(results, metadata)``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Output] = loop.create_future()
        with self._lock:
            queue = self._pending.get(loop)
            if queue is None:
                queue = self._pending[loop] = []
                loop.call_soon(self._flush, loop)
            queue.append((recipe, blobs, shots, rng, future))
        return future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            pending = self._pending.pop(loop, [])
        pending = [p for p in pending if not p[4].done()]  # cancelled before they left
        if not pending:
            return
        if self._workers is None:
            self._workers = max(1, self.engine.workers)
        chunks = min(len(pending), self._workers)
        size, extra = divmod(len(pending), chunks)
        start = 0
        for k in range(chunks):
            stop = start + size + (k < extra)
            task = asyncio.ensure_future(self._run(pending[start:stop]))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            start = stop

    async def _run(self, part: list[tuple[Any, list[bytes], int | None, Any, Any]]) -> None:
        recipes: list[Any] = []
        items: list[Item] = []
        for recipe, blobs, shots, rng, _ in part:
            which = next((i for i, r in enumerate(recipes) if r is recipe), None)
            if which is None:
                which = len(recipes)
                recipes.append(recipe)
            items.append((which, blobs, shots, rng))
        futures = [p[4] for p in part]
        self.tasks += 1
        self.batches += len(part)
        work = asyncio.ensure_future(self.engine.call(simulate_chunk, items, *recipes))

        def cancel_if_unwanted(_: Any) -> None:
            if all(f.cancelled() for f in futures) and not work.done():
                work.cancel()  # the engine cancels its task

        for f in futures:
            f.add_done_callback(cancel_if_unwanted)
        try:
            outputs, cpu_s = await work
        except asyncio.CancelledError:
            for f in futures:
                f.cancel()
            return
        except BaseException as exc:  # handed to every batch of the chunk
            for f in futures:
                if not f.done():
                    f.set_exception(exc)
            return
        self.worker_cpu_s += cpu_s
        for f, output in zip(futures, outputs, strict=True):
            if not f.done():
                f.set_result(output)


_DISPATCHERS: weakref.WeakKeyDictionary[Any, Dispatcher] = weakref.WeakKeyDictionary()


def dispatcher_of(engine: Engine) -> Dispatcher:
    """The one dispatcher of ``engine`` (shared by all its simulators, so that batches for
    several devices share tasks)."""
    found = _DISPATCHERS.get(engine)
    if found is None:
        found = _DISPATCHERS[engine] = Dispatcher(engine)
    return found
