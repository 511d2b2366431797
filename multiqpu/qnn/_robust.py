"""Byzantine-robust aggregation of per-device gradients, and the outlier tally.

The trainer's ``aggregator=`` takes a name (or any ``f(rows, weights) -> row``):

* ``"mean"`` (default): the weighted mean (FedAvg);
* ``"median"``: the coordinate-wise median (FedMedian; Yin et al. ICML'18);
* ``"trimmed_mean"``: per coordinate, the ``trim`` fraction of the largest and of the
  smallest values dropped, the rest averaged (FedTrimmedAvg; Yin et al.); ``byzantine=f``
  drops at least ``f`` at each end (``floor(trim * m)`` alone drops only one row of seven
  at the default 0.2, too few against two adversaries);
* ``"krum"``: the row whose ``m - f - 2`` nearest rows are closest (Blanchard et al.
  NeurIPS'17), ``f`` = ``byzantine``, the number of dishonest devices assumed;
* ``"multi_krum"``: the mean of the ``m - f`` rows with the best Krum scores.

Rows are per *device*: in synchronous training one row is one device's shard of the batch
(a device's late shard from an earlier step is one more row of its own); in local-update
training one row is one device's weight change over the round. Asynchronous training steps
on per-sample rows from whichever devices finished first, so a robust rule there has no
per-device population to vote over: the trainer refuses it (and quarantine) up front; with
``"mean"`` there it averages but tallies no outliers.

Outliers: at every step each row's distance to the robust aggregate (the coordinate median
for ``"mean"``) is compared with the median distance; a row beyond ``k_mad`` median absolute
deviations is flagged. A device flagged in more than ``majority`` of at least ``min_steps``
steps it took part in is an outlier (``History.outliers``); with ``quarantine=True`` it gets
no more shards, and counts against the adversaries assumed: with ``q`` devices quarantined,
Krum, Multi-Krum and the trimmed mean assume ``byzantine - q`` among the rest (otherwise
Multi-Krum would go on discarding ``byzantine`` honest rows every step).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from multiqpu.errors import InvalidInputError

__all__ = [
    "AGGREGATORS",
    "RobustAggregator",
    "check_defences",
    "combine",
    "coordinate_median",
    "krum_scores",
    "multi_krum",
    "trimmed_mean",
]

AGGREGATORS = ("mean", "median", "trimmed_mean", "krum", "multi_krum")


def coordinate_median(rows: np.ndarray) -> np.ndarray:
    """The coordinate-wise median of the rows."""
    return np.asarray(np.median(rows, axis=0))


def trimmed_mean(rows: np.ndarray, trim: float, at_least: int = 0) -> np.ndarray:
    """Per coordinate, the mean after dropping ``max(floor(trim * m), at_least)`` largest
    and smallest values (at most ``(m - 1) // 2``: one value is always kept)."""
    m = len(rows)
    k = min(max(math.floor(trim * m), at_least), (m - 1) // 2)
    s = np.sort(rows, axis=0)
    return np.asarray(s[k : m - k].mean(axis=0))


def krum_scores(rows: np.ndarray, f: int) -> np.ndarray:
    """Each row's Krum score: the sum of squared distances to its ``m - f - 2`` nearest
    other rows (at least one)."""
    m = len(rows)
    d2 = ((rows[:, None, :] - rows[None, :, :]) ** 2).sum(axis=-1)
    near = max(1, m - f - 2)
    d2 = np.sort(d2, axis=1)[:, 1 : near + 1]  # column 0 is the row itself
    return np.asarray(d2.sum(axis=1))


def multi_krum(rows: np.ndarray, weights: np.ndarray, f: int, keep: int) -> np.ndarray:
    """The weighted mean of the ``keep`` rows with the lowest Krum scores."""
    best = np.argsort(krum_scores(rows, f), kind="stable")[:keep]
    w = weights[best] / weights[best].sum()
    return np.asarray(np.tensordot(w, rows[best], axes=1))


class RobustAggregator:
    """A named aggregation rule that also tallies, per device, how often its rows are
    outliers. Callable as a plain aggregator; the strategies call :meth:`combine` with the
    device of every row."""

    def __init__(
        self,
        kind: str,
        devices: int,
        *,
        trim: float = 0.2,
        byzantine: int | None = None,
        k_mad: float = 3.0,
        majority: float = 0.5,
        min_steps: int = 3,
    ) -> None:
        if kind not in AGGREGATORS:
            raise InvalidInputError(f"aggregator must be one of {AGGREGATORS}, got {kind!r}")
        if not 0.0 <= trim < 0.5:
            raise InvalidInputError(f"trim must be in [0, 0.5), got {trim}")
        if byzantine is None:  # Krum assumes one adversary; the trimmed mean, trim alone
            byzantine = 0 if kind == "trimmed_mean" else 1
        if byzantine < 0:
            raise InvalidInputError(f"byzantine must be >= 0, got {byzantine}")
        self.kind = kind
        self.trim = trim
        self.byzantine = byzantine
        self.k_mad = k_mad
        self.majority = majority
        self.min_steps = min_steps
        # the trainer's quarantine flags (shared): each quarantined device is one of the f
        self.excluded: np.ndarray | None = None
        self.seen = np.zeros(devices, dtype=int)  # steps each device had a row in
        self.flagged = np.zeros(devices, dtype=int)  # ... and was flagged in

    def __call__(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return self.combine(rows, weights, None)

    def aggregate(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The rule applied to ``rows`` (m, P) with ``weights`` (m,). Krum's guarantee needs
        ``m >= 2f + 3`` rows; with fewer (a device given no sample of a small batch, or
        quarantined) ``f`` is kept (Multi-Krum then averages the ``m - f`` best rows, Krum
        scores on at least the nearest row), and below 3 rows the coordinate median is
        used."""
        w = np.asarray(weights, dtype=float)
        m = len(rows)
        if self.kind == "mean":
            return np.asarray(np.tensordot(w / w.sum(), rows, axes=1))
        if self.kind == "median" or (self.kind in ("krum", "multi_krum") and m < 3):
            return coordinate_median(rows)
        byzantine = self.assumed()
        if self.kind == "trimmed_mean":
            return trimmed_mean(rows, self.trim, byzantine)
        f = min(byzantine, m - 1)  # f is not lowered: the adversaries may all be here
        return multi_krum(rows, w, f, 1 if self.kind == "krum" else m - f)

    def assumed(self) -> int:
        """Adversaries assumed among the devices still in training: ``byzantine`` less
        the quarantined devices."""
        q = 0 if self.excluded is None else int(self.excluded.sum())
        return max(self.byzantine - q, 0)

    def combine(
        self, rows: np.ndarray, weights: np.ndarray, devices: np.ndarray | None
    ) -> np.ndarray:
        """:meth:`aggregate`, tallying outliers when the device of each row is known."""
        out = self.aggregate(rows, weights)
        if devices is not None and len(rows) >= 3:
            ref = coordinate_median(rows) if self.kind == "mean" else out
            dist = np.linalg.norm(rows - ref[None, :], axis=1)
            med = float(np.median(dist))
            mad = max(float(np.median(np.abs(dist - med))), 1e-9 * max(med, 1e-300))
            bad = dist > med + self.k_mad * mad
            devs = np.asarray(devices, dtype=int)
            self.seen[np.unique(devs)] += 1
            self.flagged[np.unique(devs[bad])] += 1
        return out

    def outliers(self) -> np.ndarray:
        """Indexes of the devices flagged in more than ``majority`` of their steps."""
        ok = self.seen >= self.min_steps
        rate = self.flagged / np.maximum(self.seen, 1)
        return np.flatnonzero(ok & (rate > self.majority))

    def rates(self) -> np.ndarray:
        """Each device's fraction of steps in which it was flagged."""
        return self.flagged / np.maximum(self.seen, 1)


def combine(
    aggregator: object, rows: np.ndarray, weights: np.ndarray, devices: np.ndarray
) -> np.ndarray:
    """Apply any aggregator, passing the rows' devices to one that tallies outliers."""
    if isinstance(aggregator, RobustAggregator):
        return aggregator.combine(rows, weights, devices)
    return np.asarray(aggregator(rows, weights))  # type: ignore[operator]


def check_defences(
    aggregator: object,
    trim: float | None,
    byzantine: int | None,
    quarantine: bool,
    privacy: object,
    *,
    aggregation: str,
    devices: int,
    backup: int,
    weighting: str,
) -> Any:
    """The trainer's aggregator from its options, refusing combinations that cannot work."""
    from multiqpu.qnn._aggregation import weighted_mean

    named = isinstance(aggregator, str)
    if trim is not None and aggregator != "trimmed_mean":
        raise InvalidInputError("trim= applies to aggregator='trimmed_mean'")
    if byzantine is not None and aggregator not in ("krum", "multi_krum", "trimmed_mean"):
        raise InvalidInputError(
            "byzantine= applies to aggregator='krum', 'multi_krum' or 'trimmed_mean'"
        )
    if quarantine and (not named or aggregation == "async"):
        raise InvalidInputError(
            "quarantine=True needs a named aggregator (it tallies outliers) and per-device "
            "rows: aggregation='sync' or 'local'"
        )
    if privacy is not None:
        if aggregation != "sync" or backup or weighting != "size":
            raise InvalidInputError(
                "privacy= (DP-SGD) needs aggregation='sync' without backup workers and "
                "weighting='size': every step must average exactly its batch's clipped "
                "per-sample gradients for the noise to match the accountant"
            )
        if aggregator not in (None, "mean"):
            raise InvalidInputError(
                "privacy= adds noise to the mean of clipped gradients; it cannot be combined "
                f"with aggregator={aggregator!r}"
            )
        return weighted_mean
    if not named:
        return aggregator if aggregator is not None else weighted_mean
    robust = RobustAggregator(str(aggregator), devices, trim=0.2 if trim is None else trim,
                              byzantine=byzantine)  # fmt: skip
    if aggregator != "mean" and aggregation == "async":
        raise InvalidInputError(
            f"aggregator={aggregator!r} votes over per-device gradients; asynchronous "
            "training steps on per-sample gradients from whichever devices finished first, "
            "so there is no per-device population: use aggregation='sync' or 'local'"
        )
    if aggregator == "trimmed_mean" and devices - backup < 2 * robust.byzantine + 1:
        raise InvalidInputError(
            f"trimmed_mean with byzantine={robust.byzantine} needs at least "
            f"{2 * robust.byzantine + 1} devices per step, this training has "
            f"{devices - backup} ({devices} devices, backup={backup})"
        )
    if aggregator in ("krum", "multi_krum"):
        f = robust.byzantine
        rows = devices - backup
        if rows < 2 * f + 3:
            raise InvalidInputError(
                f"{aggregator} with byzantine={f} needs at least {2 * f + 3} devices per "
                f"step, this training has {rows} ({devices} devices, backup={backup})"
            )
    return robust
