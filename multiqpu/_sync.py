"""The package's one sync bridge: synchronous faces of async calls, safe inside Jupyter.

Coroutines run on one event loop in a daemon thread (Cirq's ``asyncio_executor`` pattern):
``asyncio.run`` is never called inside a running loop, and the same loop serves every call,
so devices that keep loop-bound state keep working between calls. Interrupting the caller
(Ctrl-C) cancels the coroutine, which cancels every job it submitted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="multiqpu-sync", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code and return its result.

    Works with or without an event loop running in the calling thread (notebooks): the
    coroutine runs on multiqpu's own loop in a daemon thread."""
    loop = _background_loop()
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("run_sync() called from multiqpu's own event loop; await instead")
    future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except BaseException:
        if not future.done():
            future.cancel()  # cancels the task in the loop: its jobs are cancelled
            with contextlib.suppress(BaseException):  # already raising the first error
                future.result(timeout=30)
        raise
