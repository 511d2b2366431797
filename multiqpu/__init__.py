"""multiqpu: run quantum workloads across several QPUs at once.

Importing multiqpu is cheap: vendor SDKs (and Qiskit itself) load when first needed.
"""

from __future__ import annotations

from multiqpu.calibration import Calibration
from multiqpu.device import (
    CircuitResult,
    CostEstimate,
    Device,
    DeviceLimits,
    DeviceStatus,
    DeviceTarget,
    Job,
    JobStatus,
    JobTimings,
    QueueEstimate,
    RunResult,
    ThreadJob,
)
from multiqpu.errors import (
    CircuitTooLargeError,
    ConfigError,
    CredentialsError,
    DeviceUnavailableError,
    InvalidInputError,
    JobError,
    MissingExtraError,
    MultiQPUError,
    PlanRefusedError,
    ProviderError,
    TransientProviderError,
    UnknownProviderError,
    UntrustedDeviceError,
)
from multiqpu.fleet import Fleet, device
from multiqpu.mitigation import ZNE, Mitigation, PauliTwirl, Readout
from multiqpu.placement import Placement, PlacementError
from multiqpu.providers import Provider
from multiqpu.secrets import Secret
from multiqpu.trust import Trust

__version__ = "0.1.0"

__all__ = [
    "Calibration",
    "CircuitResult",
    "CircuitTooLargeError",
    "ConfigError",
    "CostEstimate",
    "CredentialsError",
    "Device",
    "DeviceLimits",
    "DeviceStatus",
    "DeviceTarget",
    "DeviceUnavailableError",
    "Fleet",
    "InvalidInputError",
    "Job",
    "JobError",
    "JobStatus",
    "JobTimings",
    "MissingExtraError",
    "Mitigation",
    "MultiQPUError",
    "PauliTwirl",
    "Placement",
    "PlacementError",
    "PlanRefusedError",
    "Provider",
    "ProviderError",
    "QueueEstimate",
    "Readout",
    "RunResult",
    "Secret",
    "ThreadJob",
    "TransientProviderError",
    "Trust",
    "UnknownProviderError",
    "UntrustedDeviceError",
    "ZNE",
    "__version__",
    "device",
]
