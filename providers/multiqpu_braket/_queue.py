"""Braket queue depth -> :class:`multiqpu.QueueEstimate`.

``AwsDevice.queue_depth()`` reports strings per priority, capped like ``'>4000'`` (and
``'>1000'`` for hybrid jobs). We add the normal and priority task queues; a capped figure
makes the sum a lower bound (``capped=True``). ``raw`` keeps Braket's figures as given.
Braket gives no wait time, so ``expected_wait_s`` is None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from multiqpu.provider_api import ProviderError, QueueEstimate

__all__ = ["parse_depth", "queue_estimate"]

_DEPTH = re.compile(r"^\s*(>)?\s*(\d+)")


def parse_depth(text: str | int | None) -> tuple[int | None, bool]:
    """``'13'`` -> (13, False); ``'>4000'`` -> (4000, True); None or junk -> (None, False).
    Jobs queues read like ``'0 (1 prioritized job(s) running)'``: the leading number counts."""
    if text is None:
        return None, False
    if isinstance(text, int):
        return text, False
    m = _DEPTH.match(str(text))
    if not m:
        return None, False
    return int(m.group(2)), bool(m.group(1))


def queue_estimate(quantum_tasks: Mapping[str, str], jobs: str | None = None) -> QueueEstimate:
    """Combine the per-priority task queues (keys such as ``'Normal'``, ``'Priority'``)."""
    total = 0
    capped = False
    known = False
    for value in quantum_tasks.values():
        n, cap = parse_depth(value)
        if n is None:
            continue
        known = True
        total += n
        capped = capped or cap
    if not known:
        raise ProviderError(
            "Braket returned no readable queue depth",
            provider="braket",
            vendor_message=repr(dict(quantum_tasks)),
        )
    raw = ", ".join(f"{k}: {v}" for k, v in quantum_tasks.items())
    if jobs is not None:
        raw += f"; jobs: {jobs}"
    return QueueEstimate(
        pending_jobs=total, expected_wait_s=None, source="live", raw=raw, capped=capped
    )
