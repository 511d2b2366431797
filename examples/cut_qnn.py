"""Cut a 12-qubit quantum neural network onto a fleet of 5- and 7-qubit devices.

The QNN (angle-encoded input, two layers of RY rotations and a CZ chain) is wider than every
device of the fleet: IBM fake backends with real calibration snapshots (fake_lagos and
fake_perth, 7 qubits; fake_manila, 5) and two small local simulators. multiqpu plans the cut
first (fragments sized to the devices, sub-experiments, overhead, shots, time, cost) without
running anything, then estimates the QNN's output <Z_0 Z_11> with its standard error by
spreading the sub-experiments over the fleet, and compares with the exact value. The devices
are noisy, so it runs once more with readout-error mitigation on every device.

Run: ``python examples/cut_qnn.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import asyncio
import os

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

import multiqpu

N_QUBITS = 12
FAST = bool(os.environ.get("MULTIQPU_EXAMPLE_FAST"))
SHOTS = 40_000 if FAST else 120_000


def qnn(x: np.ndarray, weights: np.ndarray) -> QuantumCircuit:
    """Angle encoding of ``x``, then layers of trainable RY rotations and a CZ chain."""
    n = len(x)
    qc = QuantumCircuit(n, name="qnn")
    for q in range(n):
        qc.ry(float(x[q]), q)
    for layer in weights:
        for q in range(n - 1):
            qc.cz(q, q + 1)
        for q in range(n):
            qc.ry(float(layer[q]), q)
    return qc


async def main() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, np.pi, N_QUBITS)  # one input sample
    weights = rng.uniform(-np.pi, np.pi, (2, N_QUBITS))  # trained parameters (here: random)
    circuit = qnn(x, weights)
    output = SparsePauliOp("Z" + "I" * (N_QUBITS - 2) + "Z")  # the QNN's readout

    fleet = multiqpu.Fleet(
        [
            multiqpu.device("ibm:fake_lagos"),
            multiqpu.device("ibm:fake_perth"),
            multiqpu.device("ibm:fake_manila"),
            # local simulators emulating two more small IBM devices' noise
            multiqpu.device("local:noisy", calibration="ibm:fake_jakarta", label="jakarta_sim"),
            multiqpu.device("local:noisy", calibration="ibm:fake_quito", label="quito_sim"),
        ]
    )
    print(f"fleet: {', '.join(f'{d.spec} ({d.num_qubits} qubits)' for d in fleet)}")
    print(f"circuit: {N_QUBITS}-qubit QNN, {len(circuit.data)} gates\n")

    plan = fleet.plan(circuit, output, shots=SHOTS)  # nothing is submitted
    print("plan:")
    print("  " + str(plan).replace("\n", "\n  "))

    result = await fleet.estimate(circuit, output, shots=SHOTS)
    exact = Statevector(circuit).expectation_value(output).real
    print(f"\nrun: {result.report}")
    print(f"\nestimate:           <Z0 Z11> = {result.value:+.4f} ± {result.std_error:.4f}")

    # The noise of the devices biases every fragment: correct each sub-experiment's readout
    # on the device that ran it before knitting.
    mitigated = await fleet.estimate(circuit, output, shots=SHOTS,
                                     mitigation=[multiqpu.Readout()])  # fmt: skip
    print(f"readout-mitigated:  <Z0 Z11> = {mitigated.value:+.4f} ± {mitigated.std_error:.4f}")
    print(f"exact:              <Z0 Z11> = {exact:+.4f}")
    for name, r in (("estimate", result), ("mitigated", mitigated)):
        print(f"  {name}: {abs(r.value - exact) / r.std_error:.1f} standard errors from exact")


if __name__ == "__main__":
    asyncio.run(main())
