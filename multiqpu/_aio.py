"""Small asyncio helpers shared by the engines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

__all__ = ["gather_cancelling"]


async def gather_cancelling(coros: Sequence[Awaitable[None]]) -> None:
    """Run all; on the first failure (or cancellation) cancel the rest, wait for them to
    finish cancelling (so no job is left running behind the caller's back) and re-raise."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
