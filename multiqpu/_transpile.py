"""Transpilation helpers shared by the devices: a Qiskit Target built from a device's
:class:`DeviceTarget` and :class:`Calibration` (so layout and routing are noise-aware, the
way VF2Layout scores layouts), and a structural circuit key for caches."""

from __future__ import annotations

import hashlib
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.transpiler import InstructionProperties, Target

    from multiqpu.calibration import Calibration
    from multiqpu.device import DeviceTarget


# Names in the standard-gate mapping that are not gates a basis lists; measure and reset are
# always added (every device measures; reset is treated as ideal).
_NON_GATES = frozenset({"measure", "reset", "delay", "global_phase", "barrier"})


def circuit_key(circuit: QuantumCircuit) -> str:
    """A hash of a circuit's structure and parameter values (not its name or metadata)."""
    h = hashlib.sha256()
    h.update(f"{circuit.num_qubits},{circuit.num_clbits};".encode())
    for inst in circuit.data:
        op = inst.operation
        qs = ",".join(str(circuit.find_bit(q).index) for q in inst.qubits)
        cs = ",".join(str(circuit.find_bit(c).index) for c in inst.clbits)
        params = ",".join(repr(p) for p in op.params)
        h.update(f"{op.name}({params})[{qs}][{cs}];".encode())
    return h.hexdigest()[:32]


def build_qiskit_target(device_target: DeviceTarget, calibration: Calibration) -> Target:
    """A Qiskit ``Target`` carrying the device's connectivity, errors and durations."""
    from qiskit.circuit import Measure, Parameter, Reset
    from qiskit.circuit.library import get_standard_gate_name_mapping
    from qiskit.transpiler import InstructionProperties, QubitProperties, Target

    n = device_target.num_qubits
    qubit_props = [
        QubitProperties(t1=calibration.t1.get(q), t2=calibration.t2.get(q)) for q in range(n)
    ]
    target = Target(num_qubits=n, qubit_properties=qubit_props)
    gates = get_standard_gate_name_mapping()
    if device_target.coupling_map is None:
        edges: list[tuple[int, int]] = [(a, b) for a in range(n) for b in range(n) if a != b]
    else:
        edges = [tuple(e) for e in device_target.coupling_map]  # type: ignore[misc]
    props: dict[tuple[int, ...], InstructionProperties]
    for name in device_target.basis_gates:
        gate = gates.get(name)
        if gate is None or name in _NON_GATES:
            continue
        if gate.params:
            gate = type(gate)(*[Parameter(f"θ{i}") for i in range(len(gate.params))])
        if gate.num_qubits == 1:
            # rz is virtual (a frame change): no duration unless the vendor gives one
            virtual = name == "rz" and name not in calibration.gate_durations
            props = {
                (q,): InstructionProperties(
                    error=calibration.error(name, (q,)),
                    duration=0.0 if virtual else calibration.duration(name, (q,)),
                )
                for q in range(n)
            }
        elif gate.num_qubits == 2:
            props = {
                e: InstructionProperties(
                    error=calibration.error(name, e), duration=calibration.duration(name, e)
                )
                for e in edges
            }
        else:
            continue
        target.add_instruction(gate, props)
    target.add_instruction(Measure(), {(q,): _readout_properties(calibration, q) for q in range(n)})
    target.add_instruction(Reset(), {(q,): None for q in range(n)})
    for op_class, op_name in _control_flow():
        target.add_instruction(op_class, name=op_name)  # dynamic circuits: ideal, any qubits
    return target


def _control_flow() -> list[tuple[type, str]]:
    from qiskit.circuit import ForLoopOp, IfElseOp, SwitchCaseOp, WhileLoopOp

    return [
        (IfElseOp, "if_else"),
        (WhileLoopOp, "while_loop"),
        (ForLoopOp, "for_loop"),
        (SwitchCaseOp, "switch_case"),
    ]


def _readout_properties(calibration: Calibration, q: int) -> InstructionProperties | None:
    """Measurement properties of qubit ``q``. Where the profile has the asymmetric readout
    probabilities they ride along as attributes, which Aer's ``NoiseModel.from_backend``
    reads (a plain ``InstructionProperties`` has only the symmetric ``error``)."""
    from qiskit.transpiler import InstructionProperties

    error = calibration.readout_error.get(q)
    duration = calibration.duration("measure", (q,))
    p10, p01 = calibration.prob_meas1_prep0.get(q), calibration.prob_meas0_prep1.get(q)
    if p10 is not None and p01 is not None:
        return _readout_class()(duration=duration, error=error, p10=p10, p01=p01)
    if error is None and duration is None:
        return None  # nothing known (Aer would choke on a measure with error=None)
    return InstructionProperties(duration=duration, error=error or 0.0)


@cache
def _readout_class() -> type[InstructionProperties]:
    from qiskit.transpiler import InstructionProperties

    class ReadoutProperties(InstructionProperties):
        """``InstructionProperties`` plus ``prob_meas1_prep0`` / ``prob_meas0_prep1``."""

        def __new__(cls, *args: Any, p10: float, p01: float, **kwargs: Any) -> Any:
            return super().__new__(cls, *args, **kwargs)

        def __init__(self, *args: Any, p10: float, p01: float, **kwargs: Any) -> None:
            self.prob_meas1_prep0 = p10
            self.prob_meas0_prep1 = p01

    return ReadoutProperties


@lru_cache(maxsize=64)
def _cached_target(key: str, device_target: DeviceTarget, calibration: Calibration) -> Target:
    return build_qiskit_target(device_target, calibration)


def qiskit_target(device_target: DeviceTarget, calibration: Calibration) -> Target:
    """:func:`build_qiskit_target`, cached per (target, calibration content): the Target the
    transpiler maps onto is also the one a simulator builds its noise model from."""
    return _cached_target(
        f"{device_target!r}{calibration.fingerprint()}", device_target, calibration
    )


def transpile_for(
    circuit: QuantumCircuit, device_target: DeviceTarget, calibration: Calibration
) -> QuantumCircuit:
    """Map a circuit to the device: native gates, physical qubits, noise-aware layout."""
    from qiskit import transpile

    target = qiskit_target(device_target, calibration)
    return transpile(circuit, target=target, optimization_level=2, seed_transpiler=1234)
