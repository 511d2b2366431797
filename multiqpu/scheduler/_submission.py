"""Submitting jobs to providers: throttled per provider, retried on transient errors, and
cancelled so that nothing is left unretrieved.

* **Rate limits**: ``Options.rate_limits`` gives each provider ``(calls, period_s)``; every
  attempt waits for its provider's throttle (asyncio-throttle).
* **Retries**: a :class:`~multiqpu.TransientProviderError` is retried up to
  ``Options.retries`` attempts with exponential back-off and jitter from ``backoff_s``
  (capped at 30 x it) (tenacity), never sooner than the error's ``retry_after_s`` (a
  throttling response's Retry-After); any other error is final.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from multiqpu.errors import TransientProviderError

if TYPE_CHECKING:
    from multiqpu.device import Device, Job
    from multiqpu.scheduler._options import Options

__all__ = ["Refusals", "Submitter", "cancel_job"]


class Submitter:
    """Submits jobs for one run; ``retries`` counts the attempts that were retries."""

    def __init__(self, opts: Options) -> None:
        from asyncio_throttle import Throttler

        self.retries = 0
        self._attempts = opts.retries
        self._backoff_s = opts.backoff_s
        self._throttlers = {
            p: Throttler(rate_limit=int(calls), period=float(period))
            for p, (calls, period) in opts.rate_limits.items()
        }

    async def submit(self, device: Device, circuits: list[Any], shots: int | None) -> Job:
        """Submit ``circuits`` to ``device`` (throttled, retried); returns the job."""
        from tenacity import (
            AsyncRetrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_exponential_jitter,
        )

        throttler = self._throttlers.get(device.provider)
        b = self._backoff_s
        job: Job | None = None
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransientProviderError),
            stop=stop_after_attempt(self._attempts),
            wait=_honour_retry_after(wait_exponential_jitter(multiplier=b, max=30 * b, jitter=b)),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self.retries += 1
                if throttler is not None:
                    await throttler.acquire()
                job = await device.submit(circuits, shots)
        assert job is not None
        return job


class Refusals:
    """Jobs a device refused at run time as bad input (:class:`~multiqpu.InvalidInputError`,
    :class:`~multiqpu.CircuitTooLargeError`), per circuit. A circuit refused twice per device
    and once more is bad: :meth:`note` then raises, so the run stops instead of retrying it
    for ever (another device may still accept what one refused, hence the margin)."""

    def __init__(self, n_devices: int, names: list[str], run_id: str) -> None:
        self.limit = 2 * n_devices + 1
        self.names = names
        self.run_id = run_id
        self.counts: dict[int, int] = {}

    def note(self, error: BaseException, indices: list[int], spec: str) -> None:
        from multiqpu.errors import CircuitTooLargeError, InvalidInputError

        if not isinstance(error, InvalidInputError | CircuitTooLargeError):
            return
        for i in indices:
            self.counts[i] = self.counts.get(i, 0) + 1
            if self.counts[i] >= self.limit:
                raise InvalidInputError(
                    f"circuit {i} ({self.names[i]}) was refused {self.limit} times; last by "
                    f"{spec}: {error}. The run stops; its finished results are in the journal "
                    f"(run {self.run_id})"
                )


def _honour_retry_after(backoff: Any) -> Any:
    """The back-off, but never shorter than the Retry-After a throttling response asked for."""

    def wait(state: Any) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        asked = getattr(error, "retry_after_s", None) or 0.0
        return max(float(backoff(state)), float(asked))

    return wait


async def cancel_job(job: Job) -> None:
    """Ask the provider to cancel, then collect the job's outcome so that nothing is left
    unretrieved (a cancelled job usually raises :class:`JobError` at once)."""
    with contextlib.suppress(Exception):
        await job.cancel()
    with contextlib.suppress(Exception, asyncio.TimeoutError):
        await asyncio.wait_for(job.result(), timeout=5.0)
