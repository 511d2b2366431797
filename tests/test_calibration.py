"""The vendor-neutral Calibration profile: summaries, fidelity estimates, subsets, JSON."""

from __future__ import annotations

import json
import math

import pytest
from qiskit import QuantumCircuit

from multiqpu import Calibration


def _line_profile() -> Calibration:
    return Calibration(
        num_qubits=3,
        readout_error={0: 0.01, 1: 0.02, 2: 0.05},
        gate_error_1q={0: 1e-4, 1: 2e-4, 2: 3e-4},
        gate_error_2q={(0, 1): 0.01, (1, 2): 0.03},
        t1={0: 100e-6, 1: 120e-6, 2: 80e-6},
        t2={0: 90e-6, 1: 60e-6, 2: 70e-6},
        gate_errors={"cz": {(0, 1): 0.01, (1, 2): 0.03}, "sx": {(0,): 1e-4, (1,): 2e-4}},
        gate_durations={"cz": {(0, 1): 68e-9, (1, 2): 68e-9}},
        source="test",
    )


def test_medians() -> None:
    cal = _line_profile()
    assert cal.median_readout_error() == pytest.approx(0.02)
    assert cal.median_2q_error() == pytest.approx(0.02)
    assert cal.median_t1() == pytest.approx(100e-6)
    assert Calibration.ideal(4).median_2q_error() is None
    assert Calibration.ideal(4).is_ideal()
    assert not cal.is_ideal()


def test_estimated_fidelity_is_product_of_operation_fidelities() -> None:
    cal = _line_profile()
    qc = QuantumCircuit(3, 3)
    qc.sx(0)
    qc.rz(0.3, 1)  # virtual: free
    qc.cz(0, 1)
    qc.cz(2, 1)  # reversed edge is looked up too
    qc.measure([0, 1, 2], [0, 1, 2])
    expected = (1 - 1e-4) * (1 - 0.01) * (1 - 0.03) * (1 - 0.01) * (1 - 0.02) * (1 - 0.05)
    assert cal.estimated_fidelity(qc) == pytest.approx(expected, rel=1e-12)


def test_subset_renumbers_and_keeps_only_inner_edges() -> None:
    sub = _line_profile().subset([2, 1])
    assert sub.num_qubits == 2
    assert sub.readout_error == {0: 0.05, 1: 0.02}
    assert sub.gate_error_2q == {(1, 0): 0.03}
    assert sub.gate_errors["cz"] == {(1, 0): 0.03}
    assert sub.gate_errors["sx"] == {(1,): 2e-4}


def test_json_round_trip_and_fingerprint() -> None:
    cal = _line_profile()
    data = json.loads(json.dumps(cal.to_dict()))
    back = Calibration.from_dict(data)
    assert back.to_dict() == cal.to_dict()
    assert back.fingerprint() == cal.fingerprint()
    other = Calibration.uniform(3, readout_error=0.01)
    assert other.fingerprint() != cal.fingerprint()


def test_uniform_profile() -> None:
    cal = Calibration.uniform(
        4, readout_error=0.02, gate_error_2q=0.01, edges=[(0, 1), (1, 2)], duration_2q=1e-7
    )
    assert set(cal.gate_error_2q) == {(0, 1), (1, 2)}
    assert cal.duration("cz", (0, 1)) == pytest.approx(1e-7)
    assert math.isclose(cal.error("measure", (3,)), 0.02)
