"""Simulated vendor queues: how long a job waits before a device runs it.

Fake backends and local simulators report an empty queue, which makes every scheduling
decision trivial. A :class:`QueueModel` gives each simulated device a believable queue:

* **heavy-tailed waits**: lognormal around a per-device median (a job that runs for seconds
  commonly waits 15-60x that, sometimes hours), capped at ``max_wait_s``;
* **a daily load cycle**: the median and the pending-job count follow
  ``1 + daily_amplitude * cos(2π (hour - peak_hour_utc) / 24)``;
* **outages and maintenance windows** (:class:`Window`): the device reports OFFLINE or
  MAINTENANCE inside them;
* **vendor-shaped reports**: IBM style (an integer ``pending_jobs``), Braket style (strings
  capped like ``'>4000'`` in :attr:`QueueEstimate.raw` with ``capped=True``), local style
  (only this process's own jobs);
* **a time scale**: model time ("virtual" seconds, the real-world durations) times
  ``time_scale`` is what a caller actually waits, so a demo on a queue of minutes finishes in
  seconds.

Everything here is pure: a wait is sampled for a given virtual time from a given random
generator (:meth:`QueueModel.sample_wait`, :meth:`QueueModel.start_time`), so a virtual-clock
scheduler simulation can use the model without sleeping. :class:`QueuedDevice` (in
:mod:`multiqpu._queued`) puts a model in front of a real device and does the sleeping.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, replace
from typing import Literal

from multiqpu._queued import QueuedDevice, QueuedJob
from multiqpu.device import DeviceStatus, QueueEstimate
from multiqpu.errors import ConfigError

__all__ = [
    "DEFAULT_TIME_SCALE",
    "QueueModel",
    "QueueStyle",
    "QueuedDevice",
    "QueuedJob",
    "Window",
]

QueueStyle = Literal["ibm", "braket", "local"]

#: Time scale of the embedded default fleet: a 45-minute real-world wait becomes 0.27 s.
DEFAULT_TIME_SCALE = 1e-4

#: Braket's ``queue_depth()`` reports task counts above this as the string ``'>4000'``.
BRAKET_TASK_CAP = 4000

_DAY_S = 86_400.0

# Busyness tiers: (median wait at average load in seconds, mean pending jobs at average load).
_TIERS: dict[str, tuple[float, float]] = {
    "none": (0.0, 0.0),
    "idle": (20.0, 2.0),
    "moderate": (240.0, 40.0),
    "busy": (900.0, 250.0),
    "very_busy": (2700.0, 1200.0),
}
# Which tier the i-th default device of a provider gets (index modulo the length).
_TIER_ORDER: dict[str, tuple[str, ...]] = {
    "ibm": ("busy", "moderate", "very_busy", "idle"),
    "braket": ("very_busy", "moderate", "busy", "idle"),
    "local": ("none",),
}
# Braket counts tasks (many small ones per user), so its reported queues run longer.
_PENDING_FACTOR: dict[str, float] = {"ibm": 1.0, "braket": 3.0, "local": 0.0}
# When the load peaks (UTC hour) for each style: US and European working hours overlap.
_PEAK_HOUR: dict[str, float] = {"ibm": 15.0, "braket": 18.0, "local": 12.0}


@dataclass(frozen=True)
class Window:
    """A span of virtual time (``time.time()``-style seconds) during which the device is down.

    ``every`` repeats the window with that period (e.g. ``7 * 86400`` for weekly maintenance).
    """

    start: float
    end: float
    status: DeviceStatus = DeviceStatus.MAINTENANCE
    every: float | None = None

    def __post_init__(self) -> None:
        if not self.end > self.start:
            raise ConfigError(f"a window must end after it starts, got {self.start}..{self.end}")
        if self.every is not None and self.every < self.end - self.start:
            raise ConfigError("a repeating window must be shorter than its period")
        if self.status is DeviceStatus.ONLINE:
            raise ConfigError("a window marks the device down: use OFFLINE or MAINTENANCE")

    def covering(self, at: float) -> tuple[float, float] | None:
        """The occurrence ``(start, end)`` that contains ``at``, if any."""
        start = self.start
        if self.every is not None and at >= self.start:
            start += math.floor((at - self.start) / self.every) * self.every
        end = start + (self.end - self.start)
        return (start, end) if start <= at < end else None


def _stable_seed(*parts: object) -> int:
    """A seed from text, identical across processes (unlike ``hash()``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class QueueModel:
    """The queue in front of one device. Durations are virtual (real-world) seconds unless a
    name says ``scaled``; times are virtual ``time.time()``-style timestamps.

    Attributes:
        style: how the queue is reported ("ibm", "braket" or "local").
        median_wait_s: median wait at average load (0: no external queue).
        sigma: lognormal shape of the wait; mean/median = exp(sigma**2 / 2).
        max_wait_s: no sampled external wait exceeds this.
        pending_mean: mean number of other users' jobs waiting at average load.
        daily_amplitude: relative swing of the load over a day, in [0, 1).
        peak_hour_utc: hour of day at which the load peaks.
        run_s: typical run time of one job, used for jobs of this process queued ahead.
        time_scale: caller-experienced seconds per virtual second (0: jobs never wait, the
            queue is still reported).
        seed: seeds the wait sequence of a :class:`QueuedDevice` and the report jitter.
        windows: outages and maintenance windows.
    """

    style: QueueStyle = "ibm"
    median_wait_s: float = 240.0
    sigma: float = 1.3
    max_wait_s: float = 6 * 3600.0
    pending_mean: float = 40.0
    daily_amplitude: float = 0.6
    peak_hour_utc: float = 15.0
    run_s: float = 10.0
    time_scale: float = 1.0
    seed: int = 0
    windows: tuple[Window, ...] = ()

    def __post_init__(self) -> None:
        if self.style not in ("ibm", "braket", "local"):
            raise ConfigError(f"queue style must be 'ibm', 'braket' or 'local', got {self.style!r}")
        for name in ("median_wait_s", "sigma", "max_wait_s", "pending_mean", "run_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"queue model {name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.daily_amplitude < 1:
            raise ConfigError(f"daily_amplitude must be in [0, 1), got {self.daily_amplitude}")
        if not self.time_scale >= 0:
            raise ConfigError(f"time_scale must be >= 0 (0: no waiting), got {self.time_scale}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_device(
        cls,
        spec: str,
        *,
        style: str = "ibm",
        index: int = 0,
        time_scale: float = DEFAULT_TIME_SCALE,
    ) -> QueueModel:
        """A distinct, reproducible profile for a device of the default fleet.

        ``style`` is the provider's name (unknown providers are reported IBM style);
        ``index`` the device's position among its provider's defaults, which picks how busy
        it is (IBM: busy, moderate, very busy, idle; Braket: very busy first; local: no
        external queue). The exact figures are jittered by a hash of ``spec``.
        """
        qstyle: QueueStyle = style if style in ("ibm", "braket", "local") else "ibm"  # type: ignore[assignment]
        order = _TIER_ORDER[qstyle]
        median, pending = _TIERS[order[index % len(order)]]
        rng = random.Random(_stable_seed("queue-profile", spec))
        jitter = math.exp(rng.gauss(0.0, 0.3))
        return cls(
            style=qstyle,
            median_wait_s=round(median * jitter, 1),
            sigma=round(rng.uniform(1.1, 1.5), 2),
            pending_mean=round(pending * _PENDING_FACTOR[qstyle] * jitter, 1),
            daily_amplitude=0.0 if qstyle == "local" else round(rng.uniform(0.4, 0.7), 2),
            peak_hour_utc=(_PEAK_HOUR[qstyle] + rng.uniform(-2.0, 2.0)) % 24,
            run_s=2.0 if qstyle == "local" else 10.0,
            time_scale=time_scale,
            seed=_stable_seed("queue-waits", spec),
        )

    def with_time_scale(self, time_scale: float) -> QueueModel:
        """The same queue with another time scale (1.0: real-world waits, 0: no waiting)."""
        return replace(self, time_scale=time_scale)

    def with_windows(self, *windows: Window) -> QueueModel:
        """The same queue with these outage/maintenance windows added."""
        return replace(self, windows=(*self.windows, *windows))

    def with_seed(self, seed: int) -> QueueModel:
        return replace(self, seed=seed)

    def rng(self) -> random.Random:
        """A fresh generator for this model's wait sequence."""
        return random.Random(self.seed)

    # ------------------------------------------------------------------ load and availability
    def load(self, at: float) -> float:
        """Relative load at virtual time ``at`` (1.0 on average over a day)."""
        hour = (at % _DAY_S) / 3600.0
        return 1.0 + self.daily_amplitude * math.cos(2 * math.pi * (hour - self.peak_hour_utc) / 24)

    def window_at(self, at: float) -> tuple[float, float, DeviceStatus] | None:
        """The outage/maintenance occurrence containing ``at`` (the one ending last)."""
        found: tuple[float, float, DeviceStatus] | None = None
        for w in self.windows:
            span = w.covering(at)
            if span is not None and (found is None or span[1] > found[1]):
                found = (span[0], span[1], w.status)
        return found

    def status_at(self, at: float) -> DeviceStatus:
        """ONLINE, or the status of the window containing ``at``."""
        window = self.window_at(at)
        return DeviceStatus.ONLINE if window is None else window[2]

    def next_available(self, at: float) -> float:
        """The first virtual time >= ``at`` outside every window."""
        for _ in range(1000):  # overlapping windows: step past each in turn
            window = self.window_at(at)
            if window is None:
                return at
            at = window[1]
        return at

    # ------------------------------------------------------------------ waits (pure)
    def sample_wait(self, at: float, rng: random.Random, *, ahead: int = 0) -> float:
        """Virtual seconds a job submitted at ``at`` waits before it runs, not counting
        downtime: a lognormal draw around the load-scaled median (capped at ``max_wait_s``)
        plus ``run_s`` for each of ``ahead`` jobs of this process queued before it."""
        wait = 0.0
        if self.median_wait_s > 0:
            median = self.median_wait_s * self.load(at)
            wait = min(median * math.exp(self.sigma * rng.gauss(0.0, 1.0)), self.max_wait_s)
        return wait + max(ahead, 0) * self.run_s

    def start_time(self, at: float, rng: random.Random, *, ahead: int = 0) -> float:
        """Virtual time at which a job submitted at ``at`` starts: its sampled wait, pushed
        past any outage or maintenance window it would otherwise start in."""
        return self.next_available(at + self.sample_wait(at, rng, ahead=ahead))

    def expected_wait(self, at: float, *, ahead: int = 0) -> float:
        """Mean virtual wait at ``at`` (the mean of the capped lognormal, plus own jobs)."""
        wait = 0.0
        if self.median_wait_s > 0:
            median = self.median_wait_s * self.load(at)
            wait = _capped_lognormal_mean(median, self.sigma, self.max_wait_s)
        return wait + max(ahead, 0) * self.run_s

    def pending_jobs(self, at: float, *, own: int = 0) -> int:
        """Jobs waiting at ``at``: other users' (load-scaled, jittered per 10-minute slot,
        deterministic) plus ``own`` jobs of this process."""
        others = 0
        if self.pending_mean > 0:
            slot = math.floor(at / 600.0)
            jitter = random.Random(_stable_seed("pending", self.seed, slot)).lognormvariate(0, 0.25)
            others = round(self.pending_mean * self.load(at) * jitter)
        return others + max(own, 0)

    # ------------------------------------------------------------------ reports
    def scaled(self, virtual_s: float) -> float:
        """Seconds a caller experiences for ``virtual_s`` virtual seconds."""
        return virtual_s * self.time_scale

    def queue_estimate(self, at: float, *, own: int = 0) -> QueueEstimate:
        """The queue as the vendor would report it at ``at``, with ``own`` of this process's
        jobs waiting. ``expected_wait_s`` is in caller-experienced (scaled) seconds."""
        pending = self.pending_jobs(at, own=own)
        wait = self.scaled(self.expected_wait(at, ahead=own))
        if self.style == "braket" and pending > BRAKET_TASK_CAP:
            return QueueEstimate(
                pending_jobs=BRAKET_TASK_CAP,
                expected_wait_s=wait,
                source="model",
                raw=f">{BRAKET_TASK_CAP}",
                capped=True,
            )
        raw = str(pending) if self.style == "braket" else None
        return QueueEstimate(pending_jobs=pending, expected_wait_s=wait, source="model", raw=raw)

    def describe(self) -> str:
        """One line for listings, e.g. ``'ibm queue, median 15.0 min, x1/10000'``."""
        if self.median_wait_s <= 0:
            what = "no external queue"
        elif self.median_wait_s < 120:
            what = f"median {self.median_wait_s:.0f} s"
        else:
            what = f"median {self.median_wait_s / 60:.1f} min"
        return f"{self.style} queue, {what}, time x{self.time_scale:g}"


def _capped_lognormal_mean(median: float, sigma: float, cap: float) -> float:
    """E[min(X, cap)] for X lognormal with the given median and shape."""
    if sigma == 0 or median <= 0:
        return min(median, cap)
    mu = math.log(median)
    c = (math.log(cap) - mu) / sigma
    phi = _normal_cdf
    below = math.exp(mu + sigma**2 / 2) * phi(c - sigma)
    return below + cap * (1.0 - phi(c))


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
