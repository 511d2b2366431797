"""Results of cutting runs: every value comes with its standard error and a report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu._values import Values

if TYPE_CHECKING:
    import numpy as np

    from multiqpu.cutting._plan import CutPlan

__all__ = ["CuttingReport", "DeviceUsage", "DistributionResult", "ErrorShare", "EstimateResult"]


@dataclass(frozen=True)
class ErrorShare:
    """What one (fragment, device) pair adds to an estimate's variance, per observable
    (first order; see :func:`multiqpu.cutting._reconstruct.error_budget`)."""

    fragment: int
    device: str
    variance: tuple[float, ...]


@dataclass(frozen=True)
class DeviceUsage:
    """What one device ran: distinct circuits, shots (0 when exact) and jobs."""

    device: str
    circuits: int
    shots: int
    jobs: int


@dataclass(frozen=True)
class CuttingReport:
    """How a run went: the plan it followed and what it really spent.

    ``shots`` is the total spent (None: exact), ``pilot_shots`` the part of it that only
    measured the variances to steer the rest (left out of the estimate). ``stages`` is 1 for
    a one-shot allocation, 2 or more after a pilot.
    ``reconstruction_s`` is the CPU time of classical post-processing (done in worker
    threads, overlapping with execution); ``engine`` is "scheduler" when ``fleet.sample``
    placed the work, "stand-in" otherwise; ``scheduler_reports`` are its run reports.
    """

    plan: CutPlan
    devices: tuple[DeviceUsage, ...]
    shots: int | None
    subexperiments: int
    stages: int
    wall_s: float
    execution_s: float
    reconstruction_s: float
    engine: str
    pilot_shots: int = 0
    scheduler_reports: tuple[Any, ...] = ()
    #: each (fragment, device) pair's share of the variance, largest first (estimates)
    error_budget: tuple[ErrorShare, ...] = ()

    def plot(self, kind: str = "error_budget", path: Any = None, **kwargs: Any) -> Any:
        """Draw the run: ``"error_budget"`` (each fragment and device's share of the
        standard error) or ``"timeline"`` (the jobs of its scheduler runs). Needs
        ``pip install 'multiqpu[plot]'``; saves to ``path`` when given; returns the figure."""
        from multiqpu.plots import plot_cutting_report

        return plot_cutting_report(self, kind, path, **kwargs)

    @property
    def devices_used(self) -> tuple[str, ...]:
        return tuple(d.device for d in self.devices)

    def __str__(self) -> str:
        shots = "exact" if self.shots is None else f"{self.shots:,} shots"
        used = ", ".join(f"{d.device} ({d.circuits} circuits)" for d in self.devices)
        return (
            f"{self.plan.gate_cuts} gate + {self.plan.wire_cuts} wire cuts, "
            f"{len(self.plan.fragments)} fragments, {self.subexperiments} sub-experiments, "
            f"overhead {self.plan.sampling_overhead:.3g}, {shots} in {self.stages} stage(s); "
            f"{self.wall_s:.2f} s wall ({self.execution_s:.2f} s executing, "
            f"{self.reconstruction_s:.2f} s reconstructing); devices: {used}"
        )


@dataclass(frozen=True)
class EstimateResult(Values):
    """Expectation values with standard errors, one per requested observable."""

    values: tuple[float, ...]
    std_errors: tuple[float, ...]
    labels: tuple[str, ...]
    report: CuttingReport

    def __len__(self) -> int:
        return len(self.values)

    def plot(self, kind: str = "error_budget", path: Any = None, **kwargs: Any) -> Any:
        """:meth:`CuttingReport.plot` with the observables' labels in the title."""
        from multiqpu.plots import error_budget

        if kind == "error_budget":
            return error_budget(self, path, **kwargs)
        return self.report.plot(kind, path, **kwargs)

    def __str__(self) -> str:
        rows = [
            f"{label}: {v:.6g} ± {s:.2g}"
            for label, v, s in zip(self.labels, self.values, self.std_errors, strict=True)
        ]
        return "\n".join(rows)


@dataclass(frozen=True, eq=False)
class DistributionResult:
    """A reconstructed output distribution over ``qubits`` (index bit ``j`` is qubit
    ``qubits[j]``; bitstrings put ``qubits[0]`` rightmost, as Qiskit does).

    Cutting reconstructs *quasi*-probabilities: with finite shots some may be slightly
    negative; :meth:`nearest_probabilities` clips and renormalises.
    """

    qubits: tuple[int, ...]
    probabilities: np.ndarray
    std_errors: np.ndarray
    report: CuttingReport

    def as_dict(self, *, threshold: float = 0.0) -> dict[str, float]:
        """Bitstring -> quasi-probability for entries with ``|p| > threshold``."""
        import numpy as np

        width = len(self.qubits)
        idx = np.nonzero(np.abs(self.probabilities) > threshold)[0]
        return {format(int(i), f"0{width}b"): float(self.probabilities[i]) for i in idx}

    def std_error_dict(self, *, threshold: float = 0.0) -> dict[str, float]:
        """Bitstring -> standard error, for the same entries as :meth:`as_dict`."""
        width = len(self.qubits)
        import numpy as np

        idx = np.nonzero(np.abs(self.probabilities) > threshold)[0]
        return {format(int(i), f"0{width}b"): float(self.std_errors[i]) for i in idx}

    def nearest_probabilities(self) -> np.ndarray:
        import numpy as np

        p = np.clip(self.probabilities, 0.0, None)
        total = p.sum()
        return p / total if total > 0 else p
