"""Options of ``fleet.sample`` / ``fleet.run`` / ``fleet.resume``, validated up front."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from multiqpu.errors import InvalidInputError
from multiqpu.scheduler._policy import POLICIES, PolicyName
from multiqpu.trust import Trust

if TYPE_CHECKING:
    from multiqpu.journal import Journal

__all__ = ["DEFAULT_RATE_LIMITS", "Options", "parse_options"]

#: Submissions per second allowed per provider (calls, period in seconds).
DEFAULT_RATE_LIMITS: dict[str, tuple[int, float]] = {"ibm": (5, 1.0), "braket": (10, 1.0)}


@dataclass(frozen=True)
class Options:
    """Everything that shapes a run (see docs/scheduler.md for each option).

    Attributes:
        policy: ``"balanced"`` (default), ``"fastest"``, ``"most_accurate"``, ``"cheapest"``.
        fidelity_floor: devices whose estimated fidelity for a circuit is below this are
            never used for it.
        fidelity_margin: ``balanced`` only: the run's mean estimated fidelity stays within
            this (relative) of what ``most_accurate`` would reach (a fidelity budget for the
            whole run, not a per-circuit margin); no circuit goes to a device more than 5x
            this below its best one.
        max_slowdown: ``balanced`` only: the plan's makespan is never longer than this
            times that of the fastest plan on the same estimates (every device that fits,
            any fidelity); within it, the plan is as accurate as the fidelity margin asks
            or, when that is too slow, as accurate as it can be; when a job already
            submitted runs late past it, the run falls back to ``fastest`` (the report's
            ``limits["max_slowdown_fallback"]``). Default 1.5. Setting
            ``fidelity_margin`` without it makes the margin a hard target (None).
        budget_usd: total spend allowed (estimated prices); placement keeps it feasible.
            Devices that cannot price a circuit (``estimate_cost`` fails) are not used for
            it when a budget is set; a circuit no device can price is refused up front.
        deadline_s: a run still unfinished after this many seconds is cancelled (its
            submitted jobs too) and raises :class:`~multiqpu.JobError`; placement prefers
            devices expected to make it.
        concurrency: jobs in flight per device: one number for all, or ``{spec: n}``;
            default each device's ``limits.max_concurrent_jobs``.
        cache: serve identical (circuit, shots, device, calibration) results from the
            journal's cache. None (the default): exact results (``shots=None``) only, which
            are the same whenever they are computed; True: sampled results too (a cached
            sampled result is the same random draw as before, not a fresh one); False: never.
        journal: a path, a :class:`~multiqpu.journal.Journal`, ``True`` (the default: the
            file named by ``$MULTIQPU_JOURNAL`` or the per-user data directory's
            ``journal.sqlite``) or None (no journal; nothing is recorded and nothing can be
            resumed).
        progress: a progress bar per device; None: when the run is long (over 200
            circuits). Never drawn when stderr is not a terminal or ``MULTIQPU_PROGRESS=0``.
        hedging: copy stragglers to idle devices in the tail of a run, and jobs that
            overrun their estimate (at any time) to the device that would finish them first.
        retries: attempts per submission on transient provider errors.
        backoff_s: first retry delay (exponential with jitter, capped at 30 x this).
        rate_limits: ``{provider: (calls, period_s)}`` submissions allowed per provider.
        job_timeout_s: a job older than this is cancelled and its circuits moved; by
            default a limit derived from the device's learned wait and the job's run time,
            judged on the first of our open jobs on each device only (see
            ``Core.timeouts``).
        min_job_s: every job holds at least this many seconds of estimated work (as
            many circuits of one shots value as that takes, within the device's
            ``max_circuits_per_job``), whatever the job sizing would choose; default 0.
            Each job costs the driver a few milliseconds of bookkeeping, so many small
            circuits on fast simulators run fewer, larger jobs with it.
        explore: give each device never used before one single-circuit job, to learn its
            real queue.
        run_id: the id to record the run under (default: a new one).
        split_shots: split a circuit's shots over several devices: ``"auto"`` (the
            default: only when ``policy="fastest"`` or a ``deadline_s`` asks for speed),
            ``True`` or ``False``. Shots above a device's cap are always split into parts
            on one device. See docs/shots.md.
        trust: canary circuits, a sequential test per device and quarantine
            (:class:`multiqpu.trust.Trust`; ``True``: the defaults). See docs/trust.md.
    """

    policy: PolicyName = "balanced"
    fidelity_floor: float | None = None
    fidelity_margin: float = 0.02
    max_slowdown: float | None = 1.5
    budget_usd: float | None = None
    deadline_s: float | None = None
    concurrency: int | Mapping[str, int] | None = None
    cache: bool | None = None
    journal: str | os.PathLike[str] | Journal | bool | None = True
    progress: bool | None = None
    hedging: bool = True
    retries: int = 5
    backoff_s: float = 1.0
    rate_limits: Mapping[str, tuple[int, float]] = field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS)
    )
    job_timeout_s: float | None = None
    min_job_s: float = 0.0
    explore: bool = True
    run_id: str | None = None
    split_shots: str | bool = "auto"
    trust: Trust | None = None

    def recordable(self) -> dict[str, Any]:
        """The options as stored with the run in the journal (JSON-safe, no journal)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "journal"}
        if isinstance(self.concurrency, Mapping):
            out["concurrency"] = dict(self.concurrency)
        out["rate_limits"] = {k: list(v) for k, v in self.rate_limits.items()}
        out["trust"] = None if self.trust is None else self.trust.to_dict()
        return out


_NAMES = tuple(f.name for f in fields(Options))


def _number(name: str, value: Any, *, low: float = 0.0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    if not (value >= low and (high is None or value <= high)):
        span = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InvalidInputError(f"{name} must be {span}, got {value!r}")
    return float(value)


def parse_options(policy: str = "balanced", **options: Any) -> Options:
    """Validate keyword options; unknown names raise :class:`InvalidInputError`."""
    unknown = sorted(set(options) - set(_NAMES))
    if unknown:
        raise InvalidInputError(
            f"unknown scheduler option(s) {', '.join(map(repr, unknown))}; accepted: "
            f"{', '.join(n for n in _NAMES if n != 'policy')}"
        )
    if policy not in POLICIES:
        raise InvalidInputError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if "fidelity_margin" in options and "max_slowdown" not in options:
        options["max_slowdown"] = None  # a margin the user set is a hard target
    if options.get("trust") is True:
        options["trust"] = Trust()
    elif options.get("trust") is False:
        options["trust"] = None
    elif isinstance(options.get("trust"), Mapping):  # as recorded in the journal (resume)
        options["trust"] = Trust(**options["trust"])
    if options.get("trust") is not None and not isinstance(options["trust"], Trust):
        raise InvalidInputError(
            f"trust must be a multiqpu.trust.Trust (or True for the defaults), "
            f"got {options['trust']!r}"
        )
    opts = Options(policy=policy, **options)
    if opts.max_slowdown is not None and _number("max_slowdown", opts.max_slowdown) < 1.0:
        raise InvalidInputError(f"max_slowdown must be >= 1, got {opts.max_slowdown!r}")
    if opts.fidelity_floor is not None:
        _number("fidelity_floor", opts.fidelity_floor, high=1.0)
    _number("fidelity_margin", opts.fidelity_margin, high=1.0)
    if opts.budget_usd is not None:
        _number("budget_usd", opts.budget_usd)
    if opts.deadline_s is not None and _number("deadline_s", opts.deadline_s) <= 0:
        raise InvalidInputError("deadline_s must be > 0")
    if opts.job_timeout_s is not None and _number("job_timeout_s", opts.job_timeout_s) <= 0:
        raise InvalidInputError("job_timeout_s must be > 0")
    _number("min_job_s", opts.min_job_s)
    if isinstance(opts.retries, bool) or not isinstance(opts.retries, int) or opts.retries < 1:
        raise InvalidInputError(f"retries must be an integer >= 1, got {opts.retries!r}")
    _number("backoff_s", opts.backoff_s)
    from multiqpu.scheduler._shots import check_split

    check_split(opts.split_shots)
    if opts.cache not in (True, False, None):
        raise InvalidInputError(f"cache must be True, False or None, got {opts.cache!r}")
    conc = opts.concurrency
    values = conc.values() if isinstance(conc, Mapping) else [] if conc is None else [conc]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidInputError(f"concurrency must be a positive integer, got {v!r}")
    if not isinstance(opts.rate_limits, Mapping):
        raise InvalidInputError(
            f"rate_limits must be {{provider: (calls, period_s)}}, got {opts.rate_limits!r}"
        )
    for provider, limit in opts.rate_limits.items():
        ok = isinstance(limit, tuple | list) and len(limit) == 2
        ok = ok and all(isinstance(x, int | float) and not isinstance(x, bool) for x in limit)
        if not ok or not (limit[0] >= 1 and limit[1] > 0):
            raise InvalidInputError(
                f"rate_limits[{provider!r}] must be (calls, period_s), got {limit!r}"
            )
    return opts
