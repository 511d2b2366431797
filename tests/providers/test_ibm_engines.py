"""IBM provider execution: the fast engine against exact noisy physics, fast vs runtime engine,
caches, SamplerV2 job/Batch/Session modes on the local channel, cancellation, bit order."""

from __future__ import annotations

import asyncio
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from multiqpu_ibm import IBMDevice, provider
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

from multiqpu import CircuitTooLargeError, JobError, JobStatus

SIGMAS = 5.0  # every statistical check: 5 standard errors (false alarm ~1e-6 per outcome)


def ghz(n: int = 3) -> QuantumCircuit:
    circuit = QuantumCircuit(n, name=f"ghz{n}")
    circuit.h(0)
    for i in range(n - 1):
        circuit.cx(i, i + 1)
    circuit.measure_all()
    return circuit


def exact_distribution(isa: QuantumCircuit, backend: Any) -> dict[str, float]:
    """Exact outcome probabilities of an ISA circuit under the noise model qiskit-ibm-runtime's
    local mode uses for ``backend`` (Aer's model from its BackendProperties): density matrix
    for the gates, then each qubit's asymmetric readout confusion matrix, no sampling."""
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noise = NoiseModel.from_backend_properties(backend.properties(), dt=backend.dt)
    measured = {
        isa.find_bit(inst.clbits[0]).index: isa.find_bit(inst.qubits[0]).index
        for inst in isa.data
        if inst.operation.name == "measure"
    }
    order = [measured[c] for c in range(isa.num_clbits)]  # physical qubit of clbit c
    body = isa.remove_final_measurements(inplace=False)
    body.save_probabilities(qubits=order)
    sim = AerSimulator(method="density_matrix", noise_model=noise)
    probs = np.asarray(sim.run(body, shots=1).result().data()["probabilities"])
    props = backend.properties()
    for bit, q in enumerate(order):
        p10 = props.qubit_property(q)["prob_meas1_prep0"][0]
        p01 = props.qubit_property(q)["prob_meas0_prep1"][0]
        confusion = np.array([[1 - p10, p01], [p10, 1 - p01]])  # [measured, prepared]
        tensor = probs.reshape([2] * len(order))
        axis = len(order) - 1 - bit  # numpy axis of this bit (bit 0 is the last axis)
        tensor = np.moveaxis(np.tensordot(confusion, tensor, axes=([1], [axis])), 0, axis)
        probs = tensor.reshape(-1)
    n = len(order)
    return {format(i, f"0{n}b"): float(p) for i, p in enumerate(probs) if p > 0}


def within(observed: int, shots: int, p: float) -> bool:
    sigma = math.sqrt(max(p * (1 - p), 1 / shots) / shots)
    return abs(observed / shots - p) <= SIGMAS * sigma


def tvd(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def fake(name: str) -> Any:
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FakeProviderForBackendV2().backend(name)


# ---------------------------------------------------------------------------- physics
async def test_fast_engine_matches_exact_noisy_ghz() -> None:
    """Fast-engine GHZ counts on fake_manila agree, outcome by outcome, with the exact
    distribution under the runtime's own noise model for the same physical qubits."""
    shots = 4000
    dev = provider.device("fake_manila", seed=2024)
    result = (await dev.run([ghz()], shots=shots))[0]
    exact = exact_distribution(dev.transpile(ghz()), fake("fake_manila"))
    assert math.isclose(sum(exact.values()), 1.0, abs_tol=1e-9)
    for key, p in exact.items():
        assert within(result.counts.get(key, 0), shots, p), (key, result.counts, exact)
    p_ghz = exact["000"] + exact["111"]
    observed = (result.counts.get("000", 0) + result.counts.get("111", 0)) / shots
    assert within(round(observed * shots), shots, p_ghz)
    # the calibration's fidelity model (product of 1 - error) is close to the exact GHZ weight
    estimated = result.metadata["estimated_fidelity"]
    assert estimated == pytest.approx(dev.calibration().estimated_fidelity(dev.transpile(ghz())))
    assert abs(p_ghz - estimated) < 0.03
    assert p_ghz < 0.95  # manila is noisy: the model must show it


async def test_fast_engine_torino_ghz() -> None:
    shots = 2000
    dev = provider.device("fake_torino", seed=5)
    result = (await dev.run([ghz()], shots=shots))[0]
    assert sum(result.counts.values()) == shots
    qubits = result.metadata["physical_qubits"]
    assert len(qubits) == 3 and all(0 <= q < 133 for q in qubits)
    estimated = result.metadata["estimated_fidelity"]
    observed = (result.counts.get("000", 0) + result.counts.get("111", 0)) / shots
    # GHZ weight >= model fidelity - slack, within sampling noise; 000 and 111 balanced
    sigma = math.sqrt(estimated * (1 - estimated) / shots)
    assert observed >= estimated - 0.03 - SIGMAS * sigma
    p0 = result.counts.get("000", 0) / (shots * observed)
    assert abs(p0 - 0.5) <= SIGMAS * math.sqrt(0.25 / (shots * observed)) + 0.02


async def test_fast_and_runtime_engines_agree() -> None:
    """Same device, same layout, independent samples: the TVD stays within what shot noise
    allows (sum over outcomes of 5 sigma of the difference of two binomial frequencies)."""
    shots = 4000
    fast_dev = provider.device("fake_manila", seed=1)
    runtime_dev = provider.device("fake_manila", engine="runtime", seed=99)
    fast = (await fast_dev.run([ghz()], shots=shots))[0]
    slow = (await runtime_dev.run([ghz()], shots=shots))[0]
    assert fast.metadata["physical_qubits"] == slow.metadata["physical_qubits"]
    p, q = fast.distribution(), slow.distribution()
    pooled = {k: (p.get(k, 0) + q.get(k, 0)) / 2 for k in set(p) | set(q)}
    bound = 0.5 * sum(SIGMAS * math.sqrt(2 * v * (1 - v) / shots) for v in pooled.values())
    assert tvd(p, q) <= bound, (p, q, bound)
    assert bound < 0.15  # the bound is informative at this shot count


# ---------------------------------------------------------------------------- caches
def test_transpile_cache_hit() -> None:
    dev = provider.device("fake_torino")
    first = dev.transpile(ghz())
    assert dev.transpile(ghz()) is first  # a structurally equal circuit hits the cache
    assert len(dev._transpile_cache) == 1
    ops = set(first.count_ops())
    assert ops <= {"rz", "sx", "x", "cz", "measure", "barrier"}


async def test_simulator_cache_reused() -> None:
    dev = provider.device("fake_torino", seed=3)
    await dev.run([ghz()], shots=100)
    sims = dev.fast_engine.simulators
    assert len(sims) == 1
    qubits = dev.transpile(ghz())
    from multiqpu.simulation import active_qubits

    key = active_qubits(qubits)
    sim = sims.get(dev.spec, dev.fast_engine.qiskit_target, key)
    await dev.run([ghz(), ghz()], shots=100)
    assert len(sims) == 1
    assert sims.get(dev.spec, dev.fast_engine.qiskit_target, key) is sim


async def test_seeded_runs_repeat() -> None:
    a = await provider.device("fake_kyiv", seed=8).run([ghz()], shots=300)
    b = await provider.device("fake_kyiv", seed=8).run([ghz()], shots=300)
    assert a[0].counts == b[0].counts and a.metadata["seed"] == b.metadata["seed"]


# ---------------------------------------------------------------------------- runtime modes
@pytest.mark.parametrize("mode", ["job", "batch", "session"])
async def test_runtime_modes_on_local_channel(mode: str) -> None:
    dev = provider.device("fake_manila", engine="runtime", mode=mode, seed=4)
    result = await dev.run([ghz(), ghz(2)], shots=500)
    assert result.metadata["engine"] == "runtime" and result.metadata["mode"] == mode
    assert result.metadata["provider_job_id"] == result.job_id
    assert [len(next(iter(r.counts))) for r in result] == [3, 2]
    for r in result:
        assert sum(r.counts.values()) == 500
        top = max(r.counts, key=r.counts.get)  # type: ignore[arg-type]
        assert set(top) == {"0"} or set(top) == {"1"}
    if mode == "session":
        session = dev.runtime._session
        assert session is not None
        await dev.run([ghz()], shots=50)
        assert dev.runtime._session is session  # one session across jobs
        dev.close()
        assert dev.runtime._session is None


async def test_runtime_chunks_large_batches_and_retrieves() -> None:
    from multiqpu import DeviceLimits

    dev = provider.device(
        "fake_manila", engine="runtime", mode="batch", limits=DeviceLimits(max_circuits_per_job=2)
    )
    circuits = [ghz(), ghz(2), ghz(3)]
    job = await dev.submit(circuits, shots=100)
    assert len(job.job_id.split(",")) == 2  # two SamplerV2 jobs in one Batch
    result = await job.result()
    assert len(result) == 3 and [len(next(iter(r.counts))) for r in result] == [3, 2, 3]
    assert await dev.retrieve(job.job_id) is job
    with pytest.raises(JobError):
        await dev.retrieve("no-such-job")


async def test_runtime_bit_order_and_loose_bits() -> None:
    """Registers joined in Qiskit order (last register leftmost); loose classical bits too."""
    q = QuantumRegister(3)
    a, c = ClassicalRegister(1, "a"), ClassicalRegister(2, "c")
    two_regs = QuantumCircuit(q, a, c)
    two_regs.x(0)
    two_regs.x(2)
    two_regs.measure(0, a[0])
    two_regs.measure(1, c[0])
    two_regs.measure(2, c[1])
    loose = QuantumCircuit(2, 2)
    loose.x(1)
    loose.measure([0, 1], [0, 1])
    for engine in ("runtime", "fast"):
        dev = provider.device("fake_manila", engine=engine, seed=6)
        result = await dev.run([two_regs, loose], shots=400)
        modes = [max(r.counts, key=r.counts.get) for r in result]  # type: ignore[arg-type]
        assert modes == ["101", "10"], (engine, [dict(r.counts) for r in result])


# ---------------------------------------------------------------------------- cancellation
async def test_cancelling_the_awaiting_task_cancels_a_runtime_job() -> None:
    dev = provider.device("fake_manila", engine="runtime")
    job = await dev.submit([ghz()] * 2, shots=10_000)
    waiter = asyncio.ensure_future(job.result())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert job.cancel_results, "the vendor job's cancel() was called"  # type: ignore[attr-defined]
    assert await job.status() is JobStatus.CANCELLED
    with pytest.raises(JobError, match="cancelled"):
        await job.result()


async def test_cancelling_run_cancels_a_fast_job() -> None:
    dev = provider.device("fake_torino", seed=1)
    task = asyncio.ensure_future(dev.run([ghz(4)] * 3, shots=5000))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    job = next(iter(dev._jobs.values()))
    assert await job.status() is JobStatus.CANCELLED
    with pytest.raises(JobError, match="cancelled"):
        await job.result()


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize("engine", ["fast", "runtime"])
async def test_circuit_too_large(engine: str) -> None:
    dev: IBMDevice = provider.device("fake_manila", engine=engine)
    with pytest.raises(CircuitTooLargeError, match="needs 6 qubits"):
        await dev.run([ghz(6)], shots=10)


@pytest.mark.parametrize("engine", ["fast", "runtime"])
async def test_concurrent_runs_on_a_fresh_device(engine: str) -> None:
    """Concurrent jobs transpile in parallel threads: the shared pass manager must not be
    run twice at once (Qiskit passes keep per-run state)."""
    for attempt in range(3 if engine == "fast" else 1):
        dev = provider.device("fake_manila", engine=engine, seed=attempt)
        batches = []
        for i in range(4):
            c = QuantumCircuit(2)
            if i & 1:
                c.x(0)
            if i & 2:
                c.x(1)
            c.h(0)
            c.h(0)
            c.measure_all()
            batches.append([c])
        results = await asyncio.gather(*(dev.run(b, shots=200) for b in batches))
        modes = [max(r[0].counts, key=r[0].counts.get) for r in results]  # type: ignore[arg-type]
        assert modes == ["00", "01", "10", "11"]


async def test_seeded_device_draws_a_new_seed_per_job() -> None:
    """Seeded: reproducible device to device, yet repeated jobs are independent samples."""
    from qiskit import QuantumCircuit

    import multiqpu

    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    a = multiqpu.device("ibm:fake_manila", seed=7)
    b = multiqpu.device("ibm:fake_manila", seed=7)
    a1, a2 = (await a.run([qc], shots=500))[0], (await a.run([qc], shots=500))[0]
    b1 = (await b.run([qc], shots=500))[0]
    assert a1.counts == b1.counts  # same seed stream, same first draw
    assert a1.metadata["seed"] != a2.metadata["seed"]
    assert a1.counts != a2.counts  # a second job is a fresh sample


async def test_runtime_jobs_respect_the_execution_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # IBM validates at most 10M circuits x shots per Sampler job: larger batches are split
    import multiqpu_ibm._device as ibm_device

    monkeypatch.setattr(ibm_device, "MAX_EXECUTIONS", 250)
    dev = provider.device("fake_manila", engine="runtime", mode="batch")
    job = await dev.submit([ghz(), ghz(2), ghz(3)], shots=100)
    assert len(job.job_id.split(",")) == 2  # 2 circuits x 100 shots, then 1
    result = await job.result()
    assert [sum(r.counts.values()) for r in result] == [100, 100, 100]
