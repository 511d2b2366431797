"""Before a run: ask the devices (status, queue report, calibration), build the cost tables,
set up the learner and the core's configuration, and fail fast if some circuit has nowhere
to run.

Unknown prices: a device that cannot price a circuit has price NaN in the tables (see
``_costmodel``). Without ``budget_usd`` it may still run the circuit (``cheapest`` ranks it
after every priced device; the report says which devices had unknown prices and that the
cost excludes them). With ``budget_usd`` it is not used for that circuit (its cost could not
be counted), and a circuit no device can price is refused before anything is submitted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from multiqpu.device import DeviceStatus
from multiqpu.errors import DeviceUnavailableError
from multiqpu.scheduler._core import CoreConfig
from multiqpu.scheduler._costmodel import Item, build_tables
from multiqpu.scheduler._feasibility import check_feasible
from multiqpu.scheduler._learning import Learner
from multiqpu.scheduler._options import Options
from multiqpu.scheduler._tables import ClassTables

if TYPE_CHECKING:
    from multiqpu.device import Device
    from multiqpu.pool import DevicePool

__all__ = [
    "REPORTED_JOB_S",
    "Probe",
    "concurrency",
    "core_config",
    "device_status",
    "fingerprints",
    "probe",
    "queue_report",
]

REPORTED_JOB_S = 60.0  # prior: seconds of wait per pending job when only a count is known
_STATUS_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Probe:
    """What a run knows before it submits anything (arrays per device in pool order)."""

    tables: ClassTables
    cls: np.ndarray  # class of each item
    alive: np.ndarray  # the device takes work now
    concurrency: list[int]
    max_batch: list[int]
    learner: Learner
    fingerprints: list[str | None]  # calibration fingerprints (None: unknown)
    config: CoreConfig
    unpriced: tuple[str, ...]  # devices that cannot price some circuit that fits there


async def device_status(device: Device) -> bool:
    """Whether the device takes work now (unknown counts as yes)."""
    try:
        status = await asyncio.wait_for(device.status(), _STATUS_TIMEOUT_S)
    except DeviceUnavailableError:
        return False
    except Exception:
        return True
    return status not in (DeviceStatus.OFFLINE, DeviceStatus.MAINTENANCE)


async def queue_report(device: Device) -> tuple[float, str]:
    """The queue report as a prior wait in seconds, and what kind of report it was."""
    try:
        q = await asyncio.wait_for(device.queue_estimate(), _STATUS_TIMEOUT_S)
    except Exception:
        return 0.0, "none"
    if q.expected_wait_s is not None:
        return max(float(q.expected_wait_s), 0.0), "estimate"
    if q.pending_jobs is not None:
        return max(float(q.pending_jobs), 0.0) * REPORTED_JOB_S, "pending"
    return 0.0, "none"


def concurrency(opts: Options, device: Device) -> int:
    """Jobs in flight allowed on ``device``."""
    c = opts.concurrency
    if c is None:
        return device.limits.max_concurrent_jobs
    if isinstance(c, int):
        return c
    return int(c.get(device.spec, c.get(device.name, device.limits.max_concurrent_jobs)))


def fingerprints(devices: Sequence[Device]) -> list[str | None]:
    """Each device's calibration fingerprint (None where it cannot give one)."""
    out: list[str | None] = []
    for d in devices:
        try:
            out.append(d.calibration().fingerprint())
        except Exception:
            out.append(None)
    return out


def core_config(opts: Options) -> CoreConfig:
    """The placement core's configuration for a run on real devices."""
    return CoreConfig(
        policy=opts.policy,
        fidelity_margin=opts.fidelity_margin,
        max_slowdown=opts.max_slowdown,
        budget_usd=opts.budget_usd,
        deadline_at=opts.deadline_s,
        hedging=opts.hedging,
        job_timeout_s=opts.job_timeout_s,
        min_job_s=opts.min_job_s,
        explore=opts.explore,
        # no queued copies: a copy is cancelled when another copy starts running, and the
        # executor watches starts only on session devices; elsewhere a copy that lost the
        # start would run to its end (and be paid for) like a hedge
        redundancy=0,
    )


def _exclude_unpriced(
    devices: Sequence[Device], tables: ClassTables, reasons: list[list[str | None]]
) -> ClassTables:
    """Under ``budget_usd``: a device cannot run a circuit it cannot price."""
    unpriced = tables.fits & np.isnan(tables.price)
    for c, d in zip(*np.nonzero(unpriced), strict=True):
        reasons[int(c)][int(d)] = (
            f"{devices[int(d)].spec} cannot price it (estimate_cost failed), and budget_usd is set"
        )
    return replace(tables, fits=tables.fits & ~unpriced)


async def probe(
    pool: DevicePool, items: Sequence[Item], opts: Options, indices: np.ndarray | None = None
) -> Probe:
    """Query the devices, build the cost tables and fail fast if ``indices`` (default:
    all circuits) cannot all run."""
    devices = list(pool)
    alive = await asyncio.gather(*(device_status(d) for d in devices))
    reports = await asyncio.gather(*(queue_report(d) for d in devices))
    tables, cls, reasons = await build_tables(devices, items)
    unpriced = (tables.fits & np.isnan(tables.price)).any(axis=0)
    if opts.budget_usd is not None and unpriced.any():
        tables = _exclude_unpriced(devices, tables, reasons)
    known = pool.knowledge
    learner = Learner(
        len(devices),
        reported_wait_s=[r[0] for r in reports],
        prior_overhead_s=[5.0 if d.imitates_qpu else 0.05 for d in devices],
        knowledge=[known.get(d.spec) for d in devices],
        report_kind=[r[1] for r in reports],
        # a simulator's run time has little to do with shots x gate durations
        speed_sigma=[0.3 if d.imitates_qpu else 3.0 for d in devices],
    )
    prints = await asyncio.to_thread(fingerprints, devices)
    check_feasible(devices, items, tables, cls, reasons, alive, opts, indices)
    return Probe(
        tables=tables,
        cls=cls,
        alive=np.array(alive, dtype=bool),
        concurrency=[concurrency(opts, d) for d in devices],
        max_batch=[d.limits.max_circuits_per_job for d in devices],
        learner=learner,
        fingerprints=prints,
        config=core_config(opts),
        unpriced=tuple(d.spec for d, u in zip(devices, unpriced.tolist(), strict=True) if u),
    )
