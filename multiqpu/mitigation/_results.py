"""Results of mitigated runs: values with standard errors, the unmitigated and
intermediate stages from the same data, and a report of what mitigation cost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multiqpu._values import Values
from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from multiqpu.cutting._plan import CutPlan
    from multiqpu.device import CircuitResult
    from multiqpu.mitigation._execute import CalibrationUse

__all__ = ["MitigatedCircuit", "MitigatedEstimate", "MitigatedSample", "MitigationReport", "Stage"]


@dataclass(frozen=True)
class MitigationReport:
    """What mitigation did and cost.

    Shots: ``shots_base`` is what the unmitigated run of the same plan spends;
    ``shots_placement`` the scale-1 runs that placed the circuits, ``shots_mitigation`` the
    devices' folded and twirled circuits, ``shots_calibration`` the readout calibration
    circuits run now (0 when every calibration came from the cache or the device profile).
    ``shots_overhead = shots_total / shots_base``. ``pilot_shots``: the base shots of an
    adaptive estimate's pilot stage (part of ``shots_base``; they steer the allocation and
    are left out of the values). ``sampling_overhead`` (per observable,
    estimates only) is how many times more shots the mitigated value needs than the
    unmitigated one for the same standard error (variance ratio x shots ratio).
    """

    mitigation: str
    shots_base: int
    shots_placement: int
    shots_mitigation: int
    shots_calibration: int
    calibrations: tuple[CalibrationUse, ...]
    devices: Mapping[str, tuple[int, int]]  # device -> (circuits, shots)
    fits: int  # per-(circuit, device) zero-noise fits
    extrapolation_fallbacks: int
    failed_devices: tuple[str, ...]
    wall_s: float
    postprocess_s: float
    engine: str
    sampling_overhead: tuple[float, ...] = ()
    plan: CutPlan | None = None
    scheduler_reports: tuple[Any, ...] = ()
    pilot_shots: int = 0

    def plot(self, kind: str = "timeline", path: Any = None, **kwargs: Any) -> Any:
        """Draw the jobs of the scheduler runs behind this result (``kind="timeline"``);
        needs ``pip install 'multiqpu[plot]'``; saves to ``path`` when given."""
        from multiqpu.plots import plot_cutting_report

        return plot_cutting_report(self, kind, path, **kwargs)

    @property
    def shots_total(self) -> int:
        return self.shots_placement + self.shots_mitigation + self.shots_calibration

    @property
    def shots_overhead(self) -> float:
        return self.shots_total / self.shots_base if self.shots_base else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mitigation": self.mitigation,
            "shots_base": self.shots_base,
            "shots_placement": self.shots_placement,
            "shots_mitigation": self.shots_mitigation,
            "shots_calibration": self.shots_calibration,
            "shots_total": self.shots_total,
            "shots_overhead": self.shots_overhead,
            "sampling_overhead": list(self.sampling_overhead),
            "calibrations": [
                {"device": c.device, "qubits": list(c.qubits), "source": c.source, "shots": c.shots}
                for c in self.calibrations
            ],
            "devices": {d: {"circuits": c, "shots": s} for d, (c, s) in self.devices.items()},
            "fits": self.fits,
            "extrapolation_fallbacks": self.extrapolation_fallbacks,
            "failed_devices": list(self.failed_devices),
            "wall_s": self.wall_s,
            "postprocess_s": self.postprocess_s,
            "engine": self.engine,
            "pilot_shots": self.pilot_shots,
        }

    def __str__(self) -> str:
        cal = sum(1 for c in self.calibrations if c.source == "measured")
        cached = sum(1 for c in self.calibrations if c.source == "cache")
        used = ", ".join(f"{d} ({c} circuits)" for d, (c, _) in sorted(self.devices.items()))
        over = ", ".join(f"{o:.3g}" for o in self.sampling_overhead)
        return (
            f"mitigation: {self.mitigation}; shots {self.shots_total:,} "
            f"({self.shots_overhead:.2f}x the unmitigated {self.shots_base:,}: placement "
            f"{self.shots_placement:,}, mitigation circuits {self.shots_mitigation:,}, readout "
            f"calibration {self.shots_calibration:,}); calibrations: {cal} measured, {cached} "
            f"cached; {self.fits} per-device fits"
            + (f"; sampling overhead {over}" if over else "")
            + f"; devices: {used}"
        )


@dataclass(frozen=True)
class Stage:
    """Values and standard errors of one stage of the pipeline (same data).

    ``std_errors`` combines ``data_errors`` (shot noise of the circuits' results) and
    ``calibration_errors`` (sampling error of the readout calibrations, common to every
    circuit they corrected) in quadrature. ``shots``: the circuit shots behind the stage.
    """

    values: tuple[float, ...]
    std_errors: tuple[float, ...]
    shots: int
    data_errors: tuple[float, ...] = ()
    calibration_errors: tuple[float, ...] = ()


@dataclass(frozen=True)
class MitigatedEstimate(Values):
    """Mitigated expectation values with standard errors (shot noise and readout
    calibration error), one per observable; ``stages`` holds "unmitigated" (the raw
    placement runs), "readout" (readout-corrected scale-1 data, when ZNE is on too) and
    "mitigated" (what ``values`` holds), all from the same run."""

    values: tuple[float, ...]
    std_errors: tuple[float, ...]
    labels: tuple[str, ...]
    report: MitigationReport
    stages: Mapping[str, Stage] = field(default_factory=dict)

    @property
    def unmitigated(self) -> Stage:
        return self.stages["unmitigated"]

    def __len__(self) -> int:
        return len(self.values)

    def __str__(self) -> str:
        raw = self.stages.get("unmitigated")
        rows = []
        for k, (label, v, s) in enumerate(
            zip(self.labels, self.values, self.std_errors, strict=True)
        ):
            row = f"{label}: {v:.6g} ± {s:.2g}"
            if raw is not None:
                row += f" (unmitigated {raw.values[k]:.6g} ± {raw.std_errors[k]:.2g})"
            rows.append(row)
        return "\n".join(rows)


@dataclass(frozen=True, eq=False)
class MitigatedCircuit:
    """One circuit of a mitigated ``fleet.sample``: the device that produced it, its raw
    (scale-1) result, and the corrected quasi-distribution (M3; extrapolated to zero noise
    point by point when ZNE is on). ``expectation`` gives a Z-parity with its error."""

    device: str
    result: CircuitResult
    quasi_dist: Mapping[str, float]
    mitigation_overhead: float
    _estimator: Any = None

    @property
    def counts(self) -> Mapping[str, int]:
        return self.result.counts

    def expectation(self, observable: str | int) -> tuple[float, float]:
        """Mitigated expectation value and standard error of a diagonal Pauli: a string of
        ``Z``/``I`` over the classical bits (bit 0 rightmost, like the counts' keys) or an
        integer bit mask."""
        if self._estimator is None:
            raise InvalidInputError("no estimator attached to this result")
        value, se = self._estimator(observable)
        return float(value), float(se)


@dataclass(frozen=True, eq=False)
class MitigatedSample:
    """Per-circuit mitigated results in the order the circuits were given."""

    circuits: tuple[MitigatedCircuit, ...]
    report: MitigationReport

    def __len__(self) -> int:
        return len(self.circuits)

    def __iter__(self) -> Any:
        return iter(self.circuits)

    def __getitem__(self, index: int) -> MitigatedCircuit:
        return self.circuits[index]

    @property
    def results(self) -> tuple[MitigatedCircuit, ...]:
        return self.circuits

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(c.device for c in self.circuits)

    @property
    def quasi_dists(self) -> list[Mapping[str, float]]:
        return [c.quasi_dist for c in self.circuits]
