"""Everything a provider adapter needs from multiqpu, and nothing else.

Adapters (``multiqpu_ibm``, ``multiqpu_braket``, ``multiqpu_local`` and third-party ones)
import multiqpu through this module only, so the core can move its insides without breaking
them (``tests/providers/test_interface.py`` checks multiqpu's own adapters)::

    from multiqpu.provider_api import Provider, SimulatorDevice, CircuitResult, ConfigError

What is here:

* bases: :class:`Provider` (the object the ``multiqpu.providers`` entry point names),
  :class:`Device` and :class:`Job` (a QPU and its job), :class:`ThreadJob` (a blocking call
  in a worker thread), :class:`SimulatorDevice` (a simulator: one abstract method,
  ``_simulate``, with per-batch seeding done for you) and its :class:`Batch`,
  :class:`DelegatingDevice` (a wrapper that forwards what it does not change);
* value types: :class:`DeviceTarget`, :class:`DeviceLimits`, :class:`DeviceStatus`,
  :class:`JobStatus`, :class:`QueueEstimate`, :class:`CostEstimate`, :class:`CircuitResult`,
  :class:`RunResult`, :class:`JobTimings`, :class:`Calibration`, :class:`Secret`;
* the error tree (:class:`MultiQPUError` and its subclasses) and :func:`redact`;
* helpers: :func:`qiskit_target` (the one builder of a Qiskit ``Target`` from a
  ``DeviceTarget`` and a ``Calibration``), :func:`transpile_for`, :func:`circuit_key`; for
  Aer-based simulators :func:`active_qubits`, :func:`compact_circuit`,
  :func:`counts_from_aer`, :func:`noise_model_for`, :class:`SimulatorCache`; and
  :func:`device`, to build another provider's device (e.g. to take its calibration).

Importing this module is cheap (no Qiskit, numpy or vendor SDK).
"""

from __future__ import annotations

from typing import Any

from multiqpu._transpile import circuit_key, qiskit_target, transpile_for
from multiqpu.calibration import Calibration
from multiqpu.delegating import DelegatingDevice
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
    ProviderError,
    TransientProviderError,
    UnknownProviderError,
)
from multiqpu.providers import Provider
from multiqpu.secrets import Secret, redact
from multiqpu.simulation import (
    SimulatorCache,
    active_qubits,
    compact_circuit,
    counts_from_aer,
    noise_model_for,
)
from multiqpu.simulator import Batch, SimulatorDevice, SimulatorJob

__all__ = [
    "Batch",
    "Calibration",
    "CircuitResult",
    "CircuitTooLargeError",
    "ConfigError",
    "CostEstimate",
    "CredentialsError",
    "DelegatingDevice",
    "Device",
    "DeviceLimits",
    "DeviceStatus",
    "DeviceTarget",
    "DeviceUnavailableError",
    "InvalidInputError",
    "Job",
    "JobError",
    "JobStatus",
    "JobTimings",
    "MissingExtraError",
    "MultiQPUError",
    "Provider",
    "ProviderError",
    "QueueEstimate",
    "RunResult",
    "Secret",
    "SimulatorCache",
    "SimulatorDevice",
    "SimulatorJob",
    "ThreadJob",
    "TransientProviderError",
    "UnknownProviderError",
    "active_qubits",
    "circuit_key",
    "compact_circuit",
    "counts_from_aer",
    "device",
    "noise_model_for",
    "qiskit_target",
    "redact",
    "transpile_for",
]


def device(spec: str, **options: Any) -> Device:
    """Build the device ``spec`` (``"provider:name"``) with ``options``, the way
    ``multiqpu.device`` does (config file and environment included)."""
    from multiqpu.config import make_device

    return make_device(spec, options)
