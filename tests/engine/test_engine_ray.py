"""The Ray engine on a real local Ray instance (one per session, see conftest.py): seeded
estimates identical to the local engine's, simulator actors the scheduler uses as ordinary
devices, lost workers and killed actors whose work is run again with nothing lost, sweeps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _engine_work import die_once, square

import multiqpu
from multiqpu.engine import RayDevice, simulate_many
from multiqpu.pipeline import distribution, estimate


def _circuit(n: int = 6, reps: int = 2) -> Any:
    from qiskit.circuit.library import efficient_su2

    qc = efficient_su2(n, reps=reps, entanglement="linear")
    return qc.assign_parameters(np.random.default_rng(3).uniform(-3, 3, qc.num_parameters))


def _pair(seed: int = 21, width: int = 4) -> list[multiqpu.Device]:
    return [
        multiqpu.device("local:ideal", num_qubits=width, seed=seed, label="a"),
        multiqpu.device("local:ideal", num_qubits=width, seed=seed + 1, label="b"),
    ]


def _exact(qc: Any, label: str) -> float:
    from qiskit.quantum_info import SparsePauliOp, Statevector

    return float(Statevector(qc).expectation_value(SparsePauliOp(label)).real)


def test_seeded_estimates_identical_on_local_and_ray(ray_engine: Any) -> None:
    qc, obs = _circuit(), ["ZZZZZZ", "XIXIXI"]
    local, ray = (
        asyncio.run(estimate(_pair(), qc, obs, shots=40_000, engine=e, use_scheduler=False))
        for e in ("local", ray_engine)
    )
    assert local.report.subexperiments > 10  # cut into fragments
    assert local.values == ray.values and local.std_errors == ray.std_errors
    for value, err, label in zip(ray.values, ray.std_errors, obs, strict=True):
        assert abs(value - _exact(qc, label)) <= 4 * err  # and right, within 4 standard errors


def test_engine_chosen_by_the_environment(ray_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from multiqpu.engine import EngineDevice

    qc, obs = _circuit(), ["ZZZZZZ"]
    local = asyncio.run(estimate(_pair(), qc, obs, shots=20_000, use_scheduler=False))
    monkeypatch.setenv("MULTIQPU_ENGINE", "ray")  # joins the session's Ray instance
    ray = asyncio.run(estimate(_pair(), qc, obs, shots=20_000, use_scheduler=False))
    assert local.values == ray.values and local.std_errors == ray.std_errors
    # fleet.sample follows it too: the simulators' batches run as Ray tasks
    sampled = asyncio.run(multiqpu.Fleet(_pair()).sample([_measured()] * 3, shots=200))
    assert len(sampled) == 3 and all(sum(r.counts.values()) == 200 for r in sampled)
    from multiqpu.engine import get_engine

    assert all(isinstance(d, EngineDevice) for d in get_engine().offload(
        multiqpu.Fleet(_pair()).pool))  # fmt: skip


def _measured() -> Any:
    qc = _circuit(4, 1)
    qc.measure_all()
    return qc


def test_seeded_distributions_identical_on_local_and_ray(ray_engine: Any) -> None:
    qc = _circuit(5, 1)
    qc.measure_all()
    local, ray = (
        asyncio.run(distribution(_pair(), qc, shots=20_000, engine=e, use_scheduler=False))
        for e in ("local", ray_engine)
    )
    assert np.array_equal(local.probabilities, ray.probabilities)
    assert np.array_equal(local.std_errors, ray.std_errors)


def test_tasks_map_amap_in_order(ray_engine: Any) -> None:
    assert ray_engine.map(square, range(20)) == [x * x for x in range(20)]
    assert asyncio.run(ray_engine.amap(square, [5, 2, 7])) == [25, 4, 49]
    handle = ray_engine.put(6)
    assert asyncio.run(ray_engine.call(square, handle)) == 36  # a put object, shipped once
    assert ray_engine.workers == 2


def test_a_lost_worker_process_is_rerun_nothing_lost(ray_engine: Any, tmp_path: Path) -> None:
    # Every item kills its worker process on its first try (SIGKILL): Ray reruns it.
    out = ray_engine.map(die_once, [(str(tmp_path), i) for i in range(4)])
    assert [i for i, _ in out] == [0, 1, 2, 3]
    for i, pid in out:
        first = int((tmp_path / f"ran-{i}").read_text())
        assert pid != first  # the first worker died; another one did the work


def test_simulator_actors_are_ordinary_devices(ray_engine: Any) -> None:
    import ray

    devices = ray_engine.devices(_pair(), num_cpus=0.5)
    try:
        assert all(isinstance(d, RayDevice) for d in devices)
        assert [d.spec for d in devices] == ["local:a", "local:b"]
        qc = _circuit(4, 1)
        qc.measure_all()
        fleet = multiqpu.Fleet(devices)
        result = fleet.sample_sync([qc] * 6, shots=500)  # through the scheduler
        assert len(result) == 6 and all(sum(r.counts.values()) == 500 for r in result)
        assert {r.device for r in result} <= {"local:a", "local:b"}
        # Each actor holds its CPUs while it lives: 2 x 0.5 of the instance's 2.
        assert ray.available_resources().get("CPU", 0.0) <= 1.0
        # Seeded cutting on actor devices gives the local engine's bits.
        obs = ["ZZZZZZ", "YYIIZZ"]
        local = asyncio.run(estimate(_pair(), _circuit(), obs, shots=20_000, use_scheduler=False))
        on_actors = asyncio.run(
            estimate(ray_engine.devices(_pair(), num_cpus=0.5), _circuit(), obs,
                     shots=20_000, use_scheduler=False)
        )  # fmt: skip
        assert local.values == on_actors.values and local.std_errors == on_actors.std_errors
    finally:
        for d in devices:
            ray.kill(d.actor)


def test_killed_actor_mid_run_loses_nothing(ray_engine: Any) -> None:
    import ray

    qc = _circuit(4, 2)
    qc.measure_all()
    (device,) = ray_engine.devices([multiqpu.device("local:ideal", num_qubits=4, seed=5)])
    reference = multiqpu.device("local:ideal", num_qubits=4, seed=5)

    async def run(dev: multiqpu.Device, kill: bool) -> list[Any]:
        jobs = [await dev.submit([qc] * 3, 20_000) for _ in range(6)]
        if kill:
            first = device.actor
            ray.kill(first)  # every job is in flight on it (queued or running)
        return [await j.result() for j in jobs]

    try:
        got = asyncio.run(run(device, kill=True))
        expected = asyncio.run(run(reference, kill=False))
        assert device.restarts >= 1  # the actor died under in-flight work
        assert [r.counts for r in got] == [r.counts for r in expected]  # nothing lost, same draws
        assert [r.metadata["batch"] for r in got] == list(range(6))
    finally:
        ray.kill(device.actor)


def test_killed_actor_during_an_estimate(ray_engine: Any) -> None:
    import ray

    qc, obs = _circuit(), ["ZZZZZZ", "XIXIXI"]
    devices = ray_engine.devices(_pair(), num_cpus=0.5)

    async def with_kill() -> Any:
        task = asyncio.ensure_future(estimate(devices, qc, obs, shots=40_000, use_scheduler=False))
        while devices[0].inner.batches == 0:  # wait for work in flight on the first actor
            await asyncio.sleep(0.01)
        ray.kill(devices[0].actor)
        return await task

    try:
        killed = asyncio.run(with_kill())
        local = asyncio.run(estimate(_pair(), qc, obs, shots=40_000, use_scheduler=False))
        assert devices[0].restarts >= 1
        assert killed.values == local.values and killed.std_errors == local.std_errors
    finally:
        for d in devices:
            ray.kill(d.actor)


def test_simulate_sweep_fans_out_over_ray(ray_engine: Any) -> None:
    scenarios = [{"devices": 4, "circuits": 60, "seed": s} for s in range(3)]
    on_ray = simulate_many(scenarios, engine=ray_engine)
    local = simulate_many(scenarios, engine="local")
    keys = ("makespan_s", "mean_fidelity", "jobs")
    assert [[r[k] for k in keys] for r in on_ray] == [[r[k] for k in keys] for r in local]
    assert len({r["makespan_s"] for r in local}) == 3  # three different scenarios


def test_unknown_engine_address_is_a_config_error() -> None:
    from multiqpu.engine import RayEngine

    with pytest.raises(multiqpu.ConfigError):
        RayEngine(address="")


def test_mitigated_sample_m3_solves_on_ray(ray_engine: Any) -> None:
    from qiskit import QuantumCircuit

    def noisy() -> list[multiqpu.Device]:
        return [
            multiqpu.device("local:noisy", label=name, num_qubits=4, readout_error=err,
                            gate_error_1q=0.0, gate_error_2q=0.0, seed=seed)
            for name, err, seed in (("two", 0.02, 1), ("eight", 0.08, 2))
        ]  # fmt: skip

    circuits = []
    for k in range(6):
        qc = QuantumCircuit(3)
        qc.h(0)
        qc.cx(0, 1)
        qc.cx(1, 2)
        qc.rz(0.1 * k, 2)
        qc.measure_all()
        circuits.append(qc)
    runs = [
        asyncio.run(
            multiqpu.Fleet(noisy()).sample(
                circuits,
                shots=4000,
                engine=e,
                use_scheduler=False,
                mitigation=[multiqpu.Readout(shots=4000, cache=False, cache_dir=None)],
            )
        )
        for e in ("local", ray_engine)
    ]
    for a, b in zip(*runs, strict=True):
        assert a.device == b.device and dict(a.counts) == dict(b.counts)  # same draws
        assert a.quasi_dist.keys() == b.quasi_dist.keys()
        assert all(abs(a.quasi_dist[k] - b.quasi_dist[k]) < 1e-9 for k in a.quasi_dist)
        value, se = b.expectation("ZZI")
        assert abs(value - 1.0) < 4 * se  # GHZ parity, readout errors corrected


def _kill_first_chunk_worker(stop: Any, killed: list[int]) -> None:
    """SIGKILL the first Ray worker process seen running a chunk of simulator batches (Ray
    titles a busy worker ``ray::<function>``; read from /proc)."""
    import os
    import signal

    while not stop.is_set() and not killed:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                title = cmdline.read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::simulate_chunk"):
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
                killed.append(int(cmdline.parent.name))
                return
        stop.wait(0.005)


def test_worker_killed_mid_chunk_loses_nothing(ray_engine: Any) -> None:
    """Batches travel in chunks (several batches per task); a worker process killed while
    it runs one is rerun by Ray, each batch with its own generator: same bits as locally."""
    import threading

    from multiqpu.engine._dispatch import dispatcher_of

    qc, obs = _circuit(), ["ZZZZZZ", "XIXIXI"]
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=_kill_first_chunk_worker, args=(stop, killed))
    dispatcher = dispatcher_of(ray_engine)
    tasks0, batches0 = dispatcher.tasks, dispatcher.batches
    watcher.start()
    try:
        on_ray = asyncio.run(
            estimate(_pair(), qc, obs, shots=40_000, use_scheduler=False, engine=ray_engine)
        )
    finally:
        stop.set()
        watcher.join()
    local = asyncio.run(estimate(_pair(), qc, obs, shots=40_000, use_scheduler=False))
    assert killed, "no chunk was seen running"
    assert on_ray.values == local.values and on_ray.std_errors == local.std_errors
    batches, tasks = dispatcher.batches - batches0, dispatcher.tasks - tasks0
    assert batches > tasks >= 1  # batches submitted together shared tasks


def test_batches_of_one_turn_share_a_task_and_a_cancelled_one_spares_the_rest(
    ray_engine: Any,
) -> None:
    """Three batches submitted in one turn of the loop go as at most two tasks (two
    workers); cancelling the middle one leaves the others' results exactly the local ones."""
    from qiskit import QuantumCircuit

    from multiqpu.engine._dispatch import dispatcher_of
    from multiqpu.pool import DevicePool

    qc = QuantumCircuit(3, 3)
    qc.h(0)
    qc.cx(0, 1)
    qc.ry(0.4, 2)
    qc.measure(range(3), range(3))
    [device] = ray_engine.offload(DevicePool([_pair()[0]]))
    dispatcher = dispatcher_of(ray_engine)

    async def three() -> list[Any]:
        tasks0 = dispatcher.tasks
        jobs = [await device.submit([qc], 2_000) for _ in range(3)]
        await jobs[1].cancel()
        first, last = await jobs[0].result(), await jobs[2].result()
        with pytest.raises(multiqpu.JobError, match="cancelled"):
            await jobs[1].result()
        assert dispatcher.tasks - tasks0 <= 2
        return [first, last]

    async def local() -> list[Any]:
        plain = _pair()[0]
        return [await plain.run([qc], 2_000) for _ in range(3)]

    got, expected = asyncio.run(three()), asyncio.run(local())
    assert [r.results[0].counts for r in got] == [expected[0].results[0].counts,
                                                  expected[2].results[0].counts]  # fmt: skip
    assert [r.metadata["batch"] for r in got] == [0, 2]
