"""How a batch is split over the devices of pipelined synchronous training
(:mod:`multiqpu.qnn._pipelined`): water-filled on each device's measured device time and
per-job overhead prior, rounded to whole samples by error diffusion, and each device's share
divided over the steps of a fused job."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from multiqpu.qnn._workers import Workers

__all__ = ["costs", "divide", "split", "water_fill"]


def water_fill(n: int, sample_s: np.ndarray, overhead_s: np.ndarray) -> np.ndarray:
    """Real-valued shares of ``n`` samples with equal ``overhead + share * sample_s`` on
    every device that gets any (a device whose overhead alone exceeds that time gets none)."""
    active = np.ones(len(sample_s), dtype=bool)
    x = np.zeros(len(sample_s))
    while active.any():
        inv = 1.0 / sample_s[active]
        t = (n + float(np.sum(overhead_s[active] * inv))) / float(np.sum(inv))
        x = np.where(active, (t - overhead_s) / sample_s, 0.0)
        if (x[active] >= 0).all():
            return x
        active &= x > 0
    return x


def costs(workers: Workers) -> tuple[np.ndarray, np.ndarray]:
    """Each device's device time per sample (measured; the median measured one, or 1 when
    none is, for devices not yet measured) and per-job overhead prior (none while nothing
    is measured: equal shares)."""
    per = workers.circuit_s * max(workers.model.circuits_per_sample, 1)
    known = np.isfinite(per) & (per > 0)
    fill = float(np.median(per[known])) if known.any() else 1.0
    per = np.where(known, per, fill)
    over = np.array([workers.executor.job_prior(d)[0] for d in range(workers.count)])
    if not known.any():
        over = np.zeros(workers.count)
    return per, over


def split(workers: Workers, n: int, active: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Whole-sample shares of ``n`` over the ``active`` devices: water-filled on device time
    (:func:`costs`), or equal with ``workers.equal`` (a robust aggregator), and rounded by
    error diffusion (``residual`` is updated in place)."""
    act = np.flatnonzero(active)
    x = np.zeros(workers.count)
    if workers.equal:
        x[act] = n / max(len(act), 1)
    else:
        per, over = costs(workers)
        x[act] = water_fill(n, per[act], over[act])
    residual[~active] = 0.0
    want = residual + x
    share = np.where(active, np.floor(np.maximum(want, 0.0)), 0).astype(int)
    while share.sum() < n:  # the largest residues round up
        share[int(np.argmax(np.where(active, want - share, -np.inf)))] += 1
    while share.sum() > n:  # carried residues overshot: the most rounded-up round down
        share[int(np.argmax(np.where(share > 0, share - want, -np.inf)))] -= 1
    residual[:] = np.where(active, want - share, 0.0)
    return share


def divide(shares: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Each device's share split over steps of ``sizes`` samples (their sum is
    ``shares.sum()``), in proportion, rounded by largest remainder: ``[step][device]``."""
    left, total, out = shares.astype(int).copy(), int(shares.sum()), []
    for k, size in enumerate(sizes):
        if k == len(sizes) - 1:
            out.append(left)
            break
        want = left * size / max(total, 1)
        part = np.floor(want).astype(int)
        for d in np.argsort(-(want - part), kind="stable")[: size - int(part.sum())]:
            part[d] += 1
        out.append(part)
        left, total = left - part, total - size
    return out
