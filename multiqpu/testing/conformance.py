"""The provider conformance suite: tests every multiqpu device adapter must pass.

Subclass :class:`DeviceConformance` in your own test module and override its ``device``
fixture (parametrize it to cover several devices); subclass :class:`ProviderConformance` and
override ``provider`` to check the provider object itself::

    import pytest
    from multiqpu.testing import DeviceConformance, ProviderConformance
    from multiqpu_acme import provider

    class TestAcmeDevice(DeviceConformance):
        @pytest.fixture(params=["qpu1", "simulator"])
        def device(self, request):
            return provider.device(request.param)

    class TestAcmeProvider(ProviderConformance):
        @pytest.fixture
        def provider(self):
            return provider

The tests are plain synchronous pytest tests (each drives its coroutines with
``asyncio.run``), so no asyncio plugin is needed. They run small circuits with few shots.
Physics checks derive their thresholds from the device's own calibration: a device must be
at least roughly as good as it claims. Tune the class attributes (``shots``, ``sigmas``,
``fidelity_slack``) if your device needs it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from multiqpu._sync import run_sync
from multiqpu.calibration import Calibration
from multiqpu.device import (
    CircuitResult,
    CostEstimate,
    Device,
    DeviceLimits,
    DeviceStatus,
    DeviceTarget,
    JobStatus,
    QueueEstimate,
    RunResult,
)
from multiqpu.errors import CircuitTooLargeError, InvalidInputError
from multiqpu.testing import _circuits as circuits
from multiqpu.testing._provider import ProviderConformance

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = ["DeviceConformance", "ProviderConformance"]

# Instructions a transpiled circuit may hold besides the device's basis gates.
_ALWAYS_ALLOWED = frozenset({"measure", "barrier", "reset", "delay"})


class DeviceConformance:
    """Tests for one :class:`~multiqpu.Device`; override the ``device`` fixture."""

    #: shots per sampled run (kept small: the suite must stay fast)
    shots: ClassVar[int] = 400
    #: how many standard errors of sampling noise a statistical check tolerates
    sigmas: ClassVar[float] = 5.0
    #: how far below its calibration-estimated fidelity a correlation may fall (relative)
    fidelity_slack: ClassVar[float] = 0.15
    #: guard against hangs: the longest any single scenario may take
    timeout_s: ClassVar[float] = 300.0

    @pytest.fixture
    def device(self) -> Device:
        raise NotImplementedError("override the `device` fixture with one returning your Device")

    # ------------------------------------------------------------------ helpers
    def run(self, device: Device, batch: Sequence[QuantumCircuit], shots: int | None) -> RunResult:
        async def scenario() -> RunResult:
            return await asyncio.wait_for(device.run(batch, shots), self.timeout_s)

        return run_sync(scenario())

    def check_counts(self, result: CircuitResult, circuit: QuantumCircuit, shots: int) -> None:
        assert isinstance(result, CircuitResult)
        assert result.shots == shots
        assert result.probabilities is None or math.isclose(
            sum(result.probabilities.values()), 1.0, abs_tol=1e-6
        )
        assert sum(result.counts.values()) == shots, "counts must add up to the shots"
        for key, value in result.counts.items():
            assert isinstance(key, str) and len(key) == circuit.num_clbits, (
                f"key {key!r}: expected a bitstring of width {circuit.num_clbits} (one character "
                "per classical bit, registers joined without spaces)"
            )
            assert set(key) <= {"0", "1"}
            assert isinstance(value, int) and value > 0

    def correlation_floor(self, device: Device, circuit: QuantumCircuit) -> float:
        """Lowest acceptable probability of the ideal outcomes, from the device's own
        calibration: its estimated fidelity less ``fidelity_slack``, less sampling noise."""
        expected = device.calibration().estimated_fidelity(device.transpile(circuit))
        sigma = max(math.sqrt(expected * (1 - expected) / self.shots), 1 / self.shots)
        floor = expected * (1 - self.fidelity_slack) - self.sigmas * sigma
        if floor <= 0.55:
            pytest.skip(f"{device.spec} claims too low a fidelity ({expected:.3f}) for this check")
        return floor

    def require_qubits(self, device: Device, n: int) -> None:
        if device.num_qubits < n:
            pytest.skip(f"{device.spec} has fewer than {n} qubits")

    # ------------------------------------------------------------------ identity and target
    def test_identity(self, device: Device) -> None:
        assert isinstance(device, Device)
        assert isinstance(device.provider, str) and device.provider
        assert ":" not in device.provider
        assert isinstance(device.name, str) and device.name
        assert device.spec == f"{device.provider}:{device.name}"
        assert isinstance(device.num_qubits, int) and device.num_qubits > 0
        assert device.spec in repr(device)

    def test_target_consistency(self, device: Device) -> None:
        target = device.target
        assert isinstance(target, DeviceTarget)
        assert target.num_qubits == device.num_qubits
        assert target.basis_gates and all(isinstance(g, str) for g in target.basis_gates)
        if target.coupling_map is not None:
            assert target.coupling_map, "an empty coupling map: use None for all-to-all"
            for a, b in target.coupling_map:
                assert 0 <= a < device.num_qubits and 0 <= b < device.num_qubits
                assert a != b

    def test_limits(self, device: Device) -> None:
        limits = device.limits
        assert isinstance(limits, DeviceLimits)
        assert limits.max_shots >= 1 and limits.max_circuits_per_job >= 1
        assert limits.max_concurrent_jobs >= 1
        assert limits.max_cost_usd is None or limits.max_cost_usd >= 0

    def test_transpile_respects_target(self, device: Device) -> None:
        self.require_qubits(device, 2)
        isa = device.transpile(circuits.bell())
        allowed = set(device.target.basis_gates) | _ALWAYS_ALLOWED
        assert isa.num_qubits <= device.num_qubits
        edges = device.target.coupling_map
        for inst in isa.data:
            assert inst.operation.name in allowed, f"{inst.operation.name} is not native"
            if edges is not None and len(inst.qubits) == 2:
                pair = tuple(isa.find_bit(q).index for q in inst.qubits)
                assert pair in set(edges), f"{inst.operation.name} on {pair}: not an edge"

    # ------------------------------------------------------------------ calibration
    def test_calibration_profile(self, device: Device) -> None:
        cal = device.calibration()
        assert isinstance(cal, Calibration)
        assert cal.num_qubits == device.num_qubits
        assert device.calibration().fingerprint() == cal.fingerprint(), "calibration is unstable"
        again = Calibration.from_dict(cal.to_dict())
        assert again.fingerprint() == cal.fingerprint(), "to_dict/from_dict must round-trip"

    def test_calibration_values_in_range(self, device: Device) -> None:
        cal, n = device.calibration(), device.num_qubits
        per_qubit: dict[str, Mapping[int, float]] = {
            "readout_error": cal.readout_error,
            "gate_error_1q": cal.gate_error_1q,
            "prob_meas1_prep0": cal.prob_meas1_prep0,
            "prob_meas0_prep1": cal.prob_meas0_prep1,
        }
        for field, table in per_qubit.items():
            for q, value in table.items():
                assert 0 <= q < n, f"{field}: qubit {q} out of range"
                assert 0.0 <= value <= 1.0, f"{field}[{q}] = {value} is not a probability"
        for edge, value in cal.gate_error_2q.items():
            assert len(edge) == 2 and all(0 <= q < n for q in edge), f"bad edge {edge}"
            assert 0.0 <= value <= 1.0, f"gate_error_2q[{edge}] = {value}"
        for op, gate_table in cal.gate_errors.items():
            for qubits, value in gate_table.items():
                assert all(0 <= q < n for q in qubits), f"gate_errors[{op}]: {qubits}"
                assert 0.0 <= value <= 1.0, f"gate_errors[{op}][{qubits}] = {value}"
        for name, times in (("t1", cal.t1), ("t2", cal.t2)):
            for q, value in times.items():
                assert 0 <= q < n, f"{name}: qubit {q} out of range"
                assert math.isfinite(value) and value > 0, f"{name}[{q}] = {value} (seconds)"
                assert value < 100.0, f"{name}[{q}] = {value}: times are in seconds"
        for op, duration_table in cal.gate_durations.items():
            for qubits, value in duration_table.items():
                assert all(0 <= q < n for q in qubits), f"gate_durations[{op}]: {qubits}"
                assert math.isfinite(value) and 0 <= value < 1.0, f"{op} takes {value} s"
        assert cal.readout_duration is None or 0 < cal.readout_duration < 1.0

    def test_calibration_edges_on_coupling_map(self, device: Device) -> None:
        cmap = device.target.coupling_map
        if cmap is None:
            return
        undirected = {frozenset(e) for e in cmap}
        for edge in cal_edges(device.calibration()):
            assert frozenset(edge) in undirected, f"calibrated edge {edge} is not in the map"

    # ------------------------------------------------------------------ status, queue, cost
    def test_status(self, device: Device) -> None:
        assert isinstance(run_sync(device.status()), DeviceStatus)

    def test_queue_estimate(self, device: Device) -> None:
        q = run_sync(device.queue_estimate())
        assert isinstance(q, QueueEstimate)
        assert q.source in ("live", "model", "none")
        assert q.pending_jobs is None or (isinstance(q.pending_jobs, int) and q.pending_jobs >= 0)
        assert q.expected_wait_s is None or q.expected_wait_s >= 0
        assert not q.capped or q.pending_jobs is not None

    def test_estimate_cost(self, device: Device) -> None:
        one = device.estimate_cost([circuits.bell()], 100)
        assert isinstance(one, CostEstimate)
        assert one.total_usd >= 0 and one.per_task_usd >= 0 and one.per_shot_usd >= 0
        assert one.tasks >= 0 and one.shots >= 0
        two = device.estimate_cost([circuits.bell(), circuits.bell()], 100)
        more_shots = device.estimate_cost([circuits.bell()], 1000)
        assert two.total_usd >= one.total_usd
        assert more_shots.total_usd >= one.total_usd

    # ------------------------------------------------------------------ running
    def test_run_result_well_formed(self, device: Device) -> None:
        self.require_qubits(device, 2)
        circuit = circuits.bell()
        result = self.run(device, [circuit], self.shots)
        assert isinstance(result, RunResult)
        assert result.device == device.spec
        assert isinstance(result.job_id, str) and result.job_id
        assert len(result) == 1
        self.check_counts(result[0], circuit, self.shots)
        t = result.timings
        assert t.finished_at is None or t.finished_at >= t.submitted_at

    def test_bell_correlation(self, device: Device) -> None:
        self.require_qubits(device, 2)
        circuit = circuits.bell()
        floor = self.correlation_floor(device, circuit)
        counts = self.run(device, [circuit], self.shots)[0].counts
        observed = (counts.get("00", 0) + counts.get("11", 0)) / self.shots
        assert observed >= floor, f"P(00)+P(11) = {observed:.3f} < {floor:.3f}"

    def test_ghz_correlation(self, device: Device) -> None:
        self.require_qubits(device, 3)
        circuit = circuits.ghz(3)
        floor = self.correlation_floor(device, circuit)
        counts = self.run(device, [circuit], self.shots)[0].counts
        observed = (counts.get("000", 0) + counts.get("111", 0)) / self.shots
        assert observed >= floor, f"P(000)+P(111) = {observed:.3f} < {floor:.3f}"

    def test_bit_order(self, device: Device) -> None:
        n = min(device.num_qubits, 3)
        circuit = circuits.x_on(n, 0)
        counts = self.run(device, [circuit], self.shots)[0].counts
        assert circuits.mode(counts) == "0" * (n - 1) + "1", (
            f"X on qubit 0 gave {dict(counts)}: classical bit 0 must be the rightmost character"
        )

    def test_partial_measurement(self, device: Device) -> None:
        self.require_qubits(device, 3)
        circuit = circuits.partial_measurement()
        result = self.run(device, [circuit], self.shots)[0]
        self.check_counts(result, circuit, self.shots)
        assert circuits.mode(result.counts) == "01"

    def test_multiple_registers(self, device: Device) -> None:
        self.require_qubits(device, 2)
        circuit = circuits.two_registers()
        result = self.run(device, [circuit], self.shots)[0]
        self.check_counts(result, circuit, self.shots)
        assert circuits.mode(result.counts) == "100", "registers join without spaces, last first"

    def test_batch_keeps_order(self, device: Device) -> None:
        self.require_qubits(device, 2)
        batch = [circuits.basis_state(2, i) for i in range(4)]
        result = self.run(device, batch, self.shots)
        assert len(result) == 4
        for i, (circuit, res) in enumerate(zip(batch, result, strict=True)):
            self.check_counts(res, circuit, self.shots)
            assert circuits.mode(res.counts) == format(i, "02b"), f"result {i} out of order"

    def test_submit_returns_job(self, device: Device) -> None:
        async def scenario() -> tuple[JobStatus, RunResult, JobStatus]:
            job = await device.submit([circuits.x_on(1, 0)], self.shots)
            first = await job.status()
            result = await asyncio.wait_for(job.result(), self.timeout_s)
            return first, result, await job.status()

        first, result, last = run_sync(scenario())
        assert isinstance(first, JobStatus)
        assert last is JobStatus.DONE
        assert result.job_id and len(result) == 1

    def test_repeated_runs_are_independent_samples(self, device: Device) -> None:
        """Two jobs of one circuit are two samples, not one sample twice (a seeded simulator
        seeds a *sequence* of batches; see :class:`multiqpu.simulator.SimulatorDevice`)."""
        circuit = circuits.rotations(min(device.num_qubits, 3))
        first, second = (self.run(device, [circuit], self.shots)[0].counts for _ in range(2))
        assert first != second, f"two runs gave identical counts {dict(first)}"

    # ------------------------------------------------------------------ validation
    def test_rejects_empty_batch(self, device: Device) -> None:
        with pytest.raises(InvalidInputError):
            self.run(device, [], self.shots)

    @pytest.mark.parametrize("shots", [0, -5])
    def test_rejects_bad_shots(self, device: Device, shots: int) -> None:
        with pytest.raises(InvalidInputError):
            self.run(device, [circuits.x_on(1, 0)], shots)

    def test_rejects_too_wide_circuit(self, device: Device) -> None:
        with pytest.raises(CircuitTooLargeError):
            self.run(device, [circuits.ghz(device.num_qubits + 1)], self.shots)

    def test_rejects_unbound_parameters(self, device: Device) -> None:
        with pytest.raises(InvalidInputError, match="unbound"):
            self.run(device, [circuits.parameterized()], self.shots)

    def test_rejects_circuit_without_measurements(self, device: Device) -> None:
        with pytest.raises(InvalidInputError):
            self.run(device, [circuits.unmeasured()], self.shots)

    # ------------------------------------------------------------------ exact mode
    def test_exact_mode(self, device: Device) -> None:
        circuit = circuits.rotations(min(device.num_qubits, 3))
        if not device.exact:
            with pytest.raises(InvalidInputError):
                self.run(device, [circuit], None)
            return
        result = self.run(device, [circuit], None)[0]
        assert result.shots is None and not result.counts and result.probabilities is not None
        assert_close(result.probabilities, circuits.statevector_probabilities(circuit))

    def test_exact_partial_measurement(self, device: Device) -> None:
        if not device.exact:
            pytest.skip(f"{device.spec} does not declare exact=True")
        self.require_qubits(device, 3)
        circuit = circuits.rotations(3, measure=[2, 0])
        probs = self.run(device, [circuit], None)[0].probabilities
        assert probs is not None
        assert_close(probs, circuits.statevector_probabilities(circuit))

    # ------------------------------------------------------------------ asyncio behaviour
    def test_cancelling_the_caller_does_not_hang(self, device: Device) -> None:
        self.require_qubits(device, 2)
        batch = [circuits.bell()] * 8

        async def scenario() -> Any:
            task = asyncio.ensure_future(device.run(batch, self.shots))
            await asyncio.sleep(0.05)
            task.cancel()
            (outcome,) = await asyncio.wait_for(
                asyncio.gather(task, return_exceptions=True), self.timeout_s
            )
            return outcome

        outcome = run_sync(scenario())
        assert isinstance(outcome, asyncio.CancelledError | RunResult), repr(outcome)

    def test_concurrent_runs(self, device: Device) -> None:
        self.require_qubits(device, 2)
        batches = [[circuits.basis_state(2, i)] for i in range(3)]

        async def scenario() -> list[RunResult]:
            runs = (device.run(b, self.shots) for b in batches)
            return list(await asyncio.wait_for(asyncio.gather(*runs), self.timeout_s))

        results = run_sync(scenario())
        for i, result in enumerate(results):
            assert len(result) == 1
            self.check_counts(result[0], batches[i][0], self.shots)
            assert circuits.mode(result[0].counts) == format(i, "02b")


def cal_edges(cal: Calibration) -> set[tuple[int, int]]:
    """Every two-qubit pair a calibration has figures for."""
    edges = {(a, b) for a, b in cal.gate_error_2q}
    for table in cal.gate_errors.values():
        edges.update((k[0], k[1]) for k in table if len(k) == 2)
    return edges


def assert_close(got: Mapping[str, float], want: Mapping[str, float], tol: float = 1e-9) -> None:
    """Two distributions agree on every outcome to ``tol`` (absent outcomes count as 0)."""
    for key in set(got) | set(want):
        g, w = got.get(key, 0.0), want.get(key, 0.0)
        assert abs(g - w) <= tol, f"P({key}) = {g} but the statevector gives {w}"


if __name__ == "__main__":  # python -m multiqpu.testing.conformance SPEC [...]
    from multiqpu.testing._command import main

    raise SystemExit(main())
