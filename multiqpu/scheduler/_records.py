"""What the placement core keeps per job and per device, and what it hands its driver."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Delivery", "DeviceQueue", "JobRecord", "Submission"]


@dataclass(frozen=True)
class Submission:
    """A job the driver must submit now: tasks ``idx`` (of classes ``cls``) on ``device``."""

    job_id: int
    device: int
    idx: np.ndarray
    cls: np.ndarray
    group: int
    hedge_of: int | None = None


@dataclass(frozen=True)
class Delivery:
    """A finished job whose results are new: deliver tasks ``idx`` (of classes ``cls``),
    which are the job's results at ``positions``; cancel the jobs ``cancel``."""

    job_id: int
    device: int
    idx: np.ndarray
    cls: np.ndarray
    positions: np.ndarray
    cancel: tuple[int, ...] = ()


@dataclass(eq=False)
class JobRecord:
    job_id: int
    device: int
    idx: np.ndarray
    cls: np.ndarray
    group: int
    submitted: float
    exec_s: float  # expected execution time (learned speed and overhead applied)
    raw_s: float  # cost-model prediction, for learning
    prior_wait: float  # the report-based prior at submission, for learning
    origin: int | None = None  # a hedge: the straggler it copies part of
    offset: np.ndarray | None = None  # a hedge: its tasks' positions in the origin
    hedges: list[int] = field(default_factory=list)  # a straggler: its live hedges
    done: np.ndarray | None = None  # a straggler: tasks already delivered by hedges
    rounds: int = 0  # a straggler: how many times it was hedged
    deadline: float = 0.0  # when it is late: a pessimistic finish estimate at submission
    expected_end: float = 0.0
    started: bool = False  # the driver said it started running
    redundant: bool = False  # a queued copy (of the whole origin), cancelled if it loses the start
    charge: float = 0.0  # a copy or hedge: fidelity loss charged (refunded if it never delivers)
    in_session: bool = False  # sent into a live session: its wait says nothing of the queue
    dearer: float = 0.0  # a queued copy: price over its origin's, charged (refunded likewise)
    overrun_at: float = float("inf")  # when it overruns its estimate (see _overrun)
    hedge_n: int = 0  # a hedge: circuits charged to the hedge budget (refunded if it never ran)
    classes: np.ndarray | None = None  # its distinct classes (``np.unique(cls)``), once asked
    # the devices the policy prefers for all its classes (as a bit set too), and the masks
    # that said so
    everywhere: tuple[object, np.ndarray, int] | None = None

    def unique_classes(self) -> np.ndarray:
        if self.classes is None:
            self.classes = np.unique(self.cls)
        return self.classes


@dataclass
class DeviceQueue:
    local: deque[tuple[np.ndarray, np.ndarray]] = field(default_factory=deque)
    jobs: dict[int, JobRecord] = field(default_factory=dict)
