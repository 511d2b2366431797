"""Benchmark: circuit cutting, qiskit-addon-cutting's reference workflow vs multiqpu.

The same circuit, observable and shot budget through both:

* reference (qiskit-addon-cutting's tutorial workflow): ``find_cuts`` (fragments of <= 7
  qubits), ``cut_wires``/``expand_observables``/``partition_problem``,
  ``generate_cutting_experiments(num_samples=inf)``, Aer's ``SamplerV2`` run on each
  partition's sub-experiments in turn (4096 shots each), ``reconstruct_expectation_values``;
* multiqpu: ``await fleet.estimate(circuit, observable, shots=<the same total>)`` on a local
  fleet of ideal simulators no wider than 7 qubits (plan, de-duplicated sub-experiments, a
  pilot then Neyman allocation, scheduler placement, vectorised reconstruction).

Circuit: 12-qubit EfficientSU2 (linear entanglement, reps=2, seeded random angles);
observable: the nearest-neighbour ZZ energy sum_i Z_i Z_{i+1} / 11. Both run after the
imports and a small warm-up of Aer, in one process.

A single run's error is one random draw, so besides ``error_reference`` and
``error_multiqpu`` (|value - exact| of the timed runs) the line holds each method's standard
deviation: ``sd_reference`` computed exactly (first order) from the sub-experiments' exact
output distributions for the reference's allocation (4096 shots per sub-experiment,
duplicates run separately), and ``sd_multiqpu`` measured as the RMS error of
``REPEATS`` further multiqpu runs (``std_error_multiqpu`` is what the timed run reported).

Prints one JSON line. Run: ``python tests/benchmarks/cutting.py`` (about 30 s on 2 cores).
"""

from __future__ import annotations

import asyncio
import json
import math
import platform
import time
import warnings

N_QUBITS = 12
MAX_WIDTH = 7
SHOTS_PER_SUBEXPERIMENT = 4096
REPEATS = 5
SEED = 7


def build():  # type: ignore[no-untyped-def]
    import numpy as np
    from qiskit.circuit.library import efficient_su2
    from qiskit.quantum_info import SparsePauliOp

    qc = efficient_su2(N_QUBITS, entanglement="linear", reps=2)
    rng = np.random.default_rng(SEED)
    qc = qc.assign_parameters(rng.uniform(-np.pi, np.pi, qc.num_parameters))
    terms = ["I" * (N_QUBITS - i - 2) + "ZZ" + "I" * i for i in range(N_QUBITS - 1)]
    observable = SparsePauliOp(terms, [1.0 / (N_QUBITS - 1)] * (N_QUBITS - 1))
    return qc, observable


def reference(qc, observable):  # type: ignore[no-untyped-def]
    """qiskit-addon-cutting's workflow; returns (value, seconds, details)."""
    import numpy as np
    from qiskit_addon_cutting import (
        DeviceConstraints,
        OptimizationParameters,
        cut_wires,
        expand_observables,
        find_cuts,
        generate_cutting_experiments,
        partition_problem,
        reconstruct_expectation_values,
    )
    from qiskit_aer.primitives import SamplerV2

    t0 = time.perf_counter()
    cut, meta = find_cuts(qc, OptimizationParameters(seed=111), DeviceConstraints(MAX_WIDTH))
    qc_w = cut_wires(cut)
    obs_w = expand_observables(observable.paulis, qc, qc_w)
    problem = partition_problem(circuit=qc_w, observables=obs_w)
    subexperiments, coefficients = generate_cutting_experiments(
        circuits=problem.subcircuits, observables=problem.subobservables, num_samples=np.inf
    )
    t1 = time.perf_counter()
    sampler = SamplerV2(seed=SEED)
    results = {
        label: sampler.run(circuits, shots=SHOTS_PER_SUBEXPERIMENT).result()
        for label, circuits in subexperiments.items()
    }
    t2 = time.perf_counter()
    terms = reconstruct_expectation_values(results, coefficients, problem.subobservables)
    value = float(np.dot(terms, observable.coeffs).real)
    t3 = time.perf_counter()
    n_sub = sum(len(v) for v in subexperiments.values())
    details = {
        "subexperiments": n_sub,
        "sampling_overhead": float(meta["sampling_overhead"]),
        "time_prepare_s": t1 - t0,
        "time_run_s": t2 - t1,
        "time_reconstruct_s": t3 - t2,
    }
    return value, t3 - t0, details, (problem, subexperiments, coefficients)


def _signed_values(circ, subobservables):  # type: ignore[no-untyped-def]
    """Exact outcome probabilities of a reference sub-experiment and, per outcome and
    sub-observable, its +-1 value (QPD parity times the observable's parity)."""
    import numpy as np
    from multiqpu_local._exact import exact_distribution

    obs_reg = next(r for r in circ.cregs if r.name == "observable_measurements")
    qpd_reg = next(r for r in circ.cregs if r.name == "qpd_measurements")
    obs_clbit = {circ.find_bit(b).index for b in obs_reg}
    qubit_of_bit = {
        circ.find_bit(i.clbits[0]).index: circ.find_bit(i.qubits[0]).index
        for i in circ.data
        if i.operation.name == "measure" and circ.find_bit(i.clbits[0]).index in obs_clbit
    }
    qpd_bits = [circ.find_bit(b).index for b in qpd_reg]
    probs = exact_distribution(circ)
    p = np.array(list(probs.values()))
    z = np.zeros((len(p), len(subobservables)))
    for row, key in enumerate(probs):
        bits = key[::-1]
        sign = (-1) ** sum(int(bits[b]) for b in qpd_bits)
        for k, sub in enumerate(subobservables):
            parity = sum(int(bits[b]) for b, q in qubit_of_bit.items() if sub.z[q] or sub.x[q])
            z[row, k] = sign * (-1) ** parity
    return p, z


def reference_sd(observable, ref_problem) -> float:  # type: ignore[no-untyped-def]
    """Standard deviation (first order, from exact inputs) of the reference estimator: each
    of its sub-experiments an independent circuit run with 4096 shots (duplicates too),
    the value a product of the partitions' means per term."""
    import numpy as np

    problem, subexperiments, coefficients = ref_problem
    coef = np.array([c for c, _ in coefficients])
    hk = observable.coeffs.real
    tables = {
        label: [_signed_values(c, problem.subobservables[label]) for c in circuits]
        for label, circuits in subexperiments.items()
    }
    for circuits in subexperiments.values():
        assert len(circuits) == len(coef)  # one measurement group per partition here
    means = {label: np.array([p @ z for p, z in rows]) for label, rows in tables.items()}
    var = 0.0
    for label, rows in tables.items():
        others = np.ones_like(means[label])
        for other, m in means.items():
            if other != label:
                others = others * m
        grad = coef[:, None] * hk[None, :] * others  # d value / d mean[label][term, pauli]
        for (p, z), g in zip(rows, grad, strict=True):
            f = z @ g  # one shot's contribution
            var += (p @ f**2 - (p @ f) ** 2) / SHOTS_PER_SUBEXPERIMENT
    return math.sqrt(var)


async def run_multiqpu(qc, observable, shots: int, seed: int):  # type: ignore[no-untyped-def]
    import multiqpu

    fleet = multiqpu.Fleet(
        [
            multiqpu.device("local:ideal", num_qubits=MAX_WIDTH, label="ideal7a", seed=seed),
            multiqpu.device("local:ideal", num_qubits=MAX_WIDTH, label="ideal7b", seed=seed + 1),
            multiqpu.device("local:ideal", num_qubits=5, label="ideal5", seed=seed + 2),
        ]
    )
    t0 = time.perf_counter()
    result = await fleet.estimate(qc, observable, shots=shots)
    return result, time.perf_counter() - t0


def warm_up() -> None:
    """Load and exercise Aer and the transpiler once, outside both timings."""
    from qiskit import QuantumCircuit
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import SamplerV2

    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    AerSimulator().run(qc, shots=10).result()
    SamplerV2().run([qc], shots=10).result()


def main() -> dict[str, object]:
    import numpy as np
    import qiskit
    import qiskit_addon_cutting
    from qiskit.quantum_info import Statevector

    import multiqpu

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    qc, observable = build()
    exact = float(Statevector(qc).expectation_value(observable).real)
    warm_up()

    ref_value, ref_time, ref_details, ref_problem = reference(qc, observable)
    total_shots = ref_details["subexperiments"] * SHOTS_PER_SUBEXPERIMENT
    result, mq_time = asyncio.run(run_multiqpu(qc, observable, total_shots, SEED))
    repeats = [
        asyncio.run(run_multiqpu(qc, observable, total_shots, 1000 * (r + 1)))[0].value
        for r in range(REPEATS)
    ]
    sd_ref = reference_sd(observable, ref_problem)
    report = result.report
    return {
        "benchmark": "cutting",
        "circuit": f"efficient_su2({N_QUBITS}, linear, reps=2)",
        "observable": "sum_i Z_i Z_(i+1) / 11",
        "max_fragment_qubits": MAX_WIDTH,
        "shots_total": total_shots,
        "exact": exact,
        "time_reference_s": round(ref_time, 3),
        "time_multiqpu_s": round(mq_time, 3),
        "time_ratio": round(mq_time / ref_time, 4),
        "error_reference": abs(ref_value - exact),
        "error_multiqpu": abs(result.value - exact),
        "std_error_multiqpu": result.std_error,
        "sd_reference": sd_ref,
        "sd_multiqpu": float(np.sqrt(np.mean((np.array(repeats) - exact) ** 2))),
        "reference": {
            k: (round(v, 3) if isinstance(v, float) else v) for k, v in ref_details.items()
        },
        "multiqpu": {
            "subexperiments": report.plan.subexperiments,
            "subexperiments_before_dedup": report.plan.subexperiments_naive,
            "sampling_overhead": report.plan.sampling_overhead,
            "pilot_shots": report.pilot_shots,
            "stages": report.stages,
            "engine": report.engine,
            "execution_s": round(report.execution_s, 3),
            "reconstruction_cpu_s": round(report.reconstruction_s, 4),
            "devices": {d.device: d.circuits for d in report.devices},
        },
        "versions": {
            "python": platform.python_version(),
            "qiskit": qiskit.__version__,
            "qiskit_addon_cutting": qiskit_addon_cutting.__version__,
            "multiqpu": multiqpu.__version__,
        },
    }


if __name__ == "__main__":
    print(json.dumps(main()))
