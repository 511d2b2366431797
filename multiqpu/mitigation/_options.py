"""The mitigation options users compose: ``[Readout(), ZNE(...), PauliTwirl()]``.

Each option is a small frozen value object; :func:`resolve` turns whatever the user passed
(None, one option, or a list) into one :class:`MitigationSpec`. The order in the list does
not matter: readout correction acts on measurement records, folding and twirling on the
two-qubit gates of the circuit as mapped to the device, and the pipeline applies them in
their one meaningful order (twirl the folded circuit, correct readout per shot, then
extrapolate per device).

Importing this module is cheap (no numpy, no Qiskit).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from multiqpu.mitigation._zne import Extrapolator

__all__ = ["Mitigation", "MitigationSpec", "PauliTwirl", "Readout", "ZNE", "resolve"]

ExtrapolatorName = Literal["richardson", "linear", "quadratic", "exponential"]
EXTRAPOLATORS: tuple[str, ...] = ("richardson", "linear", "quadratic", "exponential")


class Mitigation:
    """Base class of the mitigation options (``Readout``, ``ZNE``, ``PauliTwirl``)."""

    kind: ClassVar[str] = "mitigation"

    def describe(self) -> str:  # pragma: no cover - overridden
        return self.kind


@dataclass(frozen=True)
class Readout(Mitigation):
    """Correct measurement errors with each device's own readout calibration.

    Calibration circuits (M3's balanced method: every measured qubit prepared in 0 and 1
    equally often, in ``2^ceil(log2(n+1))`` circuits) run through the fleet on the
    device that produced the results, on the physical qubits it measured. The per-qubit
    matrices are cached on disk by (device, qubits, calibration fingerprint) and reused
    across runs until the device's calibration changes (or ``max_age_s`` passes).

    Attributes:
        shots: calibration shots per (device, qubit set) in all; each qubit is seen
            ``shots / 2`` times prepared in 0 and as often in 1.
        calibrate: False: spend no shots; use the readout errors of the device's
            calibration profile (``Device.calibration()``) instead.
        cache: reuse calibrations measured earlier (in memory and on disk).
        cache_dir: where calibrations are stored (default: ``$MULTIQPU_CACHE_DIR`` or the
            user cache directory, ``platformdirs.user_cache_path("multiqpu")``).
        max_age_s: measured calibrations older than this are measured again.
        distance: Hamming distance of M3's quasi-distribution correction (None: M3's
            default, min(bits, 3); -1: all).
    """

    kind: ClassVar[str] = "readout"

    shots: int = 20_000
    calibrate: bool = True
    cache: bool = True
    cache_dir: str | os.PathLike[str] | None = None
    max_age_s: float | None = None
    distance: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.shots, bool) or not isinstance(self.shots, int) or self.shots < 4:
            raise InvalidInputError(
                f"Readout(shots=...) must be an integer >= 4, got {self.shots!r}"
            )
        if self.max_age_s is not None and not self.max_age_s > 0:
            raise InvalidInputError(f"Readout(max_age_s=...) must be > 0, got {self.max_age_s!r}")

    def cache_path(self) -> Path:
        """The directory holding readout calibrations."""
        if self.cache_dir is not None:
            return Path(self.cache_dir).expanduser()
        env = os.environ.get("MULTIQPU_CACHE_DIR")
        if env:
            return Path(env).expanduser() / "readout"
        from platformdirs import user_cache_path

        return user_cache_path("multiqpu") / "readout"

    def describe(self) -> str:
        how = f"measured, {self.shots:,} shots" if self.calibrate else "device profile"
        return f"readout ({how})"


@dataclass(frozen=True)
class ZNE(Mitigation):
    """Zero-noise extrapolation by gate folding, fitted per device.

    Each circuit runs at every noise scale on the device that ran it (its gates ``G``
    replaced by ``G (G^-1 G)^k`` in the circuit as mapped to that device, so layout and
    routing are the same at every scale); the expectation values are extrapolated to zero
    noise with one fit per (circuit, device): scale factors from different devices never
    meet in one fit.

    Attributes:
        scales: noise scale factors (>= 1). Odd integers fold every gate; other values fold
            a seeded random subset and the achieved scale is what the fit uses.
        gates: "all" (every physical gate; virtual ``rz`` carries no error) or "two_qubit"
            (only two-qubit gates, as IBM's runtime does: fewer extra pulses, but the
            single-qubit gates' error is left in the result).
        extrapolator: "richardson" (polynomial through all points), "linear" or
            "quadratic" (least squares), "exponential" (``a * exp(-b * scale)``, fitted on
            the logarithm; columns whose signs disagree fall back to Richardson), or an
            :class:`~multiqpu.mitigation.Extrapolator` instance.
        allocation: "weights": the circuit's shots times the number of scales, spread over
            the scales in proportion to the extrapolator's ``|coefficients|`` (least variance
            of the zero-noise value); "equal": the circuit's shots at every scale.
        seed: chooses the gates folded for non-odd scales.
    """

    kind: ClassVar[str] = "zne"

    scales: tuple[float, ...] = (1.0, 3.0, 5.0)
    extrapolator: str | Extrapolator = "richardson"
    allocation: Literal["weights", "equal"] = "weights"
    seed: int = 0
    gates: Literal["all", "two_qubit"] = "all"

    def __post_init__(self) -> None:
        scales = tuple(float(s) for s in self.scales)
        object.__setattr__(self, "scales", scales)
        if len(scales) < 2:
            raise InvalidInputError("ZNE needs at least two noise scales, e.g. scales=(1, 3, 5)")
        if any(not math.isfinite(s) or s < 1 for s in scales):
            raise InvalidInputError(f"ZNE scales must be finite and >= 1, got {scales}")
        if len(set(scales)) != len(scales):
            raise InvalidInputError(f"ZNE scales must be distinct, got {scales}")
        if isinstance(self.extrapolator, str) and self.extrapolator not in EXTRAPOLATORS:
            raise InvalidInputError(
                f"unknown extrapolator {self.extrapolator!r}; use one of {', '.join(EXTRAPOLATORS)}"
                " or an Extrapolator instance"
            )
        if self.gates not in ("all", "two_qubit"):
            raise InvalidInputError(
                f"ZNE(gates=...) must be 'all' or 'two_qubit', got {self.gates!r}"
            )
        if self.allocation not in ("weights", "equal"):
            raise InvalidInputError(
                f"ZNE(allocation=...) must be 'weights' or 'equal', got {self.allocation!r}"
            )

    def make_extrapolator(self) -> Extrapolator:
        from multiqpu.mitigation._zne import extrapolator_for

        return extrapolator_for(self.extrapolator, len(self.scales))

    def describe(self) -> str:
        name = self.extrapolator if isinstance(self.extrapolator, str) else repr(self.extrapolator)
        scales = ", ".join(f"{s:g}" for s in self.scales)
        return f"zne (scales {scales}, {name}, {self.gates.replace('_', '-')} gates)"


@dataclass(frozen=True)
class PauliTwirl(Mitigation):
    """Pauli twirling of the two-qubit (Clifford) gates of the circuit as mapped to the
    device: each gate ``G`` becomes ``P' G P`` with a random two-qubit Pauli ``P`` and
    ``P' = G P G^-1``, the Paulis merged into the neighbouring native single-qubit gates.
    Coherent two-qubit errors become stochastic Pauli errors (what ZNE's extrapolation
    models assume). The circuit's shots are split evenly over ``randomizations`` variants.
    """

    kind: ClassVar[str] = "twirl"

    randomizations: int = 8
    seed: int | None = 0

    def __post_init__(self) -> None:
        r = self.randomizations
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise InvalidInputError(f"PauliTwirl(randomizations=...) must be >= 1, got {r!r}")

    def describe(self) -> str:
        return f"twirl ({self.randomizations} randomizations)"


@dataclass(frozen=True)
class MitigationSpec:
    """The resolved set of options (at most one of each kind)."""

    readout: Readout | None = None
    zne: ZNE | None = None
    twirl: PauliTwirl | None = None
    options: tuple[Mitigation, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return self.readout is None and self.zne is None and self.twirl is None

    @property
    def scales(self) -> tuple[float, ...]:
        return self.zne.scales if self.zne is not None else (1.0,)

    def describe(self) -> str:
        return " + ".join(o.describe() for o in self.options) or "none"


def resolve(mitigation: Any) -> MitigationSpec:
    """One :class:`MitigationSpec` from None, an option, or a sequence of options."""
    if mitigation is None:
        return MitigationSpec()
    if isinstance(mitigation, MitigationSpec):
        return mitigation
    items: Sequence[Any]
    if isinstance(mitigation, Mitigation):
        items = [mitigation]
    elif isinstance(mitigation, (list, tuple)):
        items = mitigation
    else:
        raise InvalidInputError(
            "mitigation= takes multiqpu.Readout(), multiqpu.ZNE(...), multiqpu.PauliTwirl() "
            f"or a list of them, got {type(mitigation).__name__}"
        )
    found: dict[str, Mitigation] = {}
    for item in items:
        if isinstance(item, type) and issubclass(item, Mitigation):
            item = item()  # Readout instead of Readout(): the defaults
        if not isinstance(item, (Readout, ZNE, PauliTwirl)):
            raise InvalidInputError(
                f"mitigation= items must be Readout, ZNE or PauliTwirl, got {item!r}"
            )
        if item.kind in found:
            raise InvalidInputError(f"mitigation= has two {type(item).__name__} options; pass one")
        found[item.kind] = item
    return MitigationSpec(
        readout=found.get("readout"),  # type: ignore[arg-type]
        zne=found.get("zne"),  # type: ignore[arg-type]
        twirl=found.get("twirl"),  # type: ignore[arg-type]
        options=tuple(found.values()),
    )
