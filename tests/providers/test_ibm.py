"""IBM provider: provider object, options, calibration parsing against qiskit-ibm-runtime's own
objects, import isolation, error classification (network vs bad token), cost model."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from multiqpu_ibm import IBMDevice, _calibration, _cost, _errors, _snapshots, provider
from multiqpu_ibm._device import queue_from_report, status_from_report

import multiqpu
from multiqpu import (
    Calibration,
    ConfigError,
    CredentialsError,
    DeviceLimits,
    DeviceStatus,
    DeviceUnavailableError,
    JobError,
    ProviderError,
    Secret,
    TransientProviderError,
)
from multiqpu.providers import Provider

TOKEN = "tok-UNIQUE-" + "q" * 40  # never appears in any message


def fake_backend(name: str) -> Any:
    """The qiskit-ibm-runtime fake backend object (imports the SDK)."""
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FakeProviderForBackendV2().backend(name)


# ---------------------------------------------------------------------------- provider
def test_provider_satisfies_protocol() -> None:
    assert isinstance(provider, Provider)
    assert (provider.name, provider.extra, tuple(provider.requires)) == (
        "ibm",
        "ibm",
        ("qiskit_ibm_runtime",),
    )
    assert dict(provider.env_options) == {
        "token": "QISKIT_IBM_TOKEN",
        "instance": "QISKIT_IBM_INSTANCE",
        "channel": "QISKIT_IBM_CHANNEL",
    }
    assert tuple(provider.secret_options) == ("token",)
    assert list(provider.default_devices()) == [
        "fake_torino",
        "fake_marrakesh",
        "fake_kyiv",
        "fake_manila",
    ]


def test_known_devices_are_the_runtime_fake_backends() -> None:
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vendor = sorted(b.name for b in FakeProviderForBackendV2().backends())
    assert sorted(provider.known_devices()) == vendor
    assert len(vendor) >= 60  # 68 with qiskit-ibm-runtime 0.51
    assert set(provider.default_devices()) <= set(provider.known_devices())


def test_import_and_offline_queries_do_not_import_the_sdk() -> None:
    code = textwrap.dedent(
        """
        import asyncio, json, sys
        import multiqpu_ibm
        heavy = ("qiskit_ibm_runtime", "qiskit_aer", "qiskit")
        before = sorted(m for m in heavy if m in sys.modules)
        from multiqpu_ibm import provider
        out = []
        for name in provider.default_devices():
            d = provider.device(name)
            cal = d.calibration()
            out.append([d.num_qubits, len(d.target.basis_gates), cal.source,
                        asyncio.run(d.status()).value, asyncio.run(d.queue_estimate()).source,
                        d.estimate_cost([], 100).total_usd])
        provider.known_devices()
        after = sorted(m for m in heavy if m in sys.modules)
        print(json.dumps({"before": before, "after": after, "devices": out}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["before"] == []
    assert report["after"] == [], "offline queries must not import qiskit-ibm-runtime, Aer, Qiskit"
    assert [d[0] for d in report["devices"]] == [133, 156, 127, 5]
    assert all(d[2].startswith("snapshot 20") and d[3] == "online" for d in report["devices"])


def test_device_through_multiqpu_spec() -> None:
    dev = multiqpu.device("ibm:fake_manila")
    assert isinstance(dev, IBMDevice)
    assert dev.spec == "ibm:fake_manila" and dev.num_qubits == 5 and dev.engine == "fast"


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("name", "options", "key"),
    [
        ("fake_manila", {"shots": 10}, "shots"),
        ("fake_manila", {"mode": "stream"}, "mode"),
        ("fake_manila", {"engine": "aer"}, "engine"),
        ("fake_manila", {"seed": -1}, "seed"),
        ("fake_manila", {"seed": 1.5}, "seed"),
        ("fake_manila", {"limits": {"max_shots": 5}}, "limits"),
        ("fake_manila", {"token": 12345}, "token"),
        ("ibm_torino", {"engine": "fast"}, "engine"),
        ("ibm_torino", {"seed": 3}, "seed"),
        ("ibm_torino", {"channel": "ibm_quantum"}, "channel"),
        ("ibm_torino", {"channel": "local"}, "channel"),
        ("ibm_torino", {"instance": 7}, "instance"),
    ],
)
def test_bad_options_raise_config_error(name: str, options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        provider.device(name, **options)
    assert info.value.key == key
    assert key in str(info.value)


def test_unknown_option_lists_accepted_ones() -> None:
    with pytest.raises(ConfigError, match="accepted: account, channel, engine"):
        provider.device("fake_manila", shot=3)


def test_unknown_fake_backend_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match="did you mean fake_torino"):
        provider.device("fake_torin")


def test_options_accepted_and_token_kept_secret() -> None:
    dev = provider.device(
        "ibm_torino",
        token=TOKEN,
        instance="crn:v1:x",
        channel="ibm_cloud",
        mode="batch",
        limits=DeviceLimits(max_shots=10),
    )
    assert isinstance(dev.options.token, Secret)
    assert dev.options.token.reveal() == TOKEN
    assert TOKEN not in repr(dev.options) and TOKEN not in repr(dev)
    assert dev.limits.max_shots == 10 and dev.options.mode == "batch"
    # fake backends accept (and ignore) credentials the config layer passes from the env
    fake = provider.device("fake_manila", token=Secret(TOKEN), channel="ibm_quantum_platform")
    assert fake.engine == "fast" and fake.limits.max_shots == 100_000  # conf max_shots


# ---------------------------------------------------------------------------- calibration
@pytest.mark.parametrize("name", ["fake_manila", "fake_kyiv", "fake_almaden", "fake_torino"])
def test_snapshot_calibration_equals_vendor_target(name: str) -> None:
    """The JSON path and the Target path (used for real backends) give the same profile."""
    from_json = provider.device(name).calibration()
    from_target = _calibration.calibration_from_backend(fake_backend(name), source="x")
    a, b = from_json.to_dict(), from_target.to_dict()
    assert a.pop("source").startswith("snapshot ") and b.pop("source") == "x"
    assert a == b


def test_calibration_figures_match_backend_properties() -> None:
    backend = fake_backend("fake_torino")
    props = backend.properties()
    cal = provider.device("fake_torino").calibration()
    assert cal.num_qubits == 133
    for q in (0, 17, 92, 132):
        assert cal.t1[q] == pytest.approx(props.t1(q), rel=1e-12)  # seconds, not us
        assert cal.t2[q] == pytest.approx(props.t2(q), rel=1e-12)
        assert 1e-6 < cal.t1[q] < 1e-2
        assert cal.readout_error[q] == pytest.approx(props.readout_error(q))
        qp = props.qubit_property(q)
        assert cal.prob_meas1_prep0[q] == pytest.approx(qp["prob_meas1_prep0"][0])
        assert cal.prob_meas0_prep1[q] == pytest.approx(qp["prob_meas0_prep1"][0])
        assert cal.gate_error_1q[q] == pytest.approx(props.gate_error("sx", q))
        assert cal.duration("sx", (q,)) == pytest.approx(props.gate_length("sx", q))  # 32 ns
    assert cal.duration("sx", (0,)) == pytest.approx(32e-9)
    edge = next(iter(cal.gate_error_2q))
    assert cal.gate_error_2q[edge] == pytest.approx(props.gate_error("cz", list(edge)))
    assert set(cal.gate_error_2q) == {tuple(e) for e in backend.target["cz"]}
    assert cal.readout_duration == pytest.approx(1.56e-6)
    assert cal.timestamp is not None and cal.timestamp == props.last_update_date
    assert cal.source == "snapshot 2025-02-26"


@pytest.mark.parametrize(
    ("name", "one_q", "two_q"),
    [("fake_kyiv", "sx", "ecr"), ("fake_manila", "sx", "cx"), ("fake_almaden", "u2", "cx")],
)
def test_summary_gates(name: str, one_q: str, two_q: str) -> None:
    cal = provider.device(name).calibration()
    assert dict(cal.gate_error_1q) == {q: e for (q,), e in cal.gate_errors[one_q].items()}
    assert dict(cal.gate_error_2q) == dict(cal.gate_errors[two_q])


def test_device_target_matches_vendor() -> None:
    dev = provider.device("fake_kyiv")
    vendor = fake_backend("fake_kyiv").target
    assert dev.target.num_qubits == 127
    assert dev.target.basis_gates == ("ecr", "id", "rz", "sx", "x")
    assert set(dev.target.coupling_map or ()) == set(vendor.build_coupling_map().get_edges())
    assert _calibration.device_target_from_qiskit(vendor) == dev.target


def test_rebuilt_qiskit_target_equals_vendor_target() -> None:
    """Transpilation and the noise model use a Target rebuilt from the snapshot; every
    error, duration and T1/T2 on it is the vendor Target's."""
    dev = provider.device("fake_torino")
    ours = dev.fast_engine.qiskit_target
    vendor = fake_backend("fake_torino").target
    for name in ("sx", "x", "id", "rz", "cz", "measure", "reset"):
        assert set(ours[name]) == set(vendor[name]), name
        for qargs, p in vendor[name].items():
            q = ours[name][qargs]
            if p is None:
                assert q is None or (q.error is None and q.duration is None)
                continue
            assert (q.error, q.duration) == (p.error, p.duration), (name, qargs)
    for q in range(133):
        assert ours.qubit_properties[q].t1 == vendor.qubit_properties[q].t1
        assert ours.qubit_properties[q].t2 == vendor.qubit_properties[q].t2
    assert ours.dt == pytest.approx(vendor.dt)
    readout = ours["measure"][(92,)]
    assert readout.prob_meas1_prep0 == dev.calibration().prob_meas1_prep0[92]


def test_noise_model_matches_aer_device_model() -> None:
    """The touched-qubit noise model equals Aer's model of the whole chip on those qubits:
    gate channels identical to NoiseModel.from_backend(FakeManilaV2()), readout the asymmetric
    matrices the runtime's local mode uses (NoiseModel.from_backend_properties)."""
    from qiskit.quantum_info import SuperOp
    from qiskit_aer.noise import NoiseModel

    from multiqpu.simulation import noise_model_for

    backend = fake_backend("fake_manila")
    dev = provider.device("fake_manila")
    qubits = (2, 3, 4)
    ours = noise_model_for(dev.fast_engine.qiskit_target, qubits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = NoiseModel.from_backend(backend)
        local_mode = NoiseModel.from_backend_properties(backend.properties(), dt=backend.dt)
    index = {q: i for i, q in enumerate(qubits)}
    checked = 0
    for name in ("sx", "x", "id", "cx", "reset"):
        for qargs, err in full._local_quantum_errors.get(name, {}).items():
            if not set(qargs) <= set(qubits):
                continue
            mine = ours._local_quantum_errors[name][tuple(index[q] for q in qargs)]
            diff = SuperOp(mine.to_quantumchannel()).data - SuperOp(err.to_quantumchannel()).data
            assert abs(diff).max() < 1e-12, (name, qargs)
            checked += 1
    assert checked >= 12
    for q in qubits:
        mine = ours._local_readout_errors[(index[q],)].probabilities
        theirs = local_mode._local_readout_errors[(q,)].probabilities
        assert (mine == theirs).all()
        assert mine[0][1] != mine[1][0]  # asymmetric, as the snapshot reports


# ---------------------------------------------------------------------------- status / cost
def test_fake_status_queue_and_cost() -> None:
    import asyncio

    from qiskit import QuantumCircuit

    dev = provider.device("fake_manila")
    assert asyncio.run(dev.status()) is DeviceStatus.ONLINE
    q = asyncio.run(dev.queue_estimate())
    assert (q.pending_jobs, q.expected_wait_s, q.source) == (0, 0.0, "model")
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()
    cost = dev.estimate_cost([bell, bell], 1000)
    assert cost.total_usd == 0.0 and cost.shots == 2000 and "simulation" in cost.source


def test_status_and_queue_from_vendor_reports() -> None:
    from qiskit_ibm_runtime.models import BackendStatus

    def report(operational: bool, msg: str, pending: int) -> Any:
        return BackendStatus.from_dict(
            {
                "backend_name": "ibm_x",
                "backend_version": "1",
                "operational": operational,
                "pending_jobs": pending,
                "status_msg": msg,
            }
        )

    assert status_from_report(report(True, "active", 3)) is DeviceStatus.ONLINE
    assert status_from_report(report(False, "maintenance", 0)) is DeviceStatus.MAINTENANCE
    assert status_from_report(report(False, "internal", 0)) is DeviceStatus.OFFLINE
    assert status_from_report(report(True, "reserved", 0)) is DeviceStatus.UNKNOWN
    q = queue_from_report(report(True, "active", 42))
    assert (q.pending_jobs, q.source) == (42, "live")
    assert q.expected_wait_s == pytest.approx(42 * _cost.TYPICAL_JOB_S)


def test_cost_model_for_real_backends() -> None:
    dev = provider.device("fake_torino")
    from qiskit import QuantumCircuit

    ghz = QuantumCircuit(3)
    ghz.h(0)
    ghz.cx(0, 1)
    ghz.cx(1, 2)
    ghz.measure_all()
    isa = dev.transpile(ghz)
    cal = dev.calibration()
    duration = _cost.circuit_duration(isa, cal)
    # critical path: at least two CZs, one sx and a readout (1.56 us) in sequence
    assert duration >= 2 * 68e-9 + 32e-9 + 1.56e-6
    assert duration < 5e-6
    est = _cost.estimate([isa, isa], 1000, cal, max_circuits_per_job=300)
    qpu_s = _cost.JOB_OVERHEAD_S + 2 * 1000 * (duration + _cost.REP_DELAY_S)
    assert est.total_usd == pytest.approx(qpu_s * _cost.USD_PER_QPU_SECOND)
    assert pytest.approx(1.60) == _cost.USD_PER_QPU_SECOND
    assert (est.tasks, est.shots) == (1, 2000)
    assert "pay-as-you-go" in est.source
    chunked = _cost.estimate([isa] * 3, 10, cal, max_circuits_per_job=2)
    assert chunked.tasks == 2


# ---------------------------------------------------------------------------- errors
@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A local TCP server standing in for a reachable IBM endpoint."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(2)
    server.close()


def real_device() -> IBMDevice:
    return provider.device("ibm_torino", token=TOKEN, channel="ibm_quantum_platform")


def test_unreachable_endpoint_is_device_unavailable(
    monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    monkeypatch.setattr(_errors, "probe_override", ("127.0.0.1", closed_port))
    expected = r"cannot reach IBM Quantum at 127\.0\.0\.1"
    with pytest.raises(DeviceUnavailableError, match=expected) as e:
        real_device().calibration()
    assert TOKEN not in str(e.value)


def test_reachable_endpoint_means_rejected_token(
    monkeypatch: pytest.MonkeyPatch, listening_port: int
) -> None:
    monkeypatch.setattr(_errors, "probe_override", ("127.0.0.1", listening_port))
    with pytest.raises(CredentialsError, match="IBM Quantum rejected the token") as e:
        real_device().calibration()
    assert TOKEN not in str(e.value)


async def test_run_on_unreachable_cloud_raises_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    from qiskit import QuantumCircuit

    monkeypatch.setattr(_errors, "probe_override", ("127.0.0.1", closed_port))
    circuit = QuantumCircuit(1)
    circuit.measure_all()
    dev = real_device()
    with pytest.raises(DeviceUnavailableError):
        await dev.run([circuit], shots=10)
    assert await dev.status() is DeviceStatus.UNKNOWN


def test_offline_here_is_classified_as_network_failure() -> None:
    """The real default endpoint, no override: on this offline machine it is unreachable."""
    if _errors.endpoint_reachable(_errors.DEFAULT_URL):
        pytest.skip("IBM Quantum is reachable from here")
    expected = r"cannot reach IBM Quantum at cloud\.ibm\.com"
    with pytest.raises(DeviceUnavailableError, match=expected):
        real_device().calibration()


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from qiskit_ibm_runtime.accounts import management

    for var in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_CHANNEL", "QISKIT_IBM_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(management, "_DEFAULT_ACCOUNT_CONFIG_JSON_FILE", str(tmp_path / "a.json"))
    with pytest.raises(CredentialsError, match="no IBM Quantum credentials"):
        provider.device("ibm_torino").calibration()
    with pytest.raises(CredentialsError, match="no IBM Quantum credentials"):
        provider.device("ibm_torino", account="work").calibration()


def test_vendor_errors_translate() -> None:
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError
    from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError, RuntimeJobFailureError

    busy = _errors.translate(RequestsApiError("503 Service Unavailable", 503), action="x")
    assert isinstance(busy, TransientProviderError)
    assert busy.vendor_message == "'503 Service Unavailable'"
    slow = _errors.translate(RequestsApiError("Too many requests", 429), action="x")
    assert isinstance(slow, TransientProviderError)
    bad = _errors.translate(RequestsApiError("400 Bad Request: shots", 400), action="submitting")
    assert type(bad) is ProviderError and "shots" in str(bad) and "submitting" in str(bad)
    assert isinstance(_errors.translate(IBMNotAuthorizedError("no"), action="x"), CredentialsError)
    failed = _errors.translate(RuntimeJobFailureError("boom"), action="x", job_id="j1")
    assert isinstance(failed, JobError) and failed.job_id == "j1" and "boom" in str(failed)
    assert isinstance(_errors.translate(TimeoutError("t"), action="x"), TransientProviderError)


def test_vendor_message_is_redacted() -> None:
    secret = Secret(TOKEN)
    err = _errors.translate(RuntimeError(f"bad key {secret.reveal()}"), action="x")
    assert TOKEN not in str(err) and "***" in str(err)


def test_calibration_from_snapshot_round_trips() -> None:
    cal = provider.device("fake_manila").calibration()
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.fingerprint() == cal.fingerprint()
    assert math.isclose(cal.median_t1() or 0, 1.4467e-4, rel_tol=1e-3)
    assert _snapshots.backends_dir() is not None


def test_saved_account_is_used_and_its_url_probed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A named saved account wins over token/channel; the probe targets the account's URL."""
    from multiqpu_ibm._runtime import Credentials
    from qiskit_ibm_runtime import QiskitRuntimeService
    from qiskit_ibm_runtime.accounts import management

    accounts = tmp_path / "qiskit-ibm.json"
    monkeypatch.setattr(management, "_DEFAULT_ACCOUNT_CONFIG_JSON_FILE", str(accounts))
    QiskitRuntimeService.save_account(
        channel="ibm_quantum_platform",
        token=TOKEN,
        url="https://quantum.example.test",
        name="work",
        filename=str(accounts),
    )
    creds = Credentials(channel="ibm_cloud", account="work", token=Secret("other"), instance="i")
    assert creds.service_kwargs() == {"name": "work", "instance": "i"}
    assert creds.account_url() == "https://quantum.example.test"
    dev = provider.device("ibm_torino", account="work")
    with pytest.raises(DeviceUnavailableError, match=r"at quantum\.example\.test") as e:
        dev.calibration()
    assert TOKEN not in str(e.value)


def test_a_labelled_fake_keeps_its_snapshot_and_runs() -> None:
    """``label=`` renames the device, not the vendor backend it reads and runs on."""
    plain = multiqpu.device("ibm:fake_manila")
    renamed = multiqpu.device("ibm:fake_manila", label="manila-2")
    assert renamed.spec == "ibm:manila-2" and renamed.num_qubits == plain.num_qubits
    ours, theirs = renamed.calibration(), plain.calibration()
    assert ours.readout_error == theirs.readout_error and ours.source == theirs.source
    assert ours.gate_error_2q == theirs.gate_error_2q
    fleet = multiqpu.Fleet([plain, renamed])  # two copies of one backend, told apart by label
    assert len(fleet) == 2
