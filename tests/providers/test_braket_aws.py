"""The AWS path of the Braket adapter, offline: botocore's Stubber answers the ``braket`` and
``s3`` clients (the lowest layer); everything above it (braket's AwsSession, AwsDevice,
AwsQuantumTask, result parsing, our adapter) is the real code. Results files are produced by
Braket's own local simulator running the program we submitted."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

pytest.importorskip("braket")

import boto3
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from braket.aws import AwsSession
from braket.default_simulator import StateVectorSimulator
from braket.ir.openqasm import Program as OpenQASMProgram
from multiqpu_braket._aws import AwsBraketDevice
from multiqpu_braket._emulator import _document, load_profile
from qiskit import QuantumCircuit

import multiqpu
from multiqpu import (
    ConfigError,
    CredentialsError,
    DeviceStatus,
    DeviceUnavailableError,
    JobError,
    JobStatus,
    ProviderError,
    TransientProviderError,
)

REGION = "eu-north-1"
ARN = "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"
TASK = "arn:aws:braket:eu-north-1:123456789012:quantum-task/11111111-2222-3333-4444-55555555555"
BUCKET, PREFIX = "amazon-braket-multiqpu-test", "multiqpu-tests"
PROPS = _document("iqm_garnet_modelled.json")


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No real profile, config or instance metadata can leak in; dummy keys only."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@dataclass
class Aws:
    session: AwsSession
    braket: Stubber
    s3: Stubber

    def device(self) -> AwsBraketDevice:
        return AwsBraketDevice(
            ARN, aws_session=self.session, s3_bucket=BUCKET, s3_prefix=PREFIX, poll_interval_s=0.01
        )

    def get_device(self, status: str = "ONLINE", queue: list[dict[str, str]] | None = None) -> None:
        self.braket.add_response(
            "get_device",
            {
                "deviceArn": ARN,
                "deviceName": "Garnet",
                "providerName": "IQM",
                "deviceType": "QPU",
                "deviceStatus": status,
                "deviceCapabilities": PROPS,
                "deviceQueueInfo": queue or [],
            },
            {"deviceArn": ARN},
        )

    def get_task(self, status: str, arn: str = TASK, **extra: Any) -> None:
        self.braket.add_response(
            "get_quantum_task",
            {
                "quantumTaskArn": arn,
                "status": status,
                "deviceArn": ARN,
                "deviceParameters": "{}",
                "shots": 100,
                "outputS3Bucket": BUCKET,
                "outputS3Directory": f"{PREFIX}/{arn.rsplit('/', 1)[1]}",
                "createdAt": datetime(2025, 6, 1, tzinfo=UTC),
                "queueInfo": {"queue": "QUANTUM_TASKS_QUEUE", "position": "3"},
                "actionMetadata": {"actionType": "braket.ir.openqasm.program"},
                **extra,
            },
            {"quantumTaskArn": arn, "additionalAttributeNames": ["QueueInfo"]},
        )

    def results(self, source: str, shots: int = 100, arn: str = TASK) -> None:
        """The S3 results object, made by Braket's simulator running ``source``."""
        body = StateVectorSimulator().run(OpenQASMProgram(source=source), shots=shots).json()
        raw = body.encode()
        self.s3.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(raw), len(raw))},
            {"Bucket": BUCKET, "Key": f"{PREFIX}/{arn.rsplit('/', 1)[1]}/results.json"},
        )


@pytest.fixture
def aws() -> Iterator[Aws]:
    boto = boto3.Session(region_name=REGION)
    client = boto.client("braket", region_name=REGION)
    session = AwsSession(boto_session=boto, braket_client=client)
    with Stubber(client) as braket, Stubber(session.s3_client) as s3:
        yield Aws(session, braket, s3)
        braket.assert_no_pending_responses()
        s3.assert_no_pending_responses()


def asymmetric() -> QuantumCircuit:
    """X on qubit 1 only; clbit 0 reads qubit 1, clbit 1 reads qubit 2: always '01'."""
    qc = QuantumCircuit(3, 2)
    qc.x(1)
    qc.h(0)
    qc.measure(1, 0)
    qc.measure(2, 1)
    return qc


def test_properties_to_calibration(aws: Aws) -> None:
    aws.get_device()
    dev = aws.device()
    cal = dev.calibration()
    offline = load_profile().calibration
    assert cal.source.startswith("live")
    assert dev.num_qubits == 20 and cal.num_qubits == 20
    assert dev.target.basis_gates == ("cz", "r")
    assert cal.to_dict() | {"source": ""} == offline.to_dict() | {"source": ""}


def test_submit_returns_task_arn_and_counts(aws: Aws) -> None:
    aws.get_device()
    dev = aws.device()
    program = dev.program(asymmetric())
    assert "$" in program.source and program.physical  # multiqpu's layout, physical qubits
    aws.braket.add_response(
        "create_quantum_task",
        {"quantumTaskArn": TASK},
        {
            "deviceArn": ARN,
            "shots": 100,
            "outputS3Bucket": BUCKET,
            "outputS3KeyPrefix": PREFIX,
            "action": ANY,
        },
    )
    aws.get_task("QUEUED")
    aws.get_task("RUNNING")
    aws.get_task("COMPLETED")
    aws.results(program.source)

    callers: list[int] = []

    def record(**_: Any) -> None:
        callers.append(threading.get_ident())

    for client in (aws.session.braket_client, aws.session.s3_client):
        client.meta.events.register("before-parameter-build", record)

    async def scenario() -> multiqpu.RunResult:
        job = await dev.submit([asymmetric()], shots=100)
        assert job.job_id == TASK
        return await job.result()

    result = asyncio.run(scenario())
    assert len(callers) == 5  # create, 3 x get, S3 get_object ...
    assert threading.get_ident() not in callers  # ... none of them on the event loop's thread
    assert result.job_id == TASK and result.metadata["provider_job_id"] == TASK
    assert result[0].counts == {"01": 100}
    assert result[0].shots == 100
    assert len(result[0].metadata["physical_qubits"]) == 2


def test_action_sent_is_the_translated_program(aws: Aws) -> None:
    aws.get_device()
    dev = aws.device()
    program = dev.program(asymmetric())
    sent: dict[str, Any] = {}

    def capture(params: dict[str, Any], **_: Any) -> None:
        sent.update(params)

    aws.session.braket_client.meta.events.register("provide-client-params.braket.*", capture)
    aws.braket.add_response(
        "create_quantum_task",
        {"quantumTaskArn": TASK},
        {
            "deviceArn": ARN,
            "shots": 10,
            "outputS3Bucket": BUCKET,
            "outputS3KeyPrefix": PREFIX,
            "action": ANY,
        },
    )
    asyncio.run(dev.submit([asymmetric()], shots=10))
    action = json.loads(sent["action"])
    assert action["source"] == program.source
    assert action["braketSchemaHeader"]["name"] == "braket.ir.openqasm.program"


def test_retrieve_reattaches_by_task_arn(aws: Aws) -> None:
    aws.get_device()
    dev = aws.device()
    program = dev.program(asymmetric())
    aws.get_task("COMPLETED")
    aws.results(program.source, shots=50)

    async def scenario() -> multiqpu.RunResult:
        job = await dev.retrieve(TASK)
        return await job.result()

    result = asyncio.run(scenario())
    assert result[0].counts == {"01": 50}  # mapping rebuilt from the program's header


def test_queue_depth_is_parsed(aws: Aws) -> None:
    aws.get_device()
    aws.get_device(
        queue=[
            {"queue": "QUANTUM_TASKS_QUEUE", "queueSize": ">4000", "queuePriority": "Normal"},
            {"queue": "QUANTUM_TASKS_QUEUE", "queueSize": "12", "queuePriority": "Priority"},
            {"queue": "JOBS_QUEUE", "queueSize": "0 (1 prioritized job(s) running)"},
        ]
    )
    q = asyncio.run(aws.device().queue_estimate())
    assert (q.pending_jobs, q.capped, q.source) == (4012, True, "live")
    assert q.raw is not None and ">4000" in q.raw and "12" in q.raw


@pytest.mark.parametrize(("status", "expected"), [("ONLINE", "online"), ("OFFLINE", "offline")])
def test_status(aws: Aws, status: str, expected: str) -> None:
    aws.get_device()
    aws.get_device(status=status)
    assert asyncio.run(aws.device().status()) == DeviceStatus(expected)


def test_cancellation(aws: Aws) -> None:
    aws.get_device()
    dev = aws.device()
    aws.braket.add_response("create_quantum_task", {"quantumTaskArn": TASK}, None)
    aws.get_task("QUEUED")
    aws.braket.add_response(
        "cancel_quantum_task",
        {"quantumTaskArn": TASK, "cancellationStatus": "CANCELLING"},
        {"quantumTaskArn": TASK},
    )
    aws.get_task("CANCELLED")  # read once: a final state is not polled again

    async def scenario() -> JobStatus:
        job = await dev.submit([asymmetric()], shots=10)
        assert await job.status() is JobStatus.QUEUED
        await job.cancel()
        status = await job.status()
        with pytest.raises(JobError, match="cancelled"):
            await job.result()
        return status

    assert asyncio.run(scenario()) is JobStatus.CANCELLED


def test_failed_task_raises_job_error_with_reason(aws: Aws) -> None:
    aws.get_device()
    dev = aws.device()
    aws.braket.add_response("create_quantum_task", {"quantumTaskArn": TASK}, None)
    aws.get_task("FAILED", failureReason="Device calibration in progress")

    with pytest.raises(JobError, match="Device calibration in progress"):
        asyncio.run(dev.run([asymmetric()], shots=10))


@pytest.mark.parametrize(
    ("operation", "code", "status", "error"),
    [
        ("create_quantum_task", "ValidationException", 400, ProviderError),
        ("create_quantum_task", "ThrottlingException", 429, TransientProviderError),
        ("create_quantum_task", "InternalServiceException", 500, TransientProviderError),
        ("create_quantum_task", "DeviceOfflineException", 424, DeviceUnavailableError),
        ("get_device", "AccessDeniedException", 403, CredentialsError),
        ("get_device", "UnrecognizedClientException", 403, CredentialsError),
    ],
)
def test_aws_errors_map_to_multiqpu_errors(
    aws: Aws, operation: str, code: str, status: int, error: type[Exception]
) -> None:
    if operation != "get_device":
        aws.get_device()
    aws.braket.add_client_error(
        operation,
        service_error_code=code,
        service_message=f"vendor words for {code}",
        http_status_code=status,
    )
    dev = aws.device()
    with pytest.raises(error) as info:
        asyncio.run(dev.run([asymmetric()], shots=10))
    assert type(info.value) is error
    assert f"vendor words for {code}" in str(info.value)
    if isinstance(info.value, ProviderError):
        assert info.value.vendor_message and code in info.value.vendor_message


def test_unknown_device_arn_is_a_config_error(aws: Aws) -> None:
    aws.braket.add_client_error(
        "get_device", service_error_code="ResourceNotFoundException", http_status_code=404
    )
    with pytest.raises(ConfigError, match="not found"):
        aws.device().calibration()


def test_cost_estimate_uses_price_table() -> None:
    dev = AwsBraketDevice(ARN)  # no network: pricing needs no AWS call
    cost = dev.estimate_cost([asymmetric()] * 2, 1000)
    assert cost.total_usd == pytest.approx(2 * (0.30 + 1000 * 0.00145))
    assert (cost.tasks, cost.shots, cost.per_task_usd) == (2, 2000, 0.30)
    forte = AwsBraketDevice("arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1")
    assert forte.estimate_cost([asymmetric()], 100).total_usd == pytest.approx(0.30 + 8.0)
    sv1 = AwsBraketDevice("arn:aws:braket:::device/quantum-simulator/amazon/sv1")
    floor = sv1.estimate_cost([asymmetric()], 100)
    assert floor.total_usd == pytest.approx(0.075 * 3 / 60) and "lower bound" in floor.source


def test_offline_is_device_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """No stub: a real connection attempt to an endpoint nobody listens on (braket's own
    ``BRAKET_ENDPOINT`` override), as when offline."""
    monkeypatch.setenv("BRAKET_ENDPOINT", "http://127.0.0.1:9")
    dev = multiqpu.device(f"braket:{ARN}")
    with pytest.raises(DeviceUnavailableError, match="cannot reach"):
        dev.calibration()


def test_missing_credentials_and_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(CredentialsError, match="no AWS credentials"):
        multiqpu.device(f"braket:{ARN}").calibration()
    with pytest.raises(CredentialsError, match="nope"):
        multiqpu.device(f"braket:{ARN}", aws_profile="nope").calibration()
