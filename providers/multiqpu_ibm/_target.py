"""A Qiskit ``Target`` rebuilt from a parsed snapshot, in milliseconds.

``FakeTorino().target`` costs over a second (it goes through ``BackendProperties`` objects);
this builds the equivalent Target for the native gates straight from a
:class:`~multiqpu.Calibration`: the same errors, durations, T1/T2 and connectivity, plus
``reset``, ``delay`` and ``measure``. Measurement properties also carry the asymmetric readout
probabilities, which Aer's ``NoiseModel.from_backend`` reads when present, so the noise model
built from this Target has the same physics as the one qiskit-ibm-runtime's fake backends use
(depolarising + thermal relaxation per gate, asymmetric readout errors).

Imports Qiskit at module level: import this module lazily.
"""

from __future__ import annotations

from typing import Any

from qiskit.circuit import Delay, Measure, Parameter, Reset
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.transpiler import InstructionProperties, QubitProperties, Target

from multiqpu.provider_api import Calibration, DeviceTarget

__all__ = ["ReadoutProperties", "qiskit_target"]


class ReadoutProperties(InstructionProperties):
    """Measurement properties with ``prob_meas1_prep0`` / ``prob_meas0_prep1``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> ReadoutProperties:
        kwargs.pop("prob_meas1_prep0", None)
        kwargs.pop("prob_meas0_prep1", None)
        return super().__new__(cls, *args, **kwargs)

    def __init__(
        self,
        duration: float | None = None,
        error: float | None = None,
        *,
        prob_meas1_prep0: float | None = None,
        prob_meas0_prep1: float | None = None,
    ) -> None:
        self.prob_meas1_prep0 = prob_meas1_prep0
        self.prob_meas0_prep1 = prob_meas0_prep1


def _readout(cal: Calibration, q: int) -> InstructionProperties:
    duration = cal.duration("measure", (q,))
    error = cal.readout_error.get(q)
    p10, p01 = cal.prob_meas1_prep0.get(q), cal.prob_meas0_prep1.get(q)
    if p10 is None or p01 is None:
        return InstructionProperties(duration=duration, error=error)
    return ReadoutProperties(
        duration=duration, error=error, prob_meas1_prep0=p10, prob_meas0_prep1=p01
    )


def qiskit_target(device_target: DeviceTarget, cal: Calibration, dt: float | None = None) -> Target:
    """The Target of a device: per-gate error/duration where calibrated (None elsewhere, as
    qiskit-ibm-runtime leaves them), the calibrated edges of each 2q gate."""
    n = device_target.num_qubits
    qubit_props = [QubitProperties(t1=cal.t1.get(q), t2=cal.t2.get(q)) for q in range(n)]
    target = Target(num_qubits=n, dt=dt, qubit_properties=qubit_props)
    if device_target.coupling_map is None:
        all_edges = [(a, b) for a in range(n) for b in range(n) if a != b]
    else:
        all_edges = [(int(a), int(b)) for a, b in device_target.coupling_map]
    standard = get_standard_gate_name_mapping()
    for name in device_target.basis_gates:
        gate = standard.get(name)
        if gate is None or name in ("measure", "reset", "delay"):
            continue
        if gate.params:
            gate = type(gate)(*[Parameter(f"θ{i}") for i in range(len(gate.params))])
        errors = cal.gate_errors.get(name, {})
        durations = cal.gate_durations.get(name, {})
        qargs_list: list[tuple[int, ...]] = sorted(set(errors) | set(durations))
        if not qargs_list:
            qargs_list = [(q,) for q in range(n)] if gate.num_qubits == 1 else list(all_edges)
        props = {
            qargs: InstructionProperties(duration=durations.get(qargs), error=errors.get(qargs))
            for qargs in qargs_list
            if len(qargs) == gate.num_qubits
        }
        if props:
            target.add_instruction(gate, props)
    reset_durations = cal.gate_durations.get("reset", {})
    target.add_instruction(
        Reset(),
        {(q,): InstructionProperties(duration=reset_durations.get((q,))) for q in range(n)},
    )
    target.add_instruction(Delay(Parameter("t")), {(q,): None for q in range(n)})
    target.add_instruction(Measure(), {(q,): _readout(cal, q) for q in range(n)})
    return target
