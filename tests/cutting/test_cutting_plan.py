"""Plans: made without submitting anything, sized to the fleet, de-duplicated, bounded."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from _cut_families import exact_values, ghz, hea, ideal_fleet, qaoa
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import Pauli, PauliList, SparsePauliOp

import multiqpu
from multiqpu.cutting import CutLimits, plan
from multiqpu.cutting._experiments import allocate_shots
from multiqpu.device import CostEstimate
from multiqpu.testing.faults import FaultyDevice


def _submitted(fleet: multiqpu.Fleet) -> int:
    return sum(len(d.submissions) for d in fleet)  # type: ignore[attr-defined]


def test_plan_reports_everything_and_submits_nothing() -> None:
    fleet = ideal_fleet(7, 5, recording=True)
    p = fleet.plan(hea(12), ["Z" * 12, "X" * 12], shots=50_000)
    assert _submitted(fleet) == 0 and all(d.attempts == 0 for d in fleet)  # type: ignore[attr-defined]
    assert p.cut and p.refused is None
    assert p.gate_cuts == 2 and p.wire_cuts == 0
    assert p.sampling_overhead == pytest.approx(81.0)  # two cut CNOTs: 9 x 9
    assert sorted(f.width for f in p.fragments) == [5, 7]
    assert sorted(q for f in p.fragments for q in f.qubits) == list(range(12))
    assert p.terms == 36 and p.subexperiments < p.subexperiments_naive
    assert sum(f.shots or 0 for f in p.fragments) == p.shots == 50_000
    assert 0 < p.expected_time_s < 3600 and p.expected_cost_usd == 0.0
    assert set(p.devices) <= {d.spec for d in fleet}
    assert p.expected_std_error is not None and 0 < p.expected_std_error < 1
    text = str(p)
    for needle in ("cuts: 2", "fragment 0", "sampling overhead: 81", "50,000", "ready to run"):
        assert needle in text
    assert json.loads(p.to_json())["sampling_overhead"] == pytest.approx(81.0)


async def test_plan_works_inside_a_running_event_loop() -> None:
    p = ideal_fleet(6).plan(ghz(10), "Z" * 10)
    assert p.cut and p.gate_cuts == 1


@pytest.mark.parametrize("use_scheduler", [False, True], ids=["stand-in", "scheduler"])
async def test_duplicate_subexperiments_run_once(use_scheduler: bool) -> None:
    """A cut CNOT's 6 terms hold 5 distinct operations per side (qiskit-addon-cutting #262):
    each distinct circuit is built and requested exactly once. (The scheduler may still copy
    a straggling job to an idle device, a hedge, and keep the first result.)"""
    fleet = ideal_fleet(6, 6, recording=True)
    circuit = ghz(10)
    result = await fleet.estimate(circuit, "Z" * 10, shots=None, use_scheduler=use_scheduler)
    p = result.report.plan
    assert p.terms == 6 and p.subexperiments_naive == 12
    assert p.subexperiments == 10  # 5 per fragment
    keys = Counter(k for d in fleet for s in d.submissions for k in s.circuit_keys)  # type: ignore[attr-defined]
    assert len(keys) == p.subexperiments
    if not use_scheduler:
        assert set(keys.values()) == {1}
    assert result.value == pytest.approx(exact_values(circuit, ["Z" * 10])[0], abs=1e-9)


async def test_hopeless_cut_is_refused_at_once() -> None:
    n = 10
    qc = QuantumCircuit(n)
    qc.h(range(n))
    for _ in range(2):  # a dense QAOA: ring plus chords, two layers
        for a, b in [(i, (i + 1) % n) for i in range(n)] + [(i, (i + 4) % n) for i in range(n)]:
            qc.cx(a, b)
            qc.rz(0.4, b)
            qc.cx(a, b)
    fleet = ideal_fleet(5, recording=True)
    p = fleet.plan(qc, "Z" * n)
    assert p.refused is not None and "max_overhead" in p.refused
    assert "REFUSED" in str(p)
    with pytest.raises(multiqpu.PlanRefusedError, match="sampling overhead"):
        await fleet.estimate(qc, "Z" * n)
    assert _submitted(fleet) == 0


async def test_overhead_bound_is_the_users_to_change() -> None:
    fleet = ideal_fleet(7)
    with pytest.raises(multiqpu.PlanRefusedError, match="max_overhead=50"):
        await fleet.estimate(hea(12), "Z" * 12, limits=CutLimits(max_overhead=50))
    assert fleet.plan(hea(12), "Z" * 12, limits=CutLimits(max_overhead=100)).refused is None


class _Priced(FaultyDevice):
    """An ideal simulator that charges like a cloud QPU ($0.30 per task, $0.001 per shot)."""

    def estimate_cost(self, circuits, shots):  # type: ignore[no-untyped-def]
        total = 0.30 * len(circuits) + 0.001 * shots * len(circuits)
        return CostEstimate(total, 0.30, 0.001, len(circuits), shots * len(circuits), "test")


async def test_cost_bound_refuses_before_spending() -> None:
    device = _Priced(multiqpu.device("local:ideal", num_qubits=6), name="priced")
    fleet = multiqpu.Fleet([device])
    p = fleet.plan(ghz(10), "Z" * 10, shots=200_000)
    assert p.expected_cost_usd == pytest.approx(0.30 * 10 + 0.001 * 200_000, rel=0.05)
    assert p.refused is not None and "max_cost_usd" in p.refused  # default bound: $100
    with pytest.raises(multiqpu.PlanRefusedError, match="expected cost"):
        await fleet.estimate(ghz(10), "Z" * 10, shots=200_000)
    assert device.submissions == []
    cheap = fleet.plan(ghz(10), "Z" * 10, shots=200_000, limits=CutLimits(max_cost_usd=1000))
    assert cheap.refused is None


def test_too_few_shots_are_refused() -> None:
    p = ideal_fleet(7, 5).plan(hea(12), "Z" * 12, shots=20)
    assert p.refused is not None and "too few" in p.refused


async def test_exact_needs_an_exact_device() -> None:
    noisy = multiqpu.device("local:noisy", num_qubits=6)
    with pytest.raises(multiqpu.InvalidInputError, match="exact"):
        await multiqpu.Fleet([noisy]).estimate(ghz(10), "Z" * 10, shots=None)


def test_never_cut_refuses_a_wide_circuit() -> None:
    p = ideal_fleet(6).plan(ghz(10), "Z" * 10, cut="never")
    assert p.refused is not None and "cut='never'" in p.refused


async def test_observable_forms() -> None:
    circuit = ghz(8)
    fleet = ideal_fleet(5)
    sp = SparsePauliOp(["ZIIIIIIZ", "XXXXXXXX"], [0.5, -0.5])
    forms = {
        "string": ("ZIIIIIIZ", 1),
        "pauli": (Pauli("-ZIIIIIIZ"), 1),
        "sparse": (sp, 1),
        "paulilist": (PauliList(["ZIIIIIIZ", "IIIIIIZZ", "XXXXXXXX"]), 3),
        "list": (["ZZIIIIII", sp, Pauli("IIIIIIIY")], 3),
    }
    for form, (obs, count) in forms.items():
        result = await fleet.estimate(circuit, obs, shots=None)
        assert len(result.values) == count, form
        wanted = list(obs) if isinstance(obs, (list, PauliList)) else [obs]
        exact = [
            exact_values(circuit, [SparsePauliOp(o) if isinstance(o, Pauli) else o])[0]
            for o in wanted
        ]
        np.testing.assert_allclose(result.values, exact, atol=1e-9, err_msg=form)
    with pytest.raises(multiqpu.InvalidInputError, match="Hermitian"):
        await fleet.estimate(circuit, SparsePauliOp(["XIIIIIII", "YIIIIIII"], [1, 1j]), shots=None)
    with pytest.raises(multiqpu.InvalidInputError, match="acts on 3 qubits"):
        await fleet.estimate(circuit, "ZZZ", shots=None)
    with pytest.raises(multiqpu.InvalidInputError, match="Pauli string"):
        await fleet.estimate(circuit, "ZZQZZZZZ", shots=None)


async def test_measured_circuit_with_barriers_and_a_three_qubit_gate() -> None:
    qc = QuantumCircuit(9)
    qc.h(0)
    qc.ccx(0, 1, 2)  # cut finding needs 1- and 2-qubit gates: it is unrolled first
    for q in range(8):
        qc.cx(q, q + 1)
    qc.barrier()
    qc.measure_all()
    result = await ideal_fleet(5).estimate(qc, "Z" * 9, shots=None)
    assert result.report.plan.cut
    assert result.value == pytest.approx(exact_values(qc, ["Z" * 9])[0], abs=1e-9)


async def test_unbound_parameters_are_refused() -> None:
    qc = QuantumCircuit(2)
    qc.rx(Parameter("theta"), 0)
    with pytest.raises(multiqpu.InvalidInputError, match="unbound parameters"):
        await ideal_fleet(2).estimate(qc, "ZZ")


def test_plan_accepts_a_list_of_devices() -> None:
    devices = [multiqpu.device("local:ideal", num_qubits=5)]
    p = plan(devices, qaoa(8), "Z" * 8, shots=None)
    assert p.cut and p.shots is None and p.expected_std_error is None


def test_allocate_shots_follows_weights_exactly() -> None:
    w = np.array([1.0, 2.0, 3.0, 0.0, 4.0])
    a = allocate_shots(w, 1000, minimum=5)
    assert a.sum() == 1000 and a[3] == 0
    np.testing.assert_allclose(a[[0, 1, 2, 4]], [100, 200, 300, 400], atol=1)
    small = allocate_shots(np.array([1.0, 1.0, 1000.0]), 100, minimum=10)
    assert small.sum() == 100 and small.min() >= 10
    # Neyman across stages: final totals proportional to the new scores where possible.
    more = allocate_shots(np.array([1.0, 1.0, 1.0, 1.0, 10.0]), 1000, already=a)
    assert more.sum() == 1000 and (a + more)[4] > (a + more)[:4].max()


def test_fidelity_mode_cuts_only_when_fragments_are_more_faithful() -> None:
    """cut='fidelity': an 8-qubit circuit fits noisy fake_kyiv, but its fragments on a small
    noiseless device have a higher estimated fidelity, so it is cut; on a fleet whose wide
    device is noiseless, it is not."""
    circuit = ghz(8)
    noisy_wide = multiqpu.Fleet(
        [multiqpu.device("ibm:fake_kyiv"), multiqpu.device("local:ideal", num_qubits=5)]
    )
    p = noisy_wide.plan(circuit, "Z" * 8, cut="fidelity")
    assert p.cut and "raises the estimated fidelity" in p.reason
    assert all(f.width <= 5 for f in p.fragments)
    assert not noisy_wide.plan(circuit, "Z" * 8).cut  # cut="auto": it fits, no cut
    ideal_wide = ideal_fleet(10, 5)
    q = ideal_wide.plan(circuit, "Z" * 8, cut="fidelity")
    assert not q.cut and "would not raise" in q.reason


async def test_braket_takes_wire_cuts_but_not_mid_circuit_measurements() -> None:
    """Gate-cut sub-experiments measure mid-circuit, which Braket devices refuse: the plan
    says so up front; wire cuts need no mid-circuit measurement and run there, exactly."""
    fleet = multiqpu.Fleet([multiqpu.device("braket:sv")])
    circuit, obs = ghz(8), ["Z" + "I" * 6 + "Z"]
    p = fleet.plan(circuit, obs, max_fragment_qubits=5)
    assert p.refused is not None and "mid-circuit" in p.refused
    result = await fleet.estimate(circuit, obs, shots=None, max_fragment_qubits=5, gate_cuts=False)
    assert result.report.plan.wire_cuts >= 1
    assert result.report.devices_used == ("braket:sv",)
    assert result.value == pytest.approx(exact_values(circuit, obs)[0], abs=1e-8)
