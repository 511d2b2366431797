"""Online run statistics: per-device sums updated per finished job, O(devices) memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from multiqpu.scheduler._tables import ClassTables

__all__ = ["Stats"]


class Stats:
    """What happened in a run, aggregated as it happens (nothing stored per task)."""

    def __init__(self, n_devices: int, *, start: float) -> None:
        self.start = start
        self.end = start
        self.jobs = np.zeros(n_devices, dtype=np.int64)  # jobs whose results were used
        self.submitted = np.zeros(n_devices, dtype=np.int64)  # jobs submitted (any outcome)
        self.failures = np.zeros(n_devices, dtype=np.int64)
        self.circuits = np.zeros(n_devices, dtype=np.int64)
        self.shots = np.zeros(n_devices, dtype=np.int64)
        self.wait_s = np.zeros(n_devices)
        self.waited_jobs = np.zeros(n_devices, dtype=np.int64)
        self.exec_s = np.zeros(n_devices)
        self.fidelity = np.zeros(n_devices)
        self.cost_usd = np.zeros(n_devices)  # of the circuits whose price is known
        self.unpriced = np.zeros(n_devices, dtype=np.int64)  # circuits of unknown price
        self.last_result = np.full(n_devices, np.nan)
        self.delivered = 0
        self.placements = 0
        self.place_s = 0.0
        self.core_s = 0.0
        self.retries = 0
        self.hedges = 0  # hedge jobs submitted
        self.hedged_jobs = 0  # stragglers that got hedges
        self.hedged_circuits = 0
        self.hedge_refunds = 0  # of those, circuits of copies that never ran (or failed)
        self.hedges_won = 0  # hedge jobs whose results were used
        self.overrun_hedges = 0  # jobs hedged for overrunning their estimate (_overrun)
        self.steals = 0
        self.failovers = 0
        self.cached = 0
        self.probes = 0
        self.redundant = 0  # queued copies submitted (see _hedging.copies)
        self.dropped: list[int] = []
        # circuits delivered per (class, device): the most_accurate bound (_whatif.lower_bound)
        self.by_class: np.ndarray | None = None
        # balanced: which limit bound each plan ("fidelity_margin" / "max_slowdown"), and
        # the limits a run met otherwise ("deadline_s", "budget_usd", "soft_floor")
        self.limits: dict[str, int] = {}

    def record(
        self,
        d: int,
        idx: np.ndarray,
        cls: np.ndarray,
        tables: ClassTables,
        now: float,
        queue_s: float | None,
        execution_s: float | None,
    ) -> None:
        n = len(idx)
        self.jobs[d] += 1
        self.circuits[d] += n
        if self.by_class is None:
            self.by_class = np.zeros(tables.fidelity.shape, dtype=np.int64)
        np.add.at(self.by_class[:, d], cls, 1)
        self.shots[d] += int(tables.shots[cls].sum())
        if queue_s is not None:
            self.wait_s[d] += queue_s
            self.waited_jobs[d] += 1
        if execution_s is not None:
            self.exec_s[d] += execution_s
        self.fidelity[d] += float(tables.fidelity[cls, d].sum())
        price = tables.price[cls, d]
        unknown = np.isnan(price)
        if unknown.any():  # a device that cannot price them: counted apart, not as free
            self.unpriced[d] += int(unknown.sum())
            price = price[~unknown]
        self.cost_usd[d] += float(price.sum())
        self.delivered += n
        self.end = max(self.end, now)
        self.last_result[d] = now

    @property
    def makespan(self) -> float:
        return self.end - self.start

    def mean_fidelity(self) -> float:
        total = int(self.circuits.sum())
        return float(self.fidelity.sum() / total) if total else float("nan")

    def placements_per_s(self) -> float:
        return self.placements / self.place_s if self.place_s > 0 else float("inf")
