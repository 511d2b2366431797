"""The engine abstraction without Ray: choosing an engine, the ``[engine]`` config table,
``import multiqpu`` never loading Ray, and the local engine's process pool."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from _engine_work import square

import multiqpu
from multiqpu.engine import EngineDevice, LocalEngine, RayEngine, get_engine
from multiqpu.pipeline import estimate

ROOT = Path(__file__).resolve().parents[2]


def test_import_multiqpu_does_not_load_ray() -> None:
    code = (
        "import sys, multiqpu, multiqpu.engine, multiqpu.pipeline\n"
        "from multiqpu.engine import get_engine\n"
        "e = get_engine('ray')\n"  # choosing the engine starts nothing either
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)  # fmt: skip
    assert out.stdout.strip() == "False"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_engine_precedence_argument_env_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(tmp_path, '[engine]\nkind = "ray"\naddress = "ray://head:10001"\n')
    monkeypatch.setenv("MULTIQPU_CONFIG", str(path))
    monkeypatch.delenv("MULTIQPU_ENGINE", raising=False)
    from_file = get_engine()
    assert isinstance(from_file, RayEngine) and from_file.address == "ray://head:10001"
    monkeypatch.setenv("MULTIQPU_ENGINE", "local")
    assert isinstance(get_engine(), LocalEngine)  # the environment over the file
    assert isinstance(get_engine("ray"), RayEngine)  # the argument over both
    mine = LocalEngine(processes=2)
    assert get_engine(mine) is mine
    monkeypatch.delenv("MULTIQPU_CONFIG")
    monkeypatch.delenv("MULTIQPU_ENGINE")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nothing"))
    default = get_engine()
    assert isinstance(default, LocalEngine) and not default.remote  # in-process


def test_config_engine_table_local_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MULTIQPU_CONFIG", str(_config(tmp_path, "[engine]\nprocesses = 3\n")))
    monkeypatch.delenv("MULTIQPU_ENGINE", raising=False)
    engine = get_engine()
    assert isinstance(engine, LocalEngine) and engine.processes == 3 and engine.remote


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('kind = "dask"', "engine.kind"),
        ('kind = "ray"\nadress = "auto"', "engine.adress"),
        ('kind = "ray"\nnum_cpus = 0', "engine.num_cpus"),
        ('kind = "ray"\naddress = ""', "engine.address"),
        ('kind = "local"\naddress = "auto"', "engine"),
        ('kind = "ray"\nprocesses = 2', "engine"),
        ("processes = -1", "engine.processes"),
    ],
)
def test_bad_engine_table(tmp_path: Path, table: str, key: str) -> None:
    from multiqpu.config import load_config

    path = _config(tmp_path, f"[engine]\n{table}\n")
    with pytest.raises(multiqpu.ConfigError) as info:
        load_config(path)
    assert info.value.key == key and str(path) in str(info.value)


def test_unknown_engine_names_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(multiqpu.ConfigError, match="unknown engine 'spark'"):
        get_engine("spark")
    monkeypatch.setenv("MULTIQPU_ENGINE", "spark")
    with pytest.raises(multiqpu.ConfigError) as info:
        get_engine()
    assert info.value.key == "MULTIQPU_ENGINE"
    with pytest.raises(multiqpu.InvalidInputError):
        LocalEngine(processes=-1)


def _pair(seed: int = 11) -> list[multiqpu.Device]:
    return [
        multiqpu.device("local:ideal", num_qubits=4, seed=seed, label="a"),
        multiqpu.device("local:ideal", num_qubits=4, seed=seed + 1, label="b"),
    ]


def test_offload_wraps_rebuildable_simulators_only() -> None:
    from multiqpu.pool import DevicePool
    from multiqpu.testing.faults import FaultyDevice

    a, b = _pair()
    wrapped = FaultyDevice(multiqpu.device("local:ideal", num_qubits=3, label="q"))
    pool = DevicePool([a, b, wrapped])
    offloaded = LocalEngine(processes=1).offload(pool)
    kinds = [type(d) for d in offloaded]
    assert kinds[:2] == [EngineDevice, EngineDevice] and kinds[2] is FaultyDevice
    assert offloaded.specs == pool.specs and offloaded.knowledge is pool.knowledge
    assert LocalEngine().offload(pool) is pool  # in-process: nothing to wrap


def test_local_process_pool_map_and_same_estimates() -> None:
    from qiskit.circuit.library import efficient_su2

    engine = LocalEngine(processes=2)
    try:
        assert engine.map(square, range(7)) == [x * x for x in range(7)]
        assert asyncio.run(engine.amap(square, [3, 4])) == [9, 16]
        qc = efficient_su2(6, reps=1, entanglement="linear")
        qc = qc.assign_parameters([0.3 * k for k in range(qc.num_parameters)])
        obs = ["ZZZZZZ", "XXXXXX"]
        runs = [
            asyncio.run(estimate(_pair(), qc, obs, shots=20_000, engine=e, use_scheduler=False))
            for e in ("local", engine)
        ]
    finally:
        engine.close()
    assert runs[0].report.subexperiments > 1  # cut: fragments simulated in worker processes
    assert runs[0].values == runs[1].values and runs[0].std_errors == runs[1].std_errors


def test_simulate_sweep_on_the_command_line() -> None:
    import json

    from multiqpu.scheduler import simulate

    args = ["simulate", "--devices", "3", "--circuits", "50", "--seeds", "2", "--seed", "4"]
    out = subprocess.run([sys.executable, "-m", "multiqpu", *args, "--engine", "local", "--json"],
                         capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    sweep = json.loads(out.stdout)
    one_by_one = [simulate(3, 50, seed=s).makespan_s for s in (4, 5)]
    assert sweep["seeds"] == [4, 5] and sweep["makespan_s"] == one_by_one
    assert sweep["makespan_p50_p90_max_s"][2] == max(one_by_one)


def test_an_engine_job_times_its_batch_not_its_wait() -> None:
    """Two batches in one worker process run one after the other: each job's execution
    time is its own batch's run time (the rest is queue time), so the scheduler learns the
    simulator's speed, not the engine's queue."""
    from qiskit import QuantumCircuit

    from multiqpu.engine._dispatch import RUN_S
    from multiqpu.pool import DevicePool

    qc = QuantumCircuit(4)
    qc.h(range(4))
    qc.measure_all()
    engine = LocalEngine(processes=1)
    try:
        (device,) = engine.offload(DevicePool([_pair()[0]]))

        async def two() -> list[multiqpu.RunResult]:
            jobs = [await device.submit([qc] * 3, 4000) for _ in range(2)]
            return [await job.result() for job in jobs]

        results = asyncio.run(two())
    finally:
        engine.close()
    for r in results:
        t = r.timings
        assert RUN_S not in r.metadata and r.metadata["engine"] == "local"
        assert t.submitted_at <= t.started_at <= t.finished_at
        assert t.execution_s is not None and t.execution_s > 0
    total = max(r.timings.finished_at for r in results) - min(
        r.timings.submitted_at for r in results
    )
    assert sum(r.timings.execution_s or 0 for r in results) <= total


def test_an_estimate_on_simulators_groups_sub_experiments_into_jobs() -> None:
    """The pipeline's scheduler runs on simulators: sub-experiments sharing a shots value
    (Neyman counts on a ladder) go in shared jobs of at least ``MIN_JOB_S`` of work, not
    one job each."""
    from qiskit.circuit.library import efficient_su2

    qc = efficient_su2(6, reps=2, entanglement="linear")
    qc = qc.assign_parameters([0.2 * k for k in range(qc.num_parameters)])
    result = asyncio.run(estimate(_pair(), qc, ["ZZZZZZ", "XXIIXX"], shots=200_000))
    report = result.report
    jobs = sum(d.jobs for d in report.devices)
    ran = report.subexperiments * report.stages  # each sub-experiment, in each stage
    assert report.engine == "scheduler" and report.stages >= 2
    assert jobs <= ran / 2, (jobs, ran)  # 63 of 200 here (149 before the ladder)
