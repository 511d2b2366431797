"""``multiqpu.fleet``: a PennyLane device (new Device API) that runs every batch on a fleet.

PennyLane hands the device batches of tapes (a QNode call, the 2P shifted tapes of a
parameter-shift gradient, a broadcast input expanded into one tape per row). Preprocessing
brings each tape into a form the fleet runs: non-commuting measurements split, observables
rotated into the computational basis, operations decomposed into the gate map of
:mod:`multiqpu.pennylane._convert`, broadcasts expanded. ``execute`` converts the whole batch
to Qiskit circuits and sends it to the fleet in ONE call, so the scheduler spreads it over
the devices; results come back per tape in order.

Analytic mode (``shots=None``) asks the fleet's exact simulators for probabilities and is
exact; with shots, every device of the fleet may run circuits and the results are sampled.
Gradients: the device computes no derivatives itself, so PennyLane differentiates by
parameter shift, which works with every interface (autograd, torch, jax).

Mitigation (``mitigation=[multiqpu.Readout(), multiqpu.ZNE(...)]``): the batch runs through
:func:`multiqpu.mitigation.sample`, each tape corrected on the device that ran it. ``expval``
of Pauli observables (after diagonalisation: Z-products and their linear combinations) is
the mitigated value; ``var`` of one Pauli word ``c P`` is ``c^2 (1 - <P>^2)`` from the
mitigated ``<P>``. Other measurements (probs, sample, counts, var of a sum, observables with
no Pauli form) are refused, as are analytic mode (``shots=None``: exact simulators, nothing
to mitigate) and shot vectors. ``last_standard_errors`` holds the propagated standard errors
of the last batch, ``last_mitigation_report`` its report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pennylane as qml
from pennylane.devices import Device, ExecutionConfig
from pennylane.devices.modifiers import simulator_tracking, single_tape_support
from pennylane.devices.preprocess import (
    decompose,
    validate_device_wires,
    validate_measurements,
    validate_observables,
)
from pennylane.measurements import (
    ExpectationMP,
    MeasurementProcess,
    ProbabilityMP,
    SampleMeasurement,
    StateMeasurement,
    VarianceMP,
)
from pennylane.tape import QuantumScript, QuantumScriptBatch
from pennylane.transforms import (
    broadcast_expand,
    defer_measurements,
    diagonalize_measurements,
    split_non_commuting,
)
from pennylane.transforms.core import CompilePipeline, transform
from pennylane.typing import PostprocessingFn, Result, ResultBatch
from pennylane.wires import Wires

from multiqpu._sync import run_sync
from multiqpu.errors import InvalidInputError
from multiqpu.pennylane._convert import (
    probabilities_vector,
    samples_array,
    supports_operation,
    tape_to_circuit,
)
from multiqpu.placement import Placement, check_width, resolve_placement, restrict_pool
from multiqpu.pool import DevicePool, PoolLike, as_pool
from multiqpu.primitives._dispatch import sample
from multiqpu.primitives._mitigated import check_spec, parity_sum, run_mitigated

__all__ = ["FleetDevice"]

_ANALYTIC_MPS = (ExpectationMP, VarianceMP, ProbabilityMP, StateMeasurement)
_SAMPLE_MPS = (SampleMeasurement,)  # expval, var, probs, sample, counts and custom ones


@transform
def _diagonalize_rest(tape: QuantumScript) -> tuple[QuantumScriptBatch, PostprocessingFn]:
    """Rotate observables that :func:`diagonalize_measurements` leaves alone (``Hermitian``,
    state-vector ``Projector``...) into the computational basis by their diagonalizing gates,
    measuring their eigenvalues. Measurements of one tape are on disjoint wires here or share
    the same rotations (``split_non_commuting`` ran first)."""
    ops = list(tape.operations)
    mps: list[MeasurementProcess] = []
    rotated: dict[Any, Any] = {}
    for mp in tape.measurements:
        obs = mp.obs
        gates = _diagonalizing_gates(obs) if obs is not None else []
        if obs is not None and gates is None:  # e.g. SparseHamiltonian: go by its matrix
            obs = qml.Hermitian(qml.matrix(obs), wires=obs.wires)
            gates = obs.diagonalizing_gates()
        if not gates:
            mps.append(mp)
            continue
        for g in gates:
            clash = [w for w in g.wires if w in rotated and not qml.equal(rotated[w], g)]
            if clash:
                raise qml.exceptions.DeviceError(
                    f"measurements on wire(s) {clash} need different basis rotations"
                )
            if not all(w in rotated for w in g.wires):
                ops.append(g)
                for w in g.wires:
                    rotated[w] = g
        mps.append(type(mp)(eigvals=obs.eigvals(), wires=obs.wires))
    new = tape.copy(operations=ops, measurements=mps)

    def first(results: ResultBatch) -> Result:
        return results[0]

    return (new,), first


@simulator_tracking
@single_tape_support
class FleetDevice(Device):
    """Run PennyLane circuits on a multiqpu fleet.

    Args:
        wires: number of wires or their labels.
        shots: default shots (PennyLane now prefers ``qml.set_shots`` on the QNode).
        fleet: a :class:`multiqpu.Fleet`, a Device, a list of devices or specs, a
            comma-separated spec string, or a preset: ``"ideal"`` (default: the installed
            noiseless exact simulators, ``local:ideal`` and ``braket:sv``), ``"default"``
            (the configured fleet, else the embedded default fleet of fake QPUs).
        policy: the scheduler's placement policy.
        seed: seeds the order in which sampled shots are laid out.
        mitigation: ``multiqpu.Readout()``, ``multiqpu.ZNE(...)``, ``multiqpu.PauliTwirl()``
            or a list of them: ``expval`` (and ``var`` of one Pauli word) corrected per device
            (see the module's docstring and docs/pennylane.md). Needs shots.
        placement: a data placement rule (a :class:`multiqpu.Placement` or a config rule's
            name): every circuit of every batch (and mitigation's calibration and folded
            circuits) goes only to the devices it allows; refused with a
            :class:`multiqpu.PlacementError` before anything is submitted when it cannot be
            met (docs/trust.md).
    """

    name = "multiqpu.fleet"

    def __init__(
        self,
        wires: Any = None,
        shots: Any = None,
        *,
        fleet: PoolLike = None,
        policy: str = "balanced",
        seed: int | None = None,
        mitigation: Any = None,
        placement: Placement | str | None = None,
    ) -> None:
        super().__init__(wires=wires, shots=shots)
        self._mitigation = check_spec(mitigation)
        self._last_stds: tuple[Any, ...] = ()
        self._last_report: Any = None
        self._placement = resolve_placement(placement)
        self._pool = restrict_pool(as_pool(fleet, default="ideal"), self._placement)
        self._policy = policy
        self._rng = np.random.default_rng(seed)
        self._work: dict[str, int] = {}

    @property
    def pool(self) -> DevicePool:
        """The :class:`~multiqpu.pool.DevicePool` the batches run on."""
        return self._pool

    @property
    def mitigation(self) -> Any:
        """The resolved :class:`~multiqpu.mitigation.MitigationSpec`, or None."""
        return self._mitigation

    @property
    def last_standard_errors(self) -> tuple[Any, ...]:
        """Per tape of the last batch PennyLane handed over (after its transforms, e.g. one
        tape per group of commuting terms), the standard error of each result, shaped like
        the results (a float, or a tuple for several measurements): for ``expval`` sqrt(Var /
        shots) from the samples; for ``probs`` sqrt(p (1 - p) / shots) per outcome; 0 for
        exact (analytic) results; None where no simple error applies (``var``, ``sample``,
        ``counts``, shot vectors). With mitigation: the propagated mitigated errors."""
        return self._last_stds

    @property
    def last_mitigation_report(self) -> Any:
        """The :class:`~multiqpu.mitigation.MitigationReport` of the last mitigated batch."""
        return self._last_report

    @property
    def work_share(self) -> dict[str, int]:
        """Circuits each device of the fleet has run for this PennyLane device so far."""
        return dict(self._work)

    # ------------------------------------------------------------------ configuration
    def setup_execution_config(
        self, config: ExecutionConfig | None = None, circuit: QuantumScript | None = None
    ) -> ExecutionConfig:
        from dataclasses import replace

        config = config or ExecutionConfig()
        mcm = config.mcm_config
        if mcm.mcm_method not in (None, "deferred"):
            raise qml.exceptions.DeviceError(
                f"{self.name} supports mid-circuit measurements by deferral only "
                f"(mcm_method='deferred'), not {mcm.mcm_method!r}"
            )
        if mcm.mcm_method is None:
            config = replace(config, mcm_config=replace(mcm, mcm_method="deferred"))
        return config

    def preprocess_transforms(
        self, execution_config: ExecutionConfig | None = None
    ) -> CompilePipeline:
        program = CompilePipeline()
        program.add_transform(validate_device_wires, wires=self.wires, name=self.name)
        program.add_transform(defer_measurements, allow_postselect=False)
        program.add_transform(split_non_commuting)
        program.add_transform(diagonalize_measurements)
        program.add_transform(_diagonalize_rest)
        program.add_transform(
            decompose,
            stopping_condition=supports_operation,
            skip_initial_state_prep=False,
            name=self.name,
        )
        program.add_transform(
            validate_measurements,
            analytic_measurements=lambda mp: isinstance(mp, _ANALYTIC_MPS),
            sample_measurements=lambda mp: isinstance(mp, _SAMPLE_MPS),
            name=self.name,
        )
        program.add_transform(validate_observables, stopping_condition=_diagonal, name=self.name)
        program.add_transform(broadcast_expand)
        return program

    def supports_derivatives(
        self, execution_config: ExecutionConfig | None = None, circuit: QuantumScript | None = None
    ) -> bool:
        return False  # PennyLane differentiates by parameter shift through execute()

    # ------------------------------------------------------------------ execution
    def execute(
        self,
        circuits: QuantumScriptBatch,
        execution_config: ExecutionConfig | None = None,
    ) -> tuple[Result, ...]:
        tapes = list(circuits)
        plans = [_TapePlan(t, self.wires) for t in tapes]
        todo = [p for p in plans if p.measured and not p.needs_state]
        if self._mitigation is not None:
            return self._execute_mitigated(plans, todo)
        if todo:
            circuits_q = self._circuits(todo)
            shots = [p.total_shots for p in todo]
            results = run_sync(sample(self._pool, circuits_q, shots, policy=self._policy))
            for plan, item in zip(todo, results, strict=True):
                plan.result = item.result
                plan.parts = item.parts
                plan.sampled = item
                self._work[item.device] = self._work.get(item.device, 0) + 1
        out = tuple(plan.finish(self._rng) for plan in plans)
        self._last_stds = tuple(plan.standard_errors() for plan in plans)
        self._last_report = None
        return out

    def _circuits(self, todo: list[_TapePlan]) -> list[Any]:
        """The batch as Qiskit circuits; refused before any is submitted when the
        placement rule allows no device wide enough."""
        out = [tape_to_circuit(p.tape, p.wire_order, p.measured) for p in todo]
        if self._placement is not None:
            check_width(self._placement, self._pool.devices, out)
        return out

    def _execute_mitigated(
        self, plans: list[_TapePlan], todo: list[_TapePlan]
    ) -> tuple[Result, ...]:
        assert self._mitigation is not None
        for plan in plans:
            plan.check_mitigable()
        if todo:
            circuits_q = self._circuits(todo)
            shots = [int(p.total_shots or 0) for p in todo]
            out = run_sync(run_mitigated(self._pool, circuits_q, shots, self._mitigation,
                                         self._policy))  # fmt: skip
            for plan, item in zip(todo, out.circuits, strict=True):
                plan.result = item
                self._work[item.device] = self._work.get(item.device, 0) + 1
            self._last_report = out.report
        results, stds = [], []
        for plan in plans:
            value, se = plan.finish_mitigated()
            results.append(value)
            stds.append(se)
        self._last_stds = tuple(stds)
        return tuple(results)


def _diagonalizing_gates(obs: Any) -> list[Any] | None:
    try:
        return list(obs.diagonalizing_gates())
    except qml.exceptions.DiagGatesUndefinedError:
        return None


def _diagonal(obs: Any) -> bool:
    """Observables left after diagonalisation must be measurable in the Z basis."""
    return _diagonalizing_gates(obs) == []


class _TapePlan:
    """What to measure for one tape and how to turn the outcome into PennyLane results."""

    def __init__(self, tape: QuantumScript, device_wires: Wires | None) -> None:
        self.tape = tape
        order = list(device_wires) if device_wires else list(tape.wires)
        for w in tape.wires:  # defer_measurements may have added wires
            if w not in order:
                order.append(w)
        self.wire_order = order
        self.parts: tuple[Any, ...] = ()  # per-device shares when the shots were split
        self.sampled: Any = None  # the dispatcher's Sampled (its compatibility test)
        self.combined_se: dict[int, float] = {}
        wanted: set[Any] = set()
        for mp in tape.measurements:
            wanted.update(mp.wires if len(mp.wires) else order)
        self.measured = [w for w in order if w in wanted]
        self.total_shots: int | None = tape.shots.total_shots if tape.shots else None
        # qml.state() and other state measurements (analytic mode only: validated earlier)
        self.needs_state = any(
            isinstance(mp, StateMeasurement) and not isinstance(mp, SampleMeasurement)
            for mp in tape.measurements
        )
        self.result: Any = None
        self._samples: np.ndarray | None = None

    def statevector(self) -> np.ndarray:
        """The tape's final state over ``wire_order`` in PennyLane's order (wire 0 most
        significant), by Qiskit's exact ``Statevector``: no QPU returns amplitudes."""
        from qiskit.quantum_info import Statevector

        n = len(self.wire_order)
        qc = tape_to_circuit(self.tape, self.wire_order, [])
        data = np.asarray(Statevector(qc).data)
        return data.reshape([2] * n).transpose(list(range(n - 1, -1, -1))).reshape(-1)

    # ------------------------------------------------------------------ mitigated results
    def check_mitigable(self) -> None:
        """Refuse, before anything runs, what mitigation cannot honestly correct."""
        if not self.tape.shots:
            raise InvalidInputError(
                "mitigation= corrects sampled results; analytic mode (shots=None) runs on "
                "exact simulators and has nothing to mitigate. Give the device or the QNode "
                "shots (qml.set_shots), or drop mitigation="
            )
        if self.tape.shots.has_partitioned_shots:
            raise InvalidInputError("shot vectors are not supported with mitigation=")
        for mp in self.tape.measurements:
            self._pauli_terms(mp)

    def _pauli_terms(self, mp: MeasurementProcess) -> list[tuple[int, float]]:
        """(bit mask over the measured wires, coefficient) per Pauli word of ``mp``."""
        kind = type(mp).__name__
        rep = getattr(mp.obs, "pauli_rep", None) if mp.obs is not None else None
        if not isinstance(mp, (ExpectationMP, VarianceMP)) or rep is None:
            raise InvalidInputError(
                f"mitigation= applies to expval of Pauli observables (and var of one Pauli "
                f"word); {kind} of {mp.obs if mp.obs is not None else 'wires'} is not one"
            )
        position = {w: k for k, w in enumerate(self.measured)}
        terms = []
        for word, coeff in rep.items():
            if any(p != "Z" for p in word.values()):
                raise InvalidInputError(f"{kind} term {word} is not diagonal after rotation")
            c = complex(coeff)
            terms.append((sum(1 << position[w] for w in word), c.real))
        if isinstance(mp, VarianceMP) and sum(1 for m, _ in terms if m) > 1:
            raise InvalidInputError(
                "mitigation= gives var only for one Pauli word (var = c^2 (1 - <P>^2)); the "
                "variance of a sum needs products of terms that are not mitigated here"
            )
        return terms

    def finish_mitigated(self) -> tuple[Result, Any]:
        values, stds = [], []
        for mp in self.tape.measurements:
            terms = self._pauli_terms(mp)
            if self.result is None:  # nothing measured: identities only
                value, se = sum(c for _, c in terms), 0.0
            else:
                value, se = parity_sum(self.result, terms)
            if isinstance(mp, VarianceMP):
                c2 = sum(c * c for m, c in terms if m)
                p = value - sum(c for m, c in terms if not m)
                p = p / np.sqrt(c2) if c2 else 0.0
                # Var(cP) = c^2 (1 - <P>^2), delta-method error
                value = c2 * max(0.0, 1.0 - min(p * p, 1.0))
                se = 2.0 * np.sqrt(c2) * abs(p) * se
            values.append(np.float64(value))
            stds.append(float(se))
        if len(values) == 1:
            return values[0], stds[0]
        return tuple(values), tuple(stds)

    def standard_errors(self) -> Any:
        """Standard errors of :meth:`finish`'s results (see ``last_standard_errors``)."""
        tape = self.tape
        out: list[Any] = []
        samples = self._samples
        for k, mp in enumerate(tape.measurements):
            if k in self.combined_se:
                out.append(self.combined_se[k])
            elif not tape.shots:
                out.append(0.0 if isinstance(mp, ExpectationMP | ProbabilityMP) else None)
            elif tape.shots.has_partitioned_shots or samples is None or not len(samples):
                out.append(None)
            elif isinstance(mp, ExpectationMP) and mp.obs is not None:
                n = len(samples)
                spread = float(qml.var(mp.obs).process_samples(samples, Wires(self.measured)))
                out.append(float(np.sqrt(max(spread, 0.0) * n / max(n - 1, 1) / n)))
            elif isinstance(mp, ProbabilityMP):
                n = len(samples)
                p = np.asarray(mp.process_samples(samples, Wires(self.measured)), dtype=float)
                out.append(np.sqrt(p * (1.0 - p) / n))
            else:
                out.append(None)
        return out[0] if len(out) == 1 else tuple(out)

    def finish(self, rng: np.random.Generator) -> Result:
        tape = self.tape
        wires = Wires(self.measured)
        width = len(self.measured)
        if not tape.shots and self.needs_state:
            full = self.statevector()
            order = Wires(self.wire_order)
            values = tuple(mp.process_state(full, order) for mp in tape.measurements)
            return values[0] if len(values) == 1 else values
        if not tape.shots:
            if self.result is None:
                state = np.ones(1)
            else:
                state = np.sqrt(probabilities_vector(self.result.distribution(), width))
            # All measurements are diagonal: amplitudes sqrt(p) give their exact values.
            values = tuple(mp.process_state(state, wires) for mp in tape.measurements)
            return values[0] if len(values) == 1 else values
        if self.result is None:
            samples = np.zeros((int(tape.shots.total_shots or 0), 0), dtype=np.int64)
        else:
            self._check_merged()
            samples = samples_array(dict(self.result.counts), width, rng)
        self._samples = samples
        per_bin = []
        for lower, upper in tape.shots.bins():
            part = samples[lower:upper]
            values = tuple(mp.process_samples(part, wires) for mp in tape.measurements)
            per_bin.append(values[0] if len(values) == 1 else values)
        if tape.shots.has_partitioned_shots:
            return tuple(per_bin)
        if self.parts:
            return self._combine_parts(per_bin[0], rng)
        return per_bin[0]

    def _check_merged(self) -> None:
        """Shots split over devices whose shares differ by more than shot noise: only
        ``expval`` s (estimated per device and combined) are given; samples, probabilities
        and counts would be the merged counts, which are refused as ``fleet.sample`` does."""
        if self.sampled is None or self.sampled.merged:
            return
        combined = not self.tape.shots.has_partitioned_shots and all(
            isinstance(mp, ExpectationMP) and mp.obs is not None for mp in self.tape.measurements
        )
        if not combined:
            self.sampled.counts("a measurement other than expval")  # raises

    def _combine_parts(self, merged: Any, rng: np.random.Generator) -> Result:
        """Shots that ran on several devices: each ``expval`` estimated on every device's
        own samples and combined with inverse-variance weights (docs/shots.md)."""
        from multiqpu.pipeline._combine import combine

        wires, width = Wires(self.measured), len(self.measured)
        values = list(merged) if len(self.tape.measurements) > 1 else [merged]
        shares = [samples_array(dict(p.result.counts), width, rng) for p in self.parts]
        for k, mp in enumerate(self.tape.measurements):
            if not isinstance(mp, ExpectationMP) or mp.obs is None:
                continue
            vs, ses = [], []
            for smp in shares:
                n = len(smp)
                vs.append(float(mp.process_samples(smp, wires)))
                var = float(qml.var(mp.obs).process_samples(smp, wires))
                ses.append(float(np.sqrt(max(var, 0.0) / max(n - 1, 1))))
            c = combine(vs, ses)
            values[k], self.combined_se[k] = np.float64(c.value), c.std_error
        return values[0] if len(values) == 1 else tuple(values)
