"""Trust checks on the devices of a run: canary circuits, a sequential test, quarantine.

A device the user does not control can return wrong counts (miscalibrated, drifting, faulty,
dishonest). With ``trust=Trust(...)`` the scheduler mixes **canary circuits** into the run:
mirror circuits (random Clifford layers followed by their inverse and a random final X
pattern), whose ideal outcome is one known bitstring, as wide as the run's circuits and about
as deep. Each canary is pinned to one device and batched with that device's other circuits, so
a device cannot tell it apart by where or when it runs.

**What "wrong" means: the device's own calibration.** From a device's calibration the
scheduler predicts the failure rate of each canary (``q0``: one minus the product of
(1 - error) over the transpiled canary's gates and readouts, widened by ``slack``); noise the
calibration announces is not a fault, so honest noisy devices pass. Against it stands the
alternative "on top of that, every measured bit flips with probability ``min_flip``":
``q1 = 1 - (1 - q0) (1 - min_flip)^width``. A **sequential probability ratio test** adds, per
canary result with ``k`` failed shots out of ``m``, ``k ln(q1/q0) + (m-k) ln((1-q1)/(1-q0))``
and flags the device once the sum reaches ``ln(1/alpha)``. The sum is floored at
``-ln(1/alpha)`` so that a drift starting late is still caught quickly.

Guarantee (Ville's inequality on the likelihood ratio, a supermartingale whenever the device's
true canary failure rate is at most ``q0``): an honest device is flagged with probability at
most ``alpha`` from the start, plus ``alpha**2`` per time the sum touched its floor.

**Quarantine** (``mode``): ``"flag"`` records the verdict and changes nothing; ``"quarantine"``
(the default) gives the flagged device no new work, cancels its open jobs and runs again
elsewhere every result it returned since its last passed check (the last canary after which
the sum was <= 0), recording in the journal which results were replaced and why;
``"fail"`` stops the run with :class:`~multiqpu.errors.UntrustedDeviceError`. The run report's
``trust`` (:class:`TrustReport`) says which device was flagged and why.

**Cross-device consistency**: :func:`consistency` compares one circuit's counts from two
devices, allowing shot noise plus the noise each device's calibration announces.

What this does not protect against: a device that recognises canaries (e.g. by their mirror
structure) and answers them honestly while corrupting the rest; corruption too small to move
a canary's failure rate (far below ``min_flip`` per bit) within the run's canary shots; exact
results (``shots=None``), which come from ideal simulators and carry no canaries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from multiqpu.errors import InvalidInputError

__all__ = [
    "CanaryTest",
    "Consistency",
    "DeviceVerdict",
    "Trust",
    "TrustMode",
    "TrustReport",
    "consistency",
]

TrustMode = Literal["flag", "quarantine", "fail"]
_MODES = ("flag", "quarantine", "fail")


@dataclass(frozen=True)
class Trust:
    """How a run checks its devices (see the module docstring).

    Attributes:
        canary_rate: the largest share of the run's shots spent on canaries (default 0.04).
            The canaries are dealt round-robin over the devices; a run too small to give a
            device one canary leaves it unchecked (the report says so).
        mode: ``"flag"``, ``"quarantine"`` (default) or ``"fail"``.
        alpha: the false-flag probability bound per honest device and run.
        min_flip: the smallest extra per-bit flip rate the test is designed to catch.
        slack: the predicted canary failure rate is ``slack * (1 - F) + 0.01`` (F: the
            calibration's fidelity of the transpiled canary), room for calibration error.
        max_layers: the most Clifford layers of a canary before its mirror.
        seed: seeds the canaries' random Clifford layers.
    """

    canary_rate: float = 0.04
    mode: TrustMode = "quarantine"
    alpha: float = 1e-3
    min_flip: float = 0.03
    slack: float = 1.5
    max_layers: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise InvalidInputError(f"Trust.mode must be one of {_MODES}, got {self.mode!r}")
        for name, value, low, high in (
            ("canary_rate", self.canary_rate, 0.0, 0.5),
            ("alpha", self.alpha, 1e-12, 0.5),
            ("min_flip", self.min_flip, 1e-4, 0.5),
            ("slack", self.slack, 1.0, 100.0),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInputError(f"Trust.{name} must be a number, got {value!r}")
            if not low <= value <= high:
                raise InvalidInputError(f"Trust.{name} must be in [{low}, {high}], got {value!r}")
        if isinstance(self.max_layers, bool) or not isinstance(self.max_layers, int):
            raise InvalidInputError(f"Trust.max_layers must be an int, got {self.max_layers!r}")
        if self.max_layers < 1:
            raise InvalidInputError(f"Trust.max_layers must be >= 1, got {self.max_layers}")

    def predicted_failure(self, fidelity: float) -> float:
        """``q0``: the canary failure rate an honest device may show, from its calibration's
        fidelity of the transpiled canary."""
        return min(0.9, self.slack * (1.0 - fidelity) + 0.01)

    def to_dict(self) -> dict[str, object]:
        return {
            "canary_rate": self.canary_rate,
            "mode": self.mode,
            "alpha": self.alpha,
            "min_flip": self.min_flip,
            "slack": self.slack,
            "max_layers": self.max_layers,
            "seed": self.seed,
        }


@dataclass
class CanaryTest:
    """The sequential test of one device (see the module docstring)."""

    alpha: float = 1e-3
    min_flip: float = 0.03
    statistic: float = 0.0
    shots: int = 0
    failures: int = 0
    canaries: int = 0
    floor_hits: int = 0
    flagged_at_shots: int | None = None
    expected_failures: float = 0.0

    @property
    def threshold(self) -> float:
        return math.log(1.0 / self.alpha)

    @property
    def flagged(self) -> bool:
        return self.flagged_at_shots is not None

    def update(self, failures: int, shots: int, q0: float, width: int) -> bool:
        """Add one canary result (``failures`` of ``shots`` missed the ideal outcome; ``q0``
        the predicted failure rate). Returns True when this result passed the check (the
        evidence so far favours an honest device)."""
        if not 0 <= failures <= shots:
            raise InvalidInputError(f"failures must be in [0, shots], got {failures}/{shots}")
        q0 = min(max(q0, 1e-6), 0.9)
        q1 = 1.0 - (1.0 - q0) * (1.0 - self.min_flip) ** max(width, 1)
        step = failures * math.log(q1 / q0) + (shots - failures) * math.log((1 - q1) / (1 - q0))
        self.statistic += step
        if self.statistic < -self.threshold:
            self.statistic = -self.threshold
            self.floor_hits += 1
        self.shots += shots
        self.failures += failures
        self.canaries += 1
        self.expected_failures += q0 * shots
        if not self.flagged and self.statistic >= self.threshold:
            self.flagged_at_shots = self.shots
        return self.statistic <= 0.0

    def why(self) -> str:
        return (
            f"{self.failures} of {self.shots} canary shots missed their ideal outcome where its "
            f"calibration allows about {self.expected_failures:.1f} (sequential test: log "
            f"likelihood ratio {self.statistic:.1f} >= {self.threshold:.1f})"
        )


@dataclass(frozen=True)
class DeviceVerdict:
    """What the canaries said about one device."""

    device: str
    canaries: int
    canary_shots: int
    failures: int
    expected_failures: float
    statistic: float
    flagged: bool
    reason: str | None = None
    #: circuit indices of the run whose results from this device were run again elsewhere
    rerun: tuple[int, ...] = ()


@dataclass(frozen=True)
class Consistency:
    """One circuit's counts from two devices compared (:func:`consistency`)."""

    distance: float  # total variation distance between the two empirical distributions
    allowed: float  # shot-noise bound + the noise each calibration announces
    consistent: bool


@dataclass(frozen=True)
class TrustReport:
    """The trust layer's account of a run (``report.trust``)."""

    mode: TrustMode
    canary_shots: int
    user_shots: int
    verdicts: tuple[DeviceVerdict, ...] = ()
    unchecked: tuple[str, ...] = ()  # devices that got no canary in this run
    #: (circuit index, device a, device b, comparison) for circuits run on two devices
    cross_checks: tuple[tuple[int, str, str, Consistency], ...] = field(default=())

    @property
    def flagged(self) -> tuple[str, ...]:
        return tuple(v.device for v in self.verdicts if v.flagged)

    @property
    def overhead(self) -> float:
        """Canary shots as a share of all shots of the run."""
        total = self.canary_shots + self.user_shots
        return self.canary_shots / total if total else 0.0


def consistency(
    counts_a: Mapping[str, int],
    counts_b: Mapping[str, int],
    *,
    fidelity_a: float = 1.0,
    fidelity_b: float = 1.0,
    alpha: float = 1e-3,
) -> Consistency:
    """Are two devices' counts of one circuit consistent within the expected noise?

    Each device's distribution lies within total variation ``1 - fidelity`` of the ideal one
    (an error-free run gives the ideal outcome), so the two lie within
    ``(1 - fidelity_a) + (1 - fidelity_b)`` of each other; shot noise adds at most
    ``sqrt(K/n_a) + sqrt(K/n_b)`` (K outcomes seen) in expectation, widened by
    ``sqrt(ln(2/alpha)/(2 n))`` per side (a DKW-type tail bound)."""
    na, nb = sum(counts_a.values()), sum(counts_b.values())
    if na == 0 or nb == 0:
        raise InvalidInputError("consistency needs counts with at least one shot on each side")
    keys = set(counts_a) | set(counts_b)
    tvd = 0.5 * sum(abs(counts_a.get(k, 0) / na - counts_b.get(k, 0) / nb) for k in keys)
    k = len(keys)
    tail = math.sqrt(math.log(2.0 / alpha) / 2.0)
    noise = sum(0.5 * math.sqrt(k / n) + tail / math.sqrt(n) for n in (na, nb))
    allowed = min(1.0, noise + (1.0 - fidelity_a) + (1.0 - fidelity_b))
    return Consistency(tvd, allowed, tvd <= allowed)
