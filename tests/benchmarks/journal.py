"""Benchmark: what the job journal costs the scheduler.

* ``start_run_10k_s``: ``Journal.start_run`` for 10,000 small circuits (3 qubits, 5 gates),
  and, measured apart, its two big parts: circuit keys and QPY serialisation (the rest is the
  SQLite insert; on a loaded machine the parts measured apart can add up to more than the whole).
* per synchronous mode (``NORMAL``, the default, and ``FULL``): 1,000 jobs, each recorded as
  ``job_submitting`` + ``job_submitted`` + ``job_done`` (3 commits), on a real file; the mean
  cost of one committed write in milliseconds.
* ``load_circuits_10k_s``: rebuilding the 10,000 circuits from QPY (what a resume pays).

Prints one JSON line. Run: ``python tests/benchmarks/journal.py`` (about 5 s on 2 cores).
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path

N_CIRCUITS = 10_000
N_JOBS = 1_000


def main() -> None:
    from qiskit import QuantumCircuit

    from multiqpu._journal_codec import circuit_to_qpy
    from multiqpu._transpile import circuit_key
    from multiqpu.device import CircuitResult, JobTimings
    from multiqpu.journal import Journal

    circuits = []
    for i in range(N_CIRCUITS):
        qc = QuantumCircuit(3)
        qc.h(0)
        qc.cx(0, 1)
        qc.ry(1e-3 * i, 2)
        qc.cx(1, 2)
        qc.measure_all()
        circuits.append(qc)
    out: dict[str, object] = {"benchmark": "journal", "python": platform.python_version()}

    t = time.perf_counter()
    for c in circuits:
        circuit_key(c)
    key_s = time.perf_counter() - t
    out["circuit_key_10k_s"] = round(key_s, 3)
    t = time.perf_counter()
    for c in circuits:
        circuit_to_qpy(c)
    qpy_s = time.perf_counter() - t
    out["qpy_10k_s"] = round(qpy_s, 3)

    result = CircuitResult({"000": 60, "111": 40}, 100, metadata={"physical_qubits": (0, 1, 2)})
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("NORMAL", "FULL"):
            journal = Journal(Path(tmp) / f"{mode}.sqlite", synchronous=mode)
            t = time.perf_counter()
            journal.start_run("r", circuits=circuits, shots=[100] * N_CIRCUITS, options={})
            start = time.perf_counter() - t
            t = time.perf_counter()
            for i in range(N_JOBS):
                row = journal.job_submitting("r", device="local:ideal", task_indices=[i], shots=100)
                journal.job_submitted(row, f"job-{i}")
                journal.job_done(
                    row, [result], calibration_fingerprint="fp", timings=JobTimings(time.time())
                )
            jobs = time.perf_counter() - t
            out[f"{mode.lower()}_1k_jobs_s"] = round(jobs, 3)
            out[f"{mode.lower()}_ms_per_write"] = round(1e3 * jobs / (3 * N_JOBS), 4)
            if mode == "NORMAL":
                out["start_run_10k_s"] = round(start, 3)
                t = time.perf_counter()
                journal.load_circuits("r")
                out["load_circuits_10k_s"] = round(time.perf_counter() - t, 3)
                out["file_mb_10k_circuits"] = round(
                    sum(p.stat().st_size for p in Path(tmp).glob("NORMAL.sqlite*")) / 1e6, 2
                )
            journal.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
