"""How long and how much: a small execution model of the fleet for plans.

Per device: a queue wait (its ``queue_estimate``), a per-job overhead, a time per shot
(from its calibration's gate and readout durations for QPUs; simulators are fast) and a
price (``estimate_cost``). Sub-experiments are assigned greedily, longest first, to the
device that fits them (enough qubits; exact devices for ``shots=None``) and would finish
them first. The result is what a plan reports before anything is submitted; the scheduler
makes the real placement decisions at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import Device

__all__ = [
    "Assignment",
    "DeviceModel",
    "assign",
    "device_model",
    "mid_circuit",
    "supports_mid_circuit",
]

#: Simulators: seconds per shot and per circuit (measured order of magnitude on Aer).
_SIM_SHOT_S = 2e-5
_SIM_CIRCUIT_S = 5e-3
#: QPUs: repetition delay between shots and per-job overhead when the calibration is silent.
_QPU_REP_DELAY_S = 250e-6
_QPU_JOB_S = 2.0
_DEFAULT_2Q_S = 300e-9
_DEFAULT_1Q_S = 40e-9
_DEFAULT_READOUT_S = 1.5e-6


@dataclass(frozen=True)
class DeviceModel:
    spec: str
    num_qubits: int
    exact: bool
    simulator: bool
    wait_s: float
    job_s: float
    max_shots: int
    two_qubit_s: float
    one_qubit_s: float
    readout_s: float
    mid_circuit: bool = True

    def shot_s(self, gates_1q: int, gates_2q: int, width: int) -> float:
        """Wall time of one shot of a circuit (simulators: a flat small figure)."""
        if self.simulator:
            return _SIM_SHOT_S * max(1.0, 2.0 ** (width - 12))
        depth_time = (gates_2q * self.two_qubit_s + gates_1q * self.one_qubit_s) / max(
            1.0, width / 2
        )
        return _QPU_REP_DELAY_S + self.readout_s + depth_time

    def circuit_s(self, shots: int | None, gates_1q: int, gates_2q: int, width: int) -> float:
        if shots is None:
            return _SIM_CIRCUIT_S * max(1.0, 2.0 ** (width - 12))
        overhead = _SIM_CIRCUIT_S if self.simulator else 0.0
        return overhead + shots * self.shot_s(gates_1q, gates_2q, width)


def _median(values: Sequence[float]) -> float | None:
    vals = sorted(v for v in values if v)
    return vals[len(vals) // 2] if vals else None


def device_model(device: Device, wait_s: float | None) -> DeviceModel:
    """The model of one device (``wait_s`` from its queue estimate, if known)."""
    simulator = not device.imitates_qpu
    two, one, readout = _DEFAULT_2Q_S, _DEFAULT_1Q_S, _DEFAULT_READOUT_S
    if not simulator:
        try:
            cal = device.calibration()
        except Exception:  # calibration unavailable offline: keep the defaults
            cal = None
        if cal is not None:
            durations_2q = [
                d for name, table in cal.gate_durations.items() for q, d in table.items()
                if len(q) == 2 and name != "measure"
            ]  # fmt: skip
            durations_1q = [
                d for name, table in cal.gate_durations.items() for q, d in table.items()
                if len(q) == 1 and name not in ("measure", "reset", "delay")
            ]  # fmt: skip
            two = _median(durations_2q) or two
            one = _median(durations_1q) or one
            readout = cal.readout_duration or readout
    return DeviceModel(
        spec=device.spec,
        num_qubits=device.num_qubits,
        exact=bool(device.exact),
        simulator=simulator,
        wait_s=float(wait_s or 0.0),
        job_s=0.0 if simulator else _QPU_JOB_S,
        max_shots=device.limits.max_shots,
        two_qubit_s=two,
        one_qubit_s=one,
        readout_s=readout,
        mid_circuit=supports_mid_circuit(device),
    )


@dataclass(frozen=True)
class Assignment:
    """Expected placement: device index per circuit, per-device busy time, makespan."""

    device_of: tuple[int, ...]
    finish_s: tuple[float, ...]
    makespan_s: float


def assign(
    models: Sequence[DeviceModel],
    widths: Sequence[int],
    shots: Sequence[int | None],
    gates: Sequence[tuple[int, int]],
    *,
    needs_mid: Sequence[bool] | None = None,
) -> Assignment:
    """Greedy longest-first earliest-finish assignment of circuits to devices (a circuit
    with mid-circuit measurements only goes to devices that support them)."""
    n_dev = len(models)
    ready = [m.wait_s + m.job_s for m in models]
    device_of = [-1] * len(widths)
    order = sorted(
        range(len(widths)),
        key=lambda i: -(shots[i] or 1) * (1 + gates[i][1]),
    )
    for i in order:
        best, best_t = -1, float("inf")
        for d in range(n_dev):
            m = models[d]
            if m.num_qubits < widths[i] or (shots[i] is None and not m.exact):
                continue
            if needs_mid is not None and needs_mid[i] and not m.mid_circuit:
                continue
            t = ready[d] + m.circuit_s(shots[i], gates[i][0], gates[i][1], widths[i])
            if t < best_t:
                best, best_t = d, t
        if best >= 0:
            ready[best] = best_t
            device_of[i] = best
    used = [ready[d] for d in range(n_dev) if d in set(device_of)]
    return Assignment(tuple(device_of), tuple(ready), max(used, default=0.0))


def mid_circuit(circuit: QuantumCircuit) -> bool:
    """Does a gate act on a qubit after it was measured or reset?"""
    from multiqpu._circuit_memo import memo

    return memo(circuit, "mid_circuit", _mid_circuit)


def _mid_circuit(circuit: QuantumCircuit) -> bool:
    done: set[object] = set()
    for inst in circuit.data:
        name = inst.operation.name
        if name in ("measure", "reset"):
            done.update(inst.qubits)
        elif name not in ("barrier", "delay") and done.intersection(inst.qubits):
            return True
    return False


def supports_mid_circuit(device: Device) -> bool:
    """Whether ``device`` runs circuits that keep going after a measurement
    (:attr:`multiqpu.Device.mid_circuit_measurement`)."""
    return bool(device.mid_circuit_measurement)
