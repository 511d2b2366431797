"""What ran where, and when: a run's timeline and an estimate's error budget, drawn with
matplotlib (``pip install 'multiqpu[plot]'``), from the result and from the job journal; and
the same run from the command line (``multiqpu run``, ``multiqpu runs show``), and what
``multiqpu runs prune`` would free in the journal.

Run:  python examples/timeline.py        (writes its pictures to ./multiqpu-plots/)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from qiskit import QuantumCircuit, qasm2
from qiskit.circuit.library import real_amplitudes

import multiqpu
from multiqpu.plots import journal_timeline

FAST = os.environ.get("MULTIQPU_EXAMPLE_FAST") == "1"
OUT = Path("multiqpu-plots")


def ghz(n: int, i: int) -> QuantumCircuit:
    qc = QuantumCircuit(n, name=f"ghz{n}_{i}")
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    qc.rz(0.01 * i, 0)
    qc.measure_all()
    return qc


def main() -> None:
    OUT.mkdir(exist_ok=True)
    fleet = multiqpu.Fleet.local(time_scale=1e-3 if not FAST else 2e-4)
    noisy = multiqpu.Fleet([d for d in fleet if not d.exact])  # share the work out

    # 1. a batch on the noisy devices: its timeline, from the result and from the journal
    result = noisy.sample_sync([ghz(3, i) for i in range(12 if FAST else 40)], 500)
    spans = result.report.timeline
    print(f"run {result.run_id}: {len(spans)} jobs on {len({s.device for s in spans})} devices")
    for s in spans:
        queued = f"{s.queue_s:.2f} s" if s.queue_s is not None else "-"
        ran = f"{s.execution_s:.2f} s" if s.execution_s is not None else "-"
        hedge = " (hedge)" if s.hedge else ""
        print(f"  {s.device:20s} {len(s.tasks):3d} circuits  queued {queued}  ran {ran}  "
              f"{s.state}{hedge}")  # fmt: skip
    result.report.plot(path=OUT / "timeline.png")
    journal_timeline(result.run_id, OUT / "timeline_from_journal.png")
    print(f"timeline drawn to {OUT / 'timeline.png'} (and again from the journal)")

    # 2. a cut estimate over two 4-qubit devices: where its standard error comes from
    circuit = real_amplitudes(6, reps=1, entanglement="linear")
    circuit = circuit.assign_parameters([0.4] * circuit.num_parameters)
    pair = multiqpu.Fleet(
        [multiqpu.device("local:ideal", num_qubits=4), multiqpu.device("local:noisy", num_qubits=4)]
    )
    est = asyncio.run(
        pair.estimate(circuit, ["ZZZZZZ"], shots=20_000 if FAST else 80_000, max_fragment_qubits=3)
    )
    print(f"<ZZZZZZ> = {est.value:.4f} ± {est.std_error:.4f}")
    total = sum(s.variance[0] for s in est.report.error_budget)
    for share in est.report.error_budget:
        print(f"  fragment {share.fragment} on {share.device}: "
              f"{100 * share.variance[0] / total:.1f} % of the variance")  # fmt: skip
    est.plot("error_budget", OUT / "error_budget.png")

    # 3. the command line: your own QASM file, then the run's table and timeline
    bell = OUT / "bell.qasm"
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    bell.write_text(qasm2.dumps(qc))
    cli = [sys.executable, "-m", "multiqpu"]
    env = dict(os.environ, MULTIQPU_PROGRESS="0")
    out = subprocess.run([*cli, "run", str(bell), "--shots", "1000", "--json"],
                         capture_output=True, text=True, check=True, env=env)  # fmt: skip
    import json

    data = json.loads(out.stdout)
    row = data["circuits"][0]
    print(f"multiqpu run: {row['name']} on {row['device']}: {row['counts']}")
    subprocess.run([*cli, "runs", "show", data["run_ids"][0], "--plot",
                    str(OUT / "cli_timeline.png")], check=True, env=env)  # fmt: skip

    # 4. the journal keeps every circuit and result: what pruning it would free (a dry run;
    #    drop --dry-run to remove finished runs older than 30 days and compact the file)
    subprocess.run([*cli, "runs", "prune", "--older-than", "30d", "--dry-run"],
                   check=True, env=env)  # fmt: skip


if __name__ == "__main__":
    main()
