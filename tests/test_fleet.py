"""Fleet construction, lookup and labels."""

from __future__ import annotations

import pytest

import multiqpu


def test_fleet_rejects_duplicates_and_suggests_a_label() -> None:
    a = multiqpu.device("local:ideal", num_qubits=5)
    b = multiqpu.device("local:ideal", num_qubits=7)
    with pytest.raises(multiqpu.ConfigError, match="label"):
        multiqpu.Fleet([a, b])


def test_labels_make_specs_distinct() -> None:
    a = multiqpu.device("local:ideal", num_qubits=5, label="ideal5")
    b = multiqpu.device("local:ideal", num_qubits=7, label="ideal7")
    fleet = multiqpu.Fleet([a, b])
    assert [d.spec for d in fleet] == ["local:ideal5", "local:ideal7"]
    assert fleet["ideal7"].num_qubits == 7
    assert "local:ideal5" in fleet


@pytest.mark.parametrize("label", ["", "a:b", "two words", 3])
def test_bad_labels(label: object) -> None:
    with pytest.raises(multiqpu.ConfigError, match="label"):
        multiqpu.device("local:ideal", label=label)  # type: ignore[arg-type]


def test_fleet_holds_only_devices() -> None:
    with pytest.raises(multiqpu.ConfigError, match="Device"):
        multiqpu.Fleet(["local:ideal"])  # type: ignore[list-item]


def test_unknown_device_lookup_names_the_fleet() -> None:
    fleet = multiqpu.Fleet([multiqpu.device("local:ideal", num_qubits=2)])
    with pytest.raises(KeyError, match="local:ideal"):
        fleet["nope"]


async def test_labelled_device_runs() -> None:
    from qiskit import QuantumCircuit

    dev = multiqpu.device("local:ideal", num_qubits=3, label="tiny")
    qc = QuantumCircuit(2)
    qc.x(0)
    qc.measure_all()
    result = await dev.run([qc], shots=10)
    assert result.device == "local:tiny"
    assert result[0].counts == {"01": 10}


def test_mid_circuit_measurement_capability_survives_wrappers() -> None:
    from multiqpu.queue_model import QueuedDevice, QueueModel
    from multiqpu.testing.faults import FaultyDevice

    braket = multiqpu.device("braket:sv")
    local = multiqpu.device("local:ideal", num_qubits=3)
    assert braket.mid_circuit_measurement is False
    assert local.mid_circuit_measurement is True
    model = QueueModel.for_device(braket.spec, style="braket", index=0)
    assert QueuedDevice(braket, model).mid_circuit_measurement is False
    assert FaultyDevice(braket).mid_circuit_measurement is False


def test_imitates_qpu_is_the_one_timing_question() -> None:
    """Plans time real QPUs and their stand-ins (fake backends, emulators built from a
    calibration snapshot) as QPUs, and plain simulators at simulator speed; a queued wrapper
    answers for the device it wraps."""
    fleet = multiqpu.Fleet.local()
    answers = {d.spec: (d.simulator, d.imitates_qpu) for d in fleet}
    assert answers["ibm:fake_torino"] == (True, True)
    assert answers["braket:emulator"] == (True, True)
    assert answers["local:ideal"] == (True, False)
    assert multiqpu.device("local:noisy").imitates_qpu is False
    assert multiqpu.device("braket:dm").imitates_qpu is False
