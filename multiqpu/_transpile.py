"""Transpilation helpers shared by the devices: the one builder of a Qiskit Target from a
device's :class:`DeviceTarget` and :class:`Calibration` (so layout and routing are
noise-aware, the way VF2Layout scores layouts, and simulators build their noise models from
it), and a structural circuit key for caches."""

from __future__ import annotations

import hashlib
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.transpiler import InstructionProperties, Target

    from multiqpu._circuit_memo import Operation
    from multiqpu.calibration import Calibration
    from multiqpu.device import DeviceTarget

__all__ = [
    "build_qiskit_target",
    "circuit_key",
    "circuit_key_and_operations",
    "qiskit_target",
    "transpile_for",
]

# Names in the standard-gate mapping that are not gates a basis lists; measure and reset are
# always added (every device measures).
_NON_GATES = frozenset({"measure", "reset", "delay", "global_phase", "barrier"})
# operations whose parameters (if any) are plain numbers: described by their ``repr``
_PLAIN = frozenset({"measure", "reset", "delay", "barrier"})


def circuit_key(circuit: QuantumCircuit) -> str:
    """A hash of a circuit's structure and parameter values (not its name or metadata)."""
    from multiqpu._circuit_memo import memo

    return memo(circuit, "circuit_key", _circuit_key)


def _circuit_key(circuit: QuantumCircuit) -> str:
    return circuit_key_and_operations(circuit)[0]


def circuit_key_and_operations(
    circuit: QuantumCircuit, _depth: int = 0
) -> tuple[str, list[Operation]]:
    """:func:`circuit_key` and :func:`multiqpu._circuit_memo.operations` read in one walk
    (the planner freezes its circuits with both; ``_depth``: how deep in control flow)."""
    qidx = {q: i for i, q in enumerate(circuit.qubits)}
    cidx = {c: i for i, c in enumerate(circuit.clbits)}
    ops: list[Operation] = []
    parts = [f"{circuit.num_qubits},{circuit.num_clbits};"]
    for inst in circuit.data:
        # the name and a standard gate's parameters without building its Python gate object
        # (``inst.operation``: most of a walk's cost); the same strings
        name = inst.name
        qs = tuple(map(qidx.__getitem__, inst.qubits))
        cs = tuple(map(cidx.__getitem__, inst.clbits))
        ops.append((name, qs, cs))
        if inst.is_standard_gate():
            described = ",".join(map(repr, inst.params))
        else:
            described = _describe(inst.operation, cidx, _depth)
        parts.append(f"{name}({described})[{','.join(map(str, qs))}][{','.join(map(str, cs))}];")
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:32], ops


def _describe(operation: Any, cidx: dict[Any, int], depth: int) -> str:
    """A non-standard operation's parameters as a string that depends only on what they
    are: control flow by its condition or target (in this circuit's clbit indices) and the
    keys of its blocks, arrays by a hash of their bytes (``repr`` elides large arrays with
    "..." and prints objects by address, which would let two different circuits share a
    key, or one circuit built twice get two). A for loop's parameter (named by a
    process-wide counter) is renamed by its depth."""
    if operation.name in _PLAIN:  # the common case, kept cheap
        return ",".join(map(repr, operation.params))
    import numpy as np
    from qiskit import QuantumCircuit
    from qiskit.circuit import ControlFlowOp, ForLoopOp, Parameter

    loop_parameter = operation.params[1] if isinstance(operation, ForLoopOp) else None
    canonical = Parameter(f"_loop{depth}")

    def param(p: Any) -> str:
        if p is loop_parameter and p is not None:
            return repr(canonical)
        if isinstance(p, QuantumCircuit):
            if loop_parameter is not None and loop_parameter in p.parameters:
                p = p.assign_parameters({loop_parameter: canonical}, inplace=False)
            return "{" + circuit_key_and_operations(p, depth + 1)[0] + "}"
        if isinstance(p, np.ndarray):
            data = np.ascontiguousarray(p)
            digest = hashlib.sha256(data.tobytes()).hexdigest()[:32]
            return f"array{data.shape}{data.dtype}:{digest}"
        return repr(p)

    described = ",".join(param(p) for p in operation.params)
    operator = getattr(operation, "operator", None)  # PauliEvolutionGate's Hamiltonian
    if operator is not None:
        described += "|operator=" + ";".join(
            f"{o.paulis.to_labels()}:{param(np.asarray(o.coeffs))}"
            if hasattr(o, "paulis") and hasattr(o, "coeffs")
            else repr(o)
            for o in (operator if isinstance(operator, (list, tuple)) else [operator])
        )
    # a gate built from a circuit (``to_gate()``: named by a process-wide counter): the
    # circuit it stands for, when it is already there (never synthesised here, which would
    # cost more than the key)
    definition = getattr(operation, "_definition", None)
    if isinstance(definition, QuantumCircuit) and not isinstance(operation, ControlFlowOp):
        described += "|definition=" + param(definition)
    if isinstance(operation, ControlFlowOp):
        for attr in ("condition", "target"):
            if getattr(operation, attr, None) is not None:
                described += f"|{attr}={_classical(getattr(operation, attr), cidx)}"
        if hasattr(operation, "cases_specifier"):
            described += "|cases=" + ";".join(
                ",".join(map(repr, values)) + ":" + param(block)
                for values, block in operation.cases_specifier()
            )
    return described


def _classical(value: Any, cidx: dict[Any, int]) -> str:
    """A condition, a switch target or a classical expression in clbit indices."""
    from qiskit.circuit import ClassicalRegister, Clbit
    from qiskit.circuit.classical import expr

    if isinstance(value, tuple):
        return "(" + ",".join(_classical(v, cidx) for v in value) + ")"
    if isinstance(value, Clbit):
        return f"c{cidx[value]}"
    if isinstance(value, ClassicalRegister):
        return "r[" + ",".join(str(cidx[b]) for b in value) + "]"
    if isinstance(value, expr.Var):
        inner = value.var
        if isinstance(inner, (Clbit, ClassicalRegister)):
            return _classical(inner, cidx)
        return f"var:{value.name}:{value.type!r}"
    if isinstance(value, expr.Value):
        return f"{value.value!r}:{value.type!r}"
    if isinstance(value, expr.Expr):
        children = [
            _classical(getattr(value, a), cidx)
            for a in ("operand", "left", "right", "target", "index")
            if hasattr(value, a)
        ]
        op = getattr(value, "op", None)
        return f"{type(value).__name__}({op!r};{';'.join(children)}):{value.type!r}"
    return repr(value)


def build_qiskit_target(
    device_target: DeviceTarget,
    calibration: Calibration,
    *,
    dt: float | None = None,
    calibrated_only: bool = False,
) -> Target:
    """A Qiskit ``Target`` carrying the device's connectivity, errors and durations: the one
    builder of a Target from a :class:`DeviceTarget` and a :class:`Calibration`.

    By default every native gate is offered on every qubit (one-qubit gates) or every
    coupling-map edge (two-qubit gates), with the calibration's figure for each, falling back
    to its per-qubit or median figures; dynamic-circuit instructions are offered (ideal).
    ``calibrated_only=True`` builds the Target the way a vendor does from its calibration
    data (IBM's fake backends): each gate only on the qubit tuples the calibration has figures
    for (all qubits or edges, without figures, when it has none for that gate), no figure
    where none was given, reset timed where calibrated (else ideal), ``delay``, and no control
    flow. ``dt`` is the device's sample time (seconds).
    """
    from qiskit.circuit import Delay, Measure, Parameter, Reset
    from qiskit.circuit.library import get_standard_gate_name_mapping
    from qiskit.transpiler import InstructionProperties, QubitProperties, Target

    n = device_target.num_qubits
    qubit_props = [
        QubitProperties(t1=calibration.t1.get(q), t2=calibration.t2.get(q)) for q in range(n)
    ]
    target = Target(num_qubits=n, dt=dt, qubit_properties=qubit_props)
    gates = get_standard_gate_name_mapping()
    if device_target.coupling_map is None:
        edges: list[tuple[int, ...]] = [(a, b) for a in range(n) for b in range(n) if a != b]
    else:
        edges = [(int(a), int(b)) for a, b in device_target.coupling_map]
    for name in device_target.basis_gates:
        gate = gates.get(name)
        if gate is None or name in _NON_GATES:
            continue
        if gate.params:
            gate = type(gate)(*[Parameter(f"θ{i}") for i in range(len(gate.params))])
        everywhere: list[tuple[int, ...]] = (
            [(q,) for q in range(n)] if gate.num_qubits == 1 else edges
        )
        if calibrated_only:
            props = _calibrated_props(calibration, name, gate.num_qubits, everywhere)
        elif gate.num_qubits <= 2:
            props = _filled_props(calibration, name, everywhere)
        else:
            continue
        if props:
            target.add_instruction(gate, props)
    if calibrated_only:  # as a vendor Target: reset timed where calibrated, delay offered
        reset = calibration.gate_durations.get("reset", {})
        target.add_instruction(
            Reset(), {(q,): InstructionProperties(duration=reset.get((q,))) for q in range(n)}
        )
        target.add_instruction(Delay(Parameter("t")), {(q,): None for q in range(n)})
    else:  # reset is treated as ideal
        target.add_instruction(Reset(), {(q,): None for q in range(n)})
    readout = _vendor_readout if calibrated_only else _readout_properties
    target.add_instruction(Measure(), {(q,): readout(calibration, q) for q in range(n)})
    if not calibrated_only:
        for op_class, op_name in _control_flow():
            target.add_instruction(op_class, name=op_name)  # dynamic circuits: ideal, any qubits
    return target


def _filled_props(
    calibration: Calibration, name: str, qargs: list[tuple[int, ...]]
) -> dict[tuple[int, ...], InstructionProperties]:
    from qiskit.transpiler import InstructionProperties

    # rz is virtual (a frame change): no duration unless the vendor gives one
    virtual = name == "rz" and name not in calibration.gate_durations
    return {
        q: InstructionProperties(
            error=calibration.error(name, q),
            duration=0.0 if virtual else calibration.duration(name, q),
        )
        for q in qargs
    }


def _calibrated_props(
    calibration: Calibration, name: str, width: int, everywhere: list[tuple[int, ...]]
) -> dict[tuple[int, ...], InstructionProperties]:
    from qiskit.transpiler import InstructionProperties

    errors = calibration.gate_errors.get(name, {})
    durations = calibration.gate_durations.get(name, {})
    qargs = sorted(set(errors) | set(durations)) or list(everywhere)
    return {
        q: InstructionProperties(duration=durations.get(q), error=errors.get(q))
        for q in qargs
        if len(q) == width
    }


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


def _vendor_readout(calibration: Calibration, q: int) -> InstructionProperties:
    """As a vendor Target holds it: the figures given (None where unknown), plus the
    asymmetric readout probabilities when both are known."""
    from qiskit.transpiler import InstructionProperties

    duration = calibration.duration("measure", (q,))
    error = calibration.readout_error.get(q)
    p10, p01 = calibration.prob_meas1_prep0.get(q), calibration.prob_meas0_prep1.get(q)
    if p10 is not None and p01 is not None:
        return _readout_class()(duration=duration, error=error, p10=p10, p01=p01)
    return InstructionProperties(duration=duration, error=error)


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
def _cached_target(
    key: str,
    device_target: DeviceTarget,
    calibration: Calibration,
    dt: float | None,
    calibrated_only: bool,
) -> Target:
    return build_qiskit_target(device_target, calibration, dt=dt, calibrated_only=calibrated_only)


def qiskit_target(
    device_target: DeviceTarget,
    calibration: Calibration,
    *,
    dt: float | None = None,
    calibrated_only: bool = False,
) -> Target:
    """:func:`build_qiskit_target`, cached per (target, calibration content, options): the
    Target the transpiler maps onto is also the one a simulator builds its noise model from.
    Treat it as read-only."""
    key = f"{device_target!r}{calibration.fingerprint()}{dt!r}{calibrated_only}"
    return _cached_target(key, device_target, calibration, dt, calibrated_only)


def transpile_for(
    circuit: QuantumCircuit, device_target: DeviceTarget, calibration: Calibration
) -> QuantumCircuit:
    """Map a circuit to the device: native gates, physical qubits, noise-aware layout."""
    from qiskit import transpile

    target = qiskit_target(device_target, calibration)
    return transpile(circuit, target=target, optimization_level=2, seed_transpiler=1234)
