"""A synchronous face for the async scheduler, safe inside Jupyter.

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
            thread = threading.Thread(
                target=loop.run_forever, name="multiqpu-scheduler", daemon=True
            )
            thread.start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code and return its result."""
    loop = _background_loop()
    future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except BaseException:
        if not future.done():
            future.cancel()  # cancels the task in the loop: its jobs are cancelled
            with contextlib.suppress(BaseException):  # already raising the first error
                future.result(timeout=30)
        raise
