"""Benchmark: chaos, crash points, fuzzing and load on the real async executor (issue 13).

Prints one JSON line. The checks (each reduced in tests/reliability/):

* **chaos** (``tests/reliability/_chaos.py``): ``--circuits`` circuits, one per job, over seven
  FaultyDevices: 20 % transient failures on every device, plus throttling with Retry-After,
  a device lost mid-run with its jobs in flight, a hanging device, late results whose
  provider ignores cancellation, lost acknowledgements (duplicated work). Exact
  probabilities (``shots=None``), so the answer must equal a fault-free run's exactly.
  ``jobs`` counts the jobs the providers accepted; ``faults`` the faults injected, by kind;
  ``results_lost``: circuits with no result or one different from the fault-free run;
  ``duplicates``: circuits returned more than once (by the run or in the journal).
* **trust**: the same devices plus one whose every result has 5 % of its bits flipped,
  sampled (``--trust-shots`` shots) with ``trust=multiqpu.Trust()``: ``trust.flagged``, the
  results ``rerun`` elsewhere, ``kept_from_corrupt`` and ``off_exact`` (circuits whose counts
  miss the exact distribution by more than 5 standard errors).
* **crash points** (``_crash.py``): a child orchestrator is SIGKILLed inside a submit call
  (job accepted, id not yet journaled), while polling (result arrived, not yet journaled),
  inside a journal write (before the commit), or at a random time; ``K`` is drawn at random
  per point. After each, the run resumes in this process: ``resumed`` counts runs that then
  completed with every result exact, ``resubmitted_completed`` the circuits the journal
  held as done that the resume submitted again, ``journal_opened`` the kills after which
  the journal opened. ``shared_journal``: two processes on one journal file, one killed.
* **fuzz** (``_fuzz.py``): ``--fuzz`` hypothesis cases per family (circuits, shots,
  observables, device specs, options, config TOML, OpenQASM); ``escapes``: exceptions that
  are not MultiQPUErrors; ``misses``: bad input accepted, a message that does not name the
  problem, or a submission although the input was refused.
* **load**: ``--load`` circuits (10 per job) over six devices in three providers with rate
  limits and 10 % throttling; every submit call's time is recorded; ``rate_limit_violations``
  counts windows of a provider's period holding more calls than its limit; ``peak_rss_mb`` is
  this process's peak resident memory after the load run (run first; qiskit included);
  ``rss_growth_mb`` is how much the load run's resident memory rose above where it started
  (sampled every 50 ms): what 10,000 circuits and their results cost.

Run: ``python tests/benchmarks/chaos.py`` (about 5-8 minutes on 2 cores) or ``--quick``.
Seeds: developed on seed 1; the figures in docs/reliability.md are from fresh seeds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "reliability"))


async def _main(args: argparse.Namespace) -> dict[str, object]:
    import _chaos
    import _crash

    out: dict[str, object] = {"seed": args.seed}
    t0 = time.perf_counter()
    load = await _chaos.run_load(args.load, args.seed)
    out["load"] = {
        "circuits": load.circuits,
        "jobs": load.jobs,
        "submit_calls": load.submit_calls,
        "max_calls_per_window": load.max_calls_per_window,
        "limits": {p: list(v) for p, v in load.limits.items()},
        "wall_s": round(load.wall_s, 1),
    }
    chaos = await _chaos.run_chaos(args.circuits, args.seed)
    trust = await _chaos.run_chaos_trust(args.trust_circuits, args.seed, args.trust_shots)
    faults = Counter(chaos.faults)
    faults.update(trust.faults)
    rng = random.Random(args.seed)
    crashes = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.crash_points):
            phase = _crash.PHASES[n % len(_crash.PHASES)]
            k = {
                "submit": rng.randint(1, _crash.N_TASKS),
                "poll": rng.randint(1, _crash.N_TASKS),
                "journal": rng.randint(1, 3 * _crash.N_TASKS),
                "timer": rng.randint(200, 1200),  # the child finishes in about 2 s
            }[phase]
            path = Path(tmp) / f"crash-{n}.sqlite"
            crashes.append(await _crash.crash_and_resume(path, phase, k, args.seed + n))
        shared = await _crash.shared_journal(
            Path(tmp) / "shared.sqlite", rng.randint(5, 3 * _crash.N_TASKS), args.seed
        )
    tallies = args.tallies  # run before, outside this event loop (the fuzz runs its own)
    out.update(
        jobs=chaos.jobs + trust.jobs,
        faults=dict(sorted(faults.items())),
        results_lost=chaos.results_lost + trust.results_lost,
        duplicates=chaos.duplicates + trust.duplicates,
        crash_points=sum(c.killed for c in crashes),
        resumed=sum(c.resumed for c in crashes if c.killed),
        resubmitted_completed=sum(c.resubmitted_completed for c in crashes),
        fuzz_cases=sum(t.cases for t in tallies.values()),
        escapes=sum(len(t.escapes) for t in tallies.values()),
        rate_limit_violations=load.rate_limit_violations,
        peak_rss_mb=load.peak_rss_mb,
        rss_growth_mb=load.rss_growth_mb,
        chaos={
            "circuits": chaos.circuits,
            "jobs": chaos.jobs,
            "max_abs_diff_vs_fault_free": chaos.max_abs_diff,
            "wall_s": round(chaos.wall_s, 1),
        },
        trust={
            "circuits": trust.circuits,
            "shots": trust.shots,
            "jobs": trust.jobs,
            "flagged": trust.flagged,
            "rerun": trust.rerun,
            "kept_from_corrupt": trust.kept_from_corrupt,
            "off_exact": trust.off_exact,
        },
        crash={
            "by_phase": dict(Counter(c.phase for c in crashes if c.killed)),
            "finished_before_kill": sum(not c.killed for c in crashes),
            "journal_opened": sum(c.journal_opened for c in crashes),
            "done_before_kill_p50": sorted(c.done_before for c in crashes)[len(crashes) // 2],
            "shared_journal": shared,
        },
        fuzz={
            name: {
                "cases": t.cases,
                "refused": t.refused,
                "ran": t.ran,
                "escapes": len(t.escapes),
                "misses": len(t.misses),
            }
            for name, t in tallies.items()
        },
        fuzz_misses=sum(len(t.misses) for t in tallies.values()),
        examples=[e[:200] for t in tallies.values() for e in (t.escapes + t.misses)[:3]],
        wall_s=round(time.perf_counter() - t0, 1),
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a CI-sized run (about 1 minute)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--circuits", type=int, default=1200)
    parser.add_argument("--trust-circuits", type=int, default=400)
    parser.add_argument("--trust-shots", type=int, default=400)
    parser.add_argument("--crash-points", type=int, default=24)
    parser.add_argument("--fuzz", type=int, default=1500, help="cases per family (7 families)")
    parser.add_argument("--load", type=int, default=10_000)
    args = parser.parse_args()
    if args.quick:
        args.circuits, args.crash_points = 150, 4
        args.fuzz, args.load = 60, 1000
    warnings.simplefilter("ignore")
    import _fuzz

    t0 = time.perf_counter()
    args.tallies = {name: _fuzz.run_family(name, args.fuzz, args.seed) for name in _fuzz.FAMILIES}
    fuzz_s = time.perf_counter() - t0
    out = asyncio.run(_main(args))
    out["fuzz_wall_s"] = round(fuzz_s, 1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
