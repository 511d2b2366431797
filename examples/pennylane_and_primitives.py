"""PennyLane and Qiskit code on the fleet, unchanged: a QNode with a parameter-shift gradient on
the ``multiqpu.fleet`` device, and a Qiskit EstimatorV2 PUB on ``fleet.estimator()``, each next
to the exact value.

Run:  python examples/pennylane_and_primitives.py
"""

from __future__ import annotations

import os

import numpy as np
import pennylane as qml
from pennylane import numpy as pnp
from qiskit.circuit.library import efficient_su2
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu

FAST = os.environ.get("MULTIQPU_EXAMPLE_FAST") == "1"
SHOTS = 4_000 if FAST else 20_000


def pennylane_part() -> None:
    # the default fleet= "ideal" holds the installed noiseless simulators (local:ideal,
    # braket:sv); every tape PennyLane hands over (here: the parameter-shift tapes) is
    # spread across them by the scheduler
    dev = qml.device("multiqpu.fleet", wires=2)
    exact_dev = qml.device("default.qubit", wires=2)

    def body(w: pnp.ndarray) -> None:
        qml.RX(w[0], wires=0)
        qml.RY(w[1], wires=1)
        qml.CNOT(wires=[0, 1])

    @qml.set_shots(shots=SHOTS)
    @qml.qnode(dev, diff_method="parameter-shift")
    def energy(w: pnp.ndarray) -> pnp.tensor:
        body(w)
        return qml.expval(qml.PauliZ(0) @ qml.PauliZ(1) + 0.5 * qml.PauliX(0))

    @qml.qnode(exact_dev)
    def exact_energy(w: pnp.ndarray) -> pnp.tensor:
        body(w)
        return qml.expval(qml.PauliZ(0) @ qml.PauliZ(1) + 0.5 * qml.PauliX(0))

    w = pnp.array([0.4, 1.1], requires_grad=True)
    # the error bar: the spread of 5 independent runs (each a fresh set of shots)
    runs = np.array([float(energy(w)) for _ in range(5)])
    value, se = runs.mean(), runs.std(ddof=1) / np.sqrt(len(runs))
    grad = qml.grad(energy)(w)
    print(f"PennyLane on multiqpu.fleet: E = {value:.4f} ± {se:.4f} "
          f"(mean of 5 runs of {SHOTS} shots; exact {float(exact_energy(w)):.4f})")  # fmt: skip
    print(f"  parameter-shift gradient {np.round(grad, 3)} "
          f"(exact {np.round(qml.grad(exact_energy)(w), 3)})")  # fmt: skip


def primitives_part() -> None:
    fleet = multiqpu.Fleet.local(time_scale=0.0)
    circuit = efficient_su2(4, reps=1, entanglement="linear")
    params = np.linspace(0.1, 1.6, circuit.num_parameters)
    observable = SparsePauliOp(["ZZII", "IZZI", "IIZZ"], coeffs=[1.0, 1.0, 1.0])
    exact = Statevector(circuit.assign_parameters(params)).expectation_value(observable).real

    estimator = fleet.estimator()  # a Qiskit BaseEstimatorV2 over the fleet
    result = estimator.run([(circuit, observable, params)], precision=0.02).result()[0]
    ev, std = float(result.data.evs), float(result.data.stds)
    print(f"fleet.estimator(): <H> = {ev:.4f} ± {std:.4f} (exact {exact:.4f}), "
          f"devices {result.metadata.get('devices')}")  # fmt: skip


if __name__ == "__main__":
    pennylane_part()
    primitives_part()
