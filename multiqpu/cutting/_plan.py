"""What a cutting run will do, before it does it: :class:`CutPlan` and its bounds."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from multiqpu.errors import InvalidInputError

__all__ = ["CutInfo", "CutLimits", "CutPlan", "FragmentPlan"]


@dataclass(frozen=True)
class CutLimits:
    """Bounds that refuse a hopeless run at once instead of grinding.

    Attributes:
        max_overhead: sampling overhead (the factor by which cutting multiplies the shots
            needed for a given precision: 9 per cut CNOT, 16 per cut wire) above which a
            plan is refused. The default, 1e4, allows about four cut CNOTs.
        max_cost_usd: refuse plans expected to cost more (None: no bound).
        max_shots: the most shots a ``precision`` target may spend in all.
        max_subexperiments: refuse plans with more distinct circuits to run.
        max_terms: refuse plans whose quasi-probability sum has more terms (classical cost).
        max_output_qubits: widest output distribution :func:`distribution` reconstructs.
    """

    max_overhead: float = 1e4
    max_cost_usd: float | None = 100.0
    max_shots: int = 100_000_000
    max_subexperiments: int = 5_000
    max_terms: int = 1_000_000
    max_output_qubits: int = 20

    def __post_init__(self) -> None:
        if not self.max_overhead >= 1:
            raise InvalidInputError(f"max_overhead must be >= 1, got {self.max_overhead}")
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise InvalidInputError(f"max_cost_usd must be >= 0, got {self.max_cost_usd}")
        for name in ("max_shots", "max_subexperiments", "max_terms", "max_output_qubits"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class CutInfo:
    """One cut: ``kind`` "gate" (a two-qubit gate replaced by local operations) or "wire"
    (a qubit's wire measured and re-prepared), the gate cut, and the original qubits."""

    kind: str
    gate: str
    qubits: tuple[int, ...]


@dataclass(frozen=True)
class FragmentPlan:
    """One fragment: the original qubits it computes, the width it needs on a device
    (wire cuts add a qubit), its distinct sub-experiments and the devices wide enough."""

    index: int
    qubits: tuple[int, ...]
    width: int
    subexperiments: int
    shots: int | None
    devices: tuple[str, ...]


@dataclass(frozen=True)
class CutPlan:
    """A cutting run described before anything is submitted.

    ``shots`` is the total over all sub-experiments (None: exact; with a ``precision`` target,
    the most the run may spend). ``expected_std_error`` is
    a worst-case bound for a unit-norm observable at that budget (the run's adaptive
    allocation usually does better). ``refused`` says why the run would be refused (None: it
    may go ahead); :meth:`check` raises it.
    """

    circuit_qubits: int
    largest_device: int
    cut: bool
    reason: str
    cuts: tuple[CutInfo, ...]
    fragments: tuple[FragmentPlan, ...]
    terms: int
    subexperiments: int
    subexperiments_naive: int
    sampling_overhead: float
    shots: int | None
    precision: float | None
    expected_std_error: float | None
    expected_time_s: float
    expected_cost_usd: float
    devices: tuple[str, ...]
    device_shares: tuple[tuple[str, int, int], ...]  # (device, circuits, shots)
    limits: CutLimits = field(default_factory=CutLimits)
    refused: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        return self.shots is None

    @property
    def gate_cuts(self) -> int:
        return sum(1 for c in self.cuts if c.kind == "gate")

    @property
    def wire_cuts(self) -> int:
        return sum(1 for c in self.cuts if c.kind == "wire")

    def check(self) -> CutPlan:
        """Return the plan, or raise :class:`~multiqpu.PlanRefusedError` if it is refused."""
        if self.refused is not None:
            from multiqpu.errors import PlanRefusedError

            raise PlanRefusedError(self.refused)
        return self

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gate_cuts"] = self.gate_cuts
        out["wire_cuts"] = self.wire_cuts
        return out

    def to_json(self) -> str:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return json.dumps(self.to_dict(), default=clean)

    def __str__(self) -> str:
        lines = [
            f"circuit: {self.circuit_qubits} qubits; largest usable device: "
            f"{self.largest_device} qubits",
            f"decision: {'cut' if self.cut else 'no cut'} ({self.reason})",
        ]
        if self.cuts:
            desc = ", ".join(
                f"{c.gate} on {c.qubits}" if c.kind == "gate" else f"wire of qubit {c.qubits[0]}"
                for c in self.cuts
            )
            lines.append(
                f"cuts: {len(self.cuts)} ({self.gate_cuts} gate, {self.wire_cuts} wire): {desc}"
            )
        for f in self.fragments:
            shots = "exact" if f.shots is None else f"{f.shots:,} shots"
            qs = _ranges(f.qubits)
            if self.refused is not None and not f.devices:
                lines.append(f"fragment {f.index}: qubits {qs} (width {f.width})")
                continue
            lines.append(
                f"fragment {f.index}: qubits {qs} (width {f.width}), {f.subexperiments} "
                f"sub-experiments, {shots}; fits {len(f.devices)} device(s)"
            )
        if self.subexperiments or self.refused is None:
            lines.append(
                f"sub-experiments: {self.subexperiments} distinct "
                f"({self.subexperiments_naive} before de-duplication; {self.terms} QPD terms)"
            )
        lines.append(f"sampling overhead: {self.sampling_overhead:.4g}")
        if self.shots is None:
            lines.append("shots: exact evaluation (shots=None)")
        else:
            se = (
                f"; std error <= {self.expected_std_error:.3g} per unit-norm observable"
                if self.expected_std_error is not None
                else ""
            )
            if self.precision is not None:
                lines.append(
                    f"shots: at most {self.shots:,} for precision {self.precision:g} (worst "
                    "case; the run stops once its measured standard error reaches it)"
                )
            else:
                lines.append(f"shots: {self.shots:,} in all{se}")
        if self.refused is None:
            lines.append(
                f"expected time: {_duration(self.expected_time_s)}; "
                f"expected cost: ${self.expected_cost_usd:,.2f}"
            )
        if self.device_shares:
            shares = ", ".join(f"{d} ({n} circuits)" for d, n, _ in self.device_shares)
            lines.append(f"devices: {shares}")
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append(f"REFUSED: {self.refused}" if self.refused else "status: ready to run")
        return "\n".join(lines)


def _ranges(qubits: tuple[int, ...]) -> str:
    if not qubits:
        return "none"
    parts: list[str] = []
    start = prev = qubits[0]
    for q in (*qubits[1:], None):
        if q is not None and q == prev + 1:
            prev = q
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if q is not None:
            start = prev = q
    return ",".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
