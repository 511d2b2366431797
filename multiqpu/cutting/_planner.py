"""Planning: whether and where to cut, what it costs, and whether to refuse.

Cut finding is constrained by the fleet's real device sizes: each distinct device width
below the circuit's is a candidate fragment width (largest first, at most three), and the
candidate chosen is the one expected to reach a given precision soonest: sampling overhead
times the time the devices able to run its fragments need for them (a fluid model in which
a fragment may only use devices at least as wide as it). Wide devices are few, so cutting a
little more to use many small devices can win.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from multiqpu.cutting._experiments import allocate_shots, build_problem
from multiqpu.cutting._model import DeviceModel, assign, device_model, mid_circuit
from multiqpu.cutting._partition import Partition, find_cut_candidates, partition, prepare_circuit
from multiqpu.cutting._plan import CutInfo, CutLimits, CutPlan, FragmentPlan
from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.cutting._experiments import CutProblem
    from multiqpu.cutting._observables import Observables
    from multiqpu.device import Device

__all__ = ["CutMode", "PlanOptions", "make_plan", "minimum_shots"]

CutMode = Literal["auto", "always", "never", "fidelity"]
_MAX_CANDIDATES = 3
#: "fidelity" mode cuts when the fragments' estimated fidelity beats the uncut circuit's by this.
_FIDELITY_MARGIN = 0.02


@dataclass(frozen=True)
class PlanOptions:
    shots: int | None
    precision: float | None = None
    cut: CutMode = "auto"
    max_fragment_qubits: int | None = None
    gate_cuts: bool = True
    wire_cuts: bool = True
    seed: int | None = 0
    max_backjumps: int | None = 1000
    limits: CutLimits = field(default_factory=CutLimits)
    #: how many times a shot's variance exceeds a raw ±1 outcome's after the pipeline's
    #: correction stage (mitigation amplifies it): scales a precision target's shot bound
    variance_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.shots is not None and (
            isinstance(self.shots, bool) or not isinstance(self.shots, int) or self.shots < 1
        ):
            raise InvalidInputError(f"shots must be a positive integer or None, got {self.shots!r}")
        if self.precision is not None and not self.precision > 0:
            raise InvalidInputError(f"precision must be > 0, got {self.precision!r}")
        if self.cut not in ("auto", "always", "never", "fidelity"):
            raise InvalidInputError(
                f"cut must be 'auto', 'always', 'never' or 'fidelity', got {self.cut!r}"
            )
        if self.max_fragment_qubits is not None and self.max_fragment_qubits < 1:
            raise InvalidInputError("max_fragment_qubits must be >= 1")
        if not (self.gate_cuts or self.wire_cuts):
            raise InvalidInputError("allow gate cuts, wire cuts or both")


def minimum_shots(total: int, circuits: int) -> int:
    """Shots every sampled circuit gets at least (2 are needed for a variance)."""
    return max(2, min(32, total // max(1, 4 * circuits)))


def _gates(circuit: QuantumCircuit) -> tuple[int, int]:
    one = two = 0
    for inst in circuit.data:
        if inst.operation.name in ("measure", "barrier", "reset", "delay"):
            continue
        if len(inst.qubits) == 1:
            one += 1
        else:
            two += 1
    return one, two


def _fluid_time(models: Sequence[DeviceModel], widths: Sequence[int], exact: bool) -> float:
    """Time for one unit of work per fragment when a fragment may use any device at least
    as wide (nested eligibility: the bottleneck is the worst width threshold)."""
    worst = 0.0
    for v in sorted(set(widths)):
        work = sum(1 for w in widths if w >= v)
        rate = sum(
            1.0 / m.shot_s(10, 10, v)
            for m in models
            if m.num_qubits >= v and (m.exact or not exact)
        )
        if rate <= 0:
            return math.inf
        worst = max(worst, work / rate)
    return worst


def _fidelity(devices: Sequence[Device], circuit: QuantumCircuit) -> float:
    """Best estimated fidelity of ``circuit`` (measured) over devices wide enough."""
    measured = circuit.copy()
    measured.measure_all()
    best = 0.0
    for d in devices:
        if d.num_qubits < circuit.num_qubits:
            continue
        try:
            best = max(best, d.calibration().estimated_fidelity(d.transpile(measured)))
        except Exception:  # a device that cannot transpile offline does not count
            continue
    return best


def _fragment_fidelity(devices: Sequence[Device], part: Partition) -> float:
    """Product over fragments of their best estimated fidelity (fragment circuits with the
    cut gates dropped: a proxy for the sub-experiments)."""
    from qiskit import QuantumCircuit as QC
    from qiskit_addon_cutting.qpd import TwoQubitQPDGate

    total = 1.0
    for qubits in part.fragment_qubits:
        index = {q: i for i, q in enumerate(qubits)}
        frag = QC(len(qubits))
        for inst in part.expanded.data:
            qs = [part.expanded.find_bit(q).index for q in inst.qubits]
            if isinstance(inst.operation, TwoQubitQPDGate) or not all(q in index for q in qs):
                continue
            frag.append(inst.operation, [index[q] for q in qs])
        total *= _fidelity(devices, frag)
    return total


def make_plan(
    devices: Sequence[Device],
    waits: Mapping[str, float | None],
    circuit: QuantumCircuit,
    observables: Observables | None,
    options: PlanOptions,
    *,
    measured_qubits: Sequence[int] | None = None,
) -> tuple[CutPlan, CutProblem | None]:
    """The plan for ``circuit`` on ``devices`` and, unless refused, the problem to run."""
    prepared = prepare_circuit(circuit)
    n = prepared.num_qubits
    exact = options.shots is None
    limits = options.limits
    usable = [d for d in devices if d.exact or not exact]
    if not usable:
        raise InvalidInputError(
            "exact evaluation (shots=None) needs an exact simulator in the fleet, such as "
            "multiqpu.device('local:ideal'); this fleet has none"
        )
    models = [device_model(d, waits.get(d.spec)) for d in usable]
    largest = max(m.num_qubits for m in models)
    cap = min(largest, options.max_fragment_qubits or largest)

    def refuse_early(reason: str, why: str) -> tuple[CutPlan, None]:
        return _empty_plan(n, largest, why, options, reason), None

    fits = n <= cap
    if options.cut == "never" and not fits:
        return refuse_early(
            f"the circuit needs {n} qubits, the largest usable device has {cap}, and cutting "
            "is disabled (cut='never')",
            "too wide",
        )
    chosen = None
    if fits:
        reason = f"fits a {largest}-qubit device"
    elif cap < largest:
        reason = f"needs {n} qubits, fragments capped at {cap} (max_fragment_qubits)"
    else:
        reason = f"needs {n} qubits, devices have <= {cap}"
    widths: list[int] = []
    if not fits or options.cut in ("always", "fidelity"):
        widths = sorted({min(m.num_qubits, cap, n - 1) for m in models} - {0}, reverse=True)
        widths = widths[:_MAX_CANDIDATES]
        if not widths:
            return refuse_early("no device can hold even one qubit of a fragment", reason)
        candidates = find_cut_candidates(
            prepared,
            widths,
            max_overhead=limits.max_overhead,
            seed=options.seed,
            max_backjumps=options.max_backjumps,
            gate_cuts=options.gate_cuts,
            wire_cuts=options.wire_cuts,
        )
        scored = []
        for cand in candidates:
            part = partition(prepared, cand.cut_circuit, cand.width)
            frag_widths = [len(q) for q in part.fragment_qubits]
            score = cand.overhead * _fluid_time(models, frag_widths, exact)
            scored.append((score, cand.overhead, cand, part))
        scored.sort(key=lambda s: (s[0], s[1]))
        best = scored[0]
        if fits and options.cut == "fidelity":
            f_uncut = _fidelity(usable, prepared)
            f_cut = _fragment_fidelity(usable, best[3])
            if f_cut > f_uncut + _FIDELITY_MARGIN and best[1] <= limits.max_overhead:
                chosen = best
                reason = f"cutting raises the estimated fidelity from {f_uncut:.3f} to {f_cut:.3f}"
            else:
                reason += f"; cutting would not raise the estimated fidelity ({f_uncut:.3f})"
        elif fits and options.cut == "always":
            chosen = best
            reason = "cut requested (cut='always')"
        else:
            chosen = best
        if chosen is not None and chosen[1] > limits.max_overhead:
            cand = chosen[2]
            message = (
                f"cutting this {n}-qubit circuit into fragments of <= {cand.width} qubits "
                f"needs {cand.gate_cuts + cand.wire_cuts} cuts with sampling overhead "
                f"{chosen[1]:.3g}, above the bound max_overhead={limits.max_overhead:g}: the "
                "shots needed would be hopeless. Use wider devices, a shallower or less "
                "connected circuit, or raise CutLimits(max_overhead=...)"
            )
            return _empty_plan(
                n, largest, reason, options, message, part=chosen[3], overhead=chosen[1]
            ), None
    part = chosen[3] if chosen is not None else partition(prepared, None, max(n, 1))
    return _finish_plan(prepared, part, usable, models, observables, options, reason,
                        largest, chosen is not None, measured_qubits)  # fmt: skip


def _num_terms(part: Partition) -> int:
    from qiskit_addon_cutting.qpd import TwoQubitQPDGate

    return math.prod(
        len(inst.operation.basis.maps)
        for inst in part.expanded.data
        if isinstance(inst.operation, TwoQubitQPDGate)
    )


def _finish_plan(
    prepared: QuantumCircuit,
    part: Partition,
    devices: Sequence[Device],
    models: Sequence[DeviceModel],
    observables: Observables | None,
    options: PlanOptions,
    reason: str,
    largest: int,
    did_cut: bool,
    measured_qubits: Sequence[int] | None,
) -> tuple[CutPlan, CutProblem | None]:
    import numpy as np

    limits = options.limits
    n = prepared.num_qubits
    cuts = tuple(CutInfo(kind, gate, qubits) for kind, gate, qubits in part.cuts)
    terms = _num_terms(part)
    if terms > limits.max_terms:
        message = (
            f"{len(cuts)} cuts make {terms:,} quasi-probability terms, above max_terms="
            f"{limits.max_terms:,} (the classical side would not finish; the sub-experiments "
            "would exceed max_subexperiments too). Use wider devices or raise the bound"
        )
        overhead = math.prod(_kappas(part)) ** 2
        return _empty_plan(
            n, largest, reason, options, message, part=part, overhead=overhead, did_cut=did_cut
        ), None
    problem = build_problem(part, observables, measured_qubits=measured_qubits)
    exps = problem.experiments
    run = [i for i, e in enumerate(exps) if not e.trivial]
    weights = np.array([exps[i].weight for i in run])
    refused: str | None = None
    notes: list[str] = []
    if len(run) > limits.max_subexperiments:
        refused = (
            f"{len(run):,} distinct sub-experiments exceed max_subexperiments="
            f"{limits.max_subexperiments:,}"
        )
    total_w = float(weights.sum())
    shots_total: int | None
    per: list[int | None]
    if options.shots is None:
        shots_total, per = None, [None] * len(run)
        expected_se = 0.0
    else:
        if options.precision is not None:
            # Worst case (|means| <= 1, unit variances, prior allocation); the run measures
            # the variances and usually stops far below it.
            bound = max(
                2 * len(run),
                math.ceil(options.variance_factor * (total_w / options.precision) ** 2),
            )
            shots_total = min(bound, limits.max_shots)
            if bound > limits.max_shots:
                notes.append(
                    f"precision {options.precision:g} may need up to {bound:,} shots; the "
                    f"run stops at max_shots={limits.max_shots:,}"
                )
        else:
            shots_total = options.shots
        if run and shots_total < 2 * len(run):
            refused = refused or (
                f"shots={shots_total:,} is too few for {len(run)} sub-experiments "
                f"(at least {2 * len(run):,} needed: 2 per sub-experiment)"
            )
        alloc = allocate_shots(
            weights, shots_total, minimum=minimum_shots(shots_total, len(run))
        ) if run else np.zeros(0, dtype=np.int64)  # fmt: skip
        per = [int(s) for s in alloc]
        expected_se = total_w * math.sqrt(options.variance_factor / shots_total) if run else 0.0
        norm = float(np.abs(observables.coeffs).sum(axis=1).max()) if observables else 1.0
        expected_se /= max(norm, 1e-300)
    widths = [exps[i].width for i in run]
    gates = [_gates(exps[i].circuit) for i in run]
    needs_mid = [mid_circuit(exps[i].circuit) for i in run]
    placement = assign(models, widths, per, gates, needs_mid=needs_mid)
    by_device: dict[int, list[int]] = {}
    for j, d in enumerate(placement.device_of):
        by_device.setdefault(d, []).append(j)
    cost = 0.0
    shares = []
    for d, js in sorted(by_device.items()):
        if d < 0:
            refused = refused or (
                "a sub-experiment fits no device of the fleet (too wide, or it measures "
                "mid-circuit and no wide-enough device supports that: Braket's do not; "
                "gate_cuts=False cuts wires only, which needs no mid-circuit measurement)"
            )
            continue
        sh = [per[j] for j in js]
        if options.shots is not None:
            mean_shots = max(1, round(sum(s or 0 for s in sh) / len(sh)))
            cost += (
                devices[d].estimate_cost([exps[run[j]].circuit for j in js], mean_shots).total_usd
            )
        shares.append((devices[d].spec, len(js), int(sum(s or 0 for s in sh))))
    if limits.max_cost_usd is not None and cost > limits.max_cost_usd:
        refused = refused or (
            f"expected cost ${cost:,.2f} is above max_cost_usd=${limits.max_cost_usd:,.2f}"
        )
    fragments = []
    for f, qubits in enumerate(part.fragment_qubits):
        mine = [j for j, i in enumerate(run) if exps[i].fragment == f]
        width = len(qubits)
        mid = any(needs_mid[j] for j in mine)
        originals = sorted({_origin(part, q) for q in qubits})
        fragments.append(
            FragmentPlan(
                index=f,
                qubits=tuple(originals),
                width=width,
                subexperiments=len(mine),
                shots=None if options.shots is None else int(sum(per[j] or 0 for j in mine)),
                devices=tuple(
                    m.spec for m in models if m.num_qubits >= width and (m.mid_circuit or not mid)
                ),
            )
        )
    plan = CutPlan(
        circuit_qubits=n,
        largest_device=largest,
        cut=did_cut,
        reason=reason,
        cuts=cuts,
        fragments=tuple(fragments),
        terms=problem.num_terms,
        subexperiments=len(run),
        subexperiments_naive=problem.num_raw_subexperiments,
        sampling_overhead=problem.overhead,
        shots=shots_total,
        precision=options.precision,
        expected_std_error=None if options.shots is None else expected_se,
        expected_time_s=placement.makespan_s,
        expected_cost_usd=cost,
        devices=tuple(s[0] for s in shares),
        device_shares=tuple(shares),
        limits=limits,
        refused=refused,
        notes=tuple(notes),
    )
    return plan, (None if refused else problem)


def _origin(part: Partition, q: int) -> int:
    """The original qubit an expanded qubit belongs to."""
    for i, out in enumerate(part.output_qubit):
        if out >= q:
            return i
    return len(part.output_qubit) - 1


def _kappas(part: Partition) -> list[float]:
    from qiskit_addon_cutting.qpd import TwoQubitQPDGate

    return [
        float(inst.operation.basis.kappa)
        for inst in part.expanded.data
        if isinstance(inst.operation, TwoQubitQPDGate)
    ]


def _empty_plan(
    n: int,
    largest: int,
    reason: str,
    options: PlanOptions,
    refused: str,
    *,
    part: Partition | None = None,
    overhead: float = math.inf,
    did_cut: bool = True,
) -> CutPlan:
    """A refused plan: what is known (cuts, fragment widths, overhead), nothing to run."""
    cuts: tuple[CutInfo, ...] = ()
    fragments: tuple[FragmentPlan, ...] = ()
    if part is not None:
        cuts = tuple(CutInfo(kind, gate, qubits) for kind, gate, qubits in part.cuts)
        fragments = tuple(
            FragmentPlan(
                index=f,
                qubits=tuple(sorted({_origin(part, q) for q in qubits})),
                width=len(qubits),
                subexperiments=0,
                shots=None,
                devices=(),
            )
            for f, qubits in enumerate(part.fragment_qubits)
        )
    return CutPlan(
        circuit_qubits=n,
        largest_device=largest,
        cut=part is not None and did_cut,
        reason=reason,
        cuts=cuts,
        fragments=fragments,
        terms=0,
        subexperiments=0,
        subexperiments_naive=0,
        sampling_overhead=overhead,
        shots=options.shots,
        precision=options.precision,
        expected_std_error=None,
        expected_time_s=math.inf,
        expected_cost_usd=0.0,
        devices=(),
        device_shares=(),
        limits=options.limits,
        refused=refused,
    )
