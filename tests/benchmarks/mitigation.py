"""Benchmark: per-device mitigation on the default fleet's noisy devices.

Three problems, each estimated once with ``mitigation=[Readout(), ZNE()]``; the result
carries the unmitigated, readout-only and readout+ZNE values computed from that same run
(the unmitigated one from the scale-1 placement runs alone), with the shots behind each:

* GHZ parity: <X^6> of a 6-qubit GHZ state (exact 1);
* transverse-field Ising energy per site of a 6-site open chain (J = h = 1) after two
  Trotter steps from |0...0> (exact from the statevector);
* a 10-qubit circuit (two 5-qubit GHZ blocks joined by one CNOT) cut into two 5-qubit
  fragments (cut="always"), <Z^10> (exact 1); once as the scheduler's "balanced" policy
  places it (on the best device) and once with policy "fastest", which spreads the
  sub-experiments over all five devices.

Prints one JSON line: mean |error| unmitigated / readout / readout+ZNE over the problems,
their ratio, the per-problem details and the shots spent. Readout calibrations are cached
in a temporary directory, so the first problem on a device pays for its calibration.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import tempfile
import time

import numpy as np


def ghz(n: int):
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n)
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    return qc


def tfim(n: int, steps: int, dt: float):
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp

    qc = QuantumCircuit(n)
    for _ in range(steps):
        for i in range(n - 1):
            qc.rzz(-2 * dt, i, i + 1)
        for i in range(n):
            qc.rx(-2 * dt, i)
    terms = [("I" * (n - 2 - i) + "ZZ" + "I" * i, -1.0 / n) for i in range(n - 1)]
    terms += [("I" * (n - 1 - i) + "X" + "I" * i, -1.0 / n) for i in range(n)]
    return qc, SparsePauliOp.from_list(terms)


def joined_ghz(block: int):
    from qiskit import QuantumCircuit

    n = 2 * block
    qc = QuantumCircuit(n)
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    return qc


def problems():
    from qiskit.quantum_info import SparsePauliOp

    n = 6
    qc, h = tfim(n, steps=2, dt=0.3)
    yield "ghz_parity", ghz(n), SparsePauliOp("X" * n), {"shots": 40_000}
    yield "tfim_energy", qc, h, {"shots": 40_000}
    big = joined_ghz(5)
    cut = {"shots": 200_000, "cut": "always", "max_fragment_qubits": 5}
    yield "cut_10q", big, SparsePauliOp("Z" * 10), cut
    # the same, spread over all five devices (policy "fastest"): five different biases,
    # each corrected on its own device before knitting
    yield "cut_10q_all_devices", big, SparsePauliOp("Z" * 10), {**cut, "policy": "fastest"}


async def main() -> dict:
    from qiskit.quantum_info import Statevector

    import multiqpu
    from multiqpu.mitigation._fold import fold_gates

    base = multiqpu.Fleet.local(queues=False)
    fleet = multiqpu.Fleet([d for d in base if not d.exact])
    cache = tempfile.mkdtemp(prefix="multiqpu-bench-")
    mitigation = [multiqpu.Readout(cache_dir=cache), multiqpu.ZNE(scales=(1, 3, 5))]
    rows = {}
    for name, circuit, obs, opts in problems():
        exact = float(Statevector(circuit).expectation_value(obs).real)
        t0 = time.perf_counter()
        res = await fleet.estimate(circuit, obs, mitigation=mitigation, seed=1, **opts)
        wall = time.perf_counter() - t0
        rep = res.report
        st = res.stages
        rows[name] = {
            "exact": exact,
            "unmitigated": st["unmitigated"].values[0],
            "readout": st["readout"].values[0],
            "readout_zne": st["mitigated"].values[0],
            "se_unmitigated": st["unmitigated"].std_errors[0],
            "se_readout": st["readout"].std_errors[0],
            "se_readout_zne": st["mitigated"].std_errors[0],
            "error_unmitigated": abs(st["unmitigated"].values[0] - exact),
            "error_readout": abs(st["readout"].values[0] - exact),
            "error_readout_zne": abs(st["mitigated"].values[0] - exact),
            "shots_unmitigated": rep.shots_placement,
            "shots_readout": rep.shots_placement + rep.shots_calibration,
            "shots_readout_zne": rep.shots_total,
            "shots_calibration": rep.shots_calibration,
            "devices": sorted(rep.devices),
            "wall_s": round(wall, 2),
        }
    # native folding speed (all gates, as ZNE does by default) on a 133-qubit-wide ISA
    # circuit (16 active qubits, 30 CZ)
    from qiskit.circuit.library import efficient_su2

    dev = fleet["ibm:fake_torino"]
    qc = efficient_su2(16, reps=2).decompose()
    qc = qc.assign_parameters(np.random.default_rng(0).uniform(0, 1, qc.num_parameters))
    qc.measure_all()
    isa = dev.transpile(qc)
    cal = dev.calibration()
    t0 = time.perf_counter()
    for s in (3.0, 5.0):
        fold_gates(isa, s, gates="all", basis=dev.target.basis_gates, errors=cal.error)
    fold_ms = (time.perf_counter() - t0) * 1e3 / 2

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows.values()]))

    out = {
        "benchmark": "mitigation",
        "devices": [d.spec for d in fleet],
        "error_unmitigated": mean("error_unmitigated"),
        "error_readout": mean("error_readout"),
        "error_readout_zne": mean("error_readout_zne"),
        "error_reduction": mean("error_unmitigated") / max(mean("error_readout_zne"), 1e-12),
        "error_reduction_readout": mean("error_unmitigated") / max(mean("error_readout"), 1e-12),
        "se_readout_zne": mean("se_readout_zne"),
        "shots_unmitigated": int(sum(r["shots_unmitigated"] for r in rows.values())),
        "shots_readout": int(sum(r["shots_readout"] for r in rows.values())),
        "shots_readout_zne": int(sum(r["shots_readout_zne"] for r in rows.values())),
        "fold_ms_per_circuit": round(fold_ms, 2),
        "problems": rows,
    }
    return out


if __name__ == "__main__":
    result = asyncio.run(main())
    print(
        json.dumps(
            result, default=lambda o: o if not isinstance(o, float) or math.isfinite(o) else None
        )
    )
    sys.exit(0)
