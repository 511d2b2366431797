"""Benchmark: multiqpu's fast engine vs qiskit-ibm-runtime's local mode on FakeTorino.

Both runs sample a 3-qubit GHZ circuit (2000 shots) on the same physical qubits of
fake_torino, cold, in one process, after the Python imports:

* reference: ``SamplerV2(mode=FakeTorino()).run([isa], shots=2000).result()``, including
  constructing FakeTorino (it builds the noise model of all 133 qubits);
* multiqpu: ``await multiqpu.device("ibm:fake_torino").run([ghz], shots=2000)`` on a fresh
  device object (transpilation, noise model of the 3 touched qubits, simulation).

The reference runs ``isa = device.transpile(ghz)``, so both use the same layout. Prints one
JSON line: times, ``speedup`` = reference / multiqpu (cold), ``tvd`` between the two
distributions and ``tvd_shot_noise``, the TVD expected between two independent samples of
one distribution at this shot count (so ``tvd`` near it means "same distribution").

Run: ``python tests/benchmarks/fake_backend.py`` (about 30 s on 2 cores).
"""

from __future__ import annotations

import asyncio
import json
import math
import platform
import time
import warnings
from collections.abc import Mapping

SHOTS = 2000
BACKEND = "fake_torino"


def tvd(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def expected_tvd_two_samples(p: Mapping[str, float], shots: int) -> float:
    """E[TVD] between two independent ``shots``-sample histograms of ``p`` (normal
    approximation: each difference ~ N(0, 2 p (1 - p) / shots), E|X| = sigma sqrt(2/pi))."""
    return 0.5 * sum(
        math.sqrt(2 * v * (1 - v) / shots) * math.sqrt(2 / math.pi) for v in p.values()
    )


def main() -> dict[str, object]:
    # ---- imports (excluded from both timings)
    import qiskit
    import qiskit_aer
    import qiskit_ibm_runtime
    from qiskit import QuantumCircuit
    from qiskit_ibm_runtime import SamplerV2
    from qiskit_ibm_runtime.fake_provider import FakeTorino

    import multiqpu

    ghz = QuantumCircuit(3, name="ghz3")
    ghz.h(0)
    ghz.cx(0, 1)
    ghz.cx(1, 2)
    ghz.measure_all()

    # ---- multiqpu, cold: fresh device object, nothing cached
    t0 = time.perf_counter()
    device = multiqpu.device(f"ibm:{BACKEND}")
    result = asyncio.run(device.run([ghz], shots=SHOTS))
    multiqpu_cold = time.perf_counter() - t0
    ours = result[0].distribution()

    # ---- multiqpu, warm: same device (transpilation and simulator cached)
    t0 = time.perf_counter()
    asyncio.run(device.run([ghz], shots=SHOTS))
    multiqpu_warm = time.perf_counter() - t0

    # ---- reference: qiskit-ibm-runtime local mode, same physical layout
    isa = device.transpile(ghz)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backend = FakeTorino()
        pub = SamplerV2(mode=backend).run([isa], shots=SHOTS).result()[0]
    reference = time.perf_counter() - t0
    ref_counts = pub.join_data().get_counts()
    theirs = {k: v / SHOTS for k, v in ref_counts.items()}

    pooled = {k: (ours.get(k, 0.0) + theirs.get(k, 0.0)) / 2 for k in set(ours) | set(theirs)}
    return {
        "benchmark": "fake_backend",
        "backend": BACKEND,
        "circuit": "ghz3",
        "shots": SHOTS,
        "physical_qubits": list(result[0].metadata["physical_qubits"]),
        "reference_s": round(reference, 3),
        "multiqpu_cold_s": round(multiqpu_cold, 4),
        "multiqpu_warm_s": round(multiqpu_warm, 4),
        "speedup": round(reference / multiqpu_cold, 1),
        "speedup_warm": round(reference / multiqpu_warm, 1),
        "tvd": round(tvd(ours, theirs), 4),
        "tvd_shot_noise": round(expected_tvd_two_samples(pooled, SHOTS), 4),
        "p_ghz_multiqpu": round(ours.get("000", 0) + ours.get("111", 0), 4),
        "p_ghz_reference": round(theirs.get("000", 0) + theirs.get("111", 0), 4),
        "versions": {
            "qiskit": qiskit.__version__,
            "qiskit_aer": qiskit_aer.__version__,
            "qiskit_ibm_runtime": qiskit_ibm_runtime.__version__,
            "python": platform.python_version(),
        },
    }


if __name__ == "__main__":
    print(json.dumps(main()))
