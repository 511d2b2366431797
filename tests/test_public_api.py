"""The public API is pinned: every public module's ``__all__`` is written out here, exactly.

A change to a public ``__all__`` (a name added, removed or renamed) must change this file
too, so it is a decision, not an accident (httpx's ``tests/test_exported_members.py``). Every
name listed exists; every public module is pinned (a new public module must be added here);
every module, private ones included, declares ``__all__``.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import multiqpu

ROOT = Path(__file__).resolve().parents[1]

#: Modules without ``__all__``: ``__main__`` is a script; the others belong to branches being
#: merged (the lead empties this at merge, see test_every_module_declares_all).
WITHOUT_ALL = {
    "multiqpu/__main__.py",
    "multiqpu/_config_parse.py",
    "multiqpu/testing/_circuits.py",
    "providers/multiqpu_braket/_modelled_properties.py",
}

#: Every public module (no ``_`` in its dotted path) and its exact ``__all__``.
PUBLIC_ALL: dict[str, list[str]] = {
    "multiqpu": [
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
    ],
    "multiqpu.calibration": ["Calibration"],
    "multiqpu.cli": ["main"],
    "multiqpu.config": [
        "ENV_VAR",
        "Config",
        "DeviceConfig",
        "EngineConfig",
        "FleetConfig",
        "ResolvedOptions",
        "build_device",
        "config_path",
        "load_config",
        "load_devices",
        "make_device",
        "resolve_options",
        "user_config_file",
    ],
    "multiqpu.engine": [
        "ENGINE_KINDS",
        "Engine",
        "EngineDevice",
        "LocalEngine",
        "RayDevice",
        "RayEngine",
        "get_engine",
        "simulate_many",
    ],
    "multiqpu.cutting": [
        "DEFAULT_SHOTS",
        "CutInfo",
        "CutLimits",
        "CutPlan",
        "CuttingReport",
        "DeviceUsage",
        "DistributionResult",
        "EstimateResult",
        "FragmentPlan",
        "distribution",
        "estimate",
        "plan",
        "plan_async",
    ],
    "multiqpu.device": [
        "CircuitResult",
        "CostEstimate",
        "Device",
        "DeviceLimits",
        "DeviceStatus",
        "DeviceTarget",
        "FutureJob",
        "Job",
        "JobStatus",
        "JobTimings",
        "QueueEstimate",
        "RunResult",
        "ThreadJob",
    ],
    "multiqpu.errors": [
        "CircuitTooLargeError",
        "ConfigError",
        "CredentialsError",
        "DeviceUnavailableError",
        "IncompatibleResultsError",
        "InvalidInputError",
        "JobError",
        "MissingExtraError",
        "MultiQPUError",
        "PlanRefusedError",
        "ProviderError",
        "TransientProviderError",
        "UnknownProviderError",
        "UntrustedDeviceError",
    ],
    "multiqpu.fleet": ["Fleet", "device"],
    "multiqpu.journal": [
        "ENV_VAR",
        "JobRecord",
        "Journal",
        "OpenJob",
        "PruneReport",
        "RunInfo",
        "default_journal_path",
    ],
    "multiqpu.mitigation": [
        "DeviceFit",
        "Exponential",
        "Extrapolator",
        "FitResult",
        "MitigatedCircuit",
        "MitigatedEstimate",
        "MitigatedSample",
        "Mitigation",
        "MitigationReport",
        "MitigationSpec",
        "MitigationStage",
        "PauliTwirl",
        "Polynomial",
        "Readout",
        "Richardson",
        "Stage",
        "ZNE",
        "estimate",
        "fit_per_device",
        "resolve",
        "sample",
    ],
    "multiqpu.pennylane": ["FleetDevice"],
    "multiqpu.pennylane.device": ["FleetDevice"],
    "multiqpu.pipeline": [
        "Accumulator",
        "Combined",
        "CorrectionStage",
        "DeviceEstimate",
        "EstimateRun",
        "IdentityStage",
        "RunContext",
        "SplitEstimate",
        "combine",
        "distribution",
        "estimate",
        "plan",
        "sample",
        "stage_for",
    ],
    "multiqpu.placement": [
        "ALLOWED_KEY",
        "Placement",
        "PlacementError",
        "load_placements",
        "recorded_allowed",
        "resolve_placement",
        "restrict_pool",
    ],
    "multiqpu.pool": [
        "IDEAL_SPECS",
        "DeviceKnowledge",
        "DevicePool",
        "PoolLike",
        "as_pool",
        "ideal_devices",
        "local_devices",
    ],
    "multiqpu.primitives": ["FleetEstimator", "FleetSampler"],
    "multiqpu.primitives.estimator": ["FleetEstimator"],
    "multiqpu.primitives.sampler": ["FleetSampler"],
    "multiqpu.providers": [
        "ENTRY_POINT_GROUP",
        "Provider",
        "available_providers",
        "get_provider",
        "parse_spec",
    ],
    "multiqpu.qnn": [
        "CutExecutor",
        "EpochRecord",
        "FleetExecutor",
        "History",
        "Privacy",
        "QNNModel",
        "Trainer",
        "VirtualDevice",
        "VirtualExecutor",
        "variational_classifier",
    ],
    "multiqpu.qnn.history": ["EpochRecord", "History"],
    "multiqpu.qnn.model": ["QNNModel", "Work", "variational_classifier"],
    "multiqpu.qnn.trainer": ["Trainer"],
    "multiqpu.queue_model": [
        "DEFAULT_TIME_SCALE",
        "QueueModel",
        "QueueStyle",
        "QueuedDevice",
        "QueuedJob",
        "Window",
    ],
    "multiqpu.plots": [
        "error_budget",
        "journal_timeline",
        "plot_cutting_report",
        "plot_report",
        "require_matplotlib",
        "timeline",
        "training",
    ],
    "multiqpu.scheduler": [
        "POLICIES",
        "Compatibility",
        "DeviceReport",
        "JobRequest",
        "JobSpan",
        "Options",
        "RunReport",
        "SampleResult",
        "ShotShare",
        "SimCircuit",
        "SimDevice",
        "SimulationResult",
        "TaskResult",
        "Workload",
        "demo_batch",
        "ghz_batch",
        "random_fleet",
        "reference_fleet",
        "resume",
        "resume_sync",
        "run",
        "run_sync",
        "sample",
        "sample_sync",
        "simulate",
    ],
    "multiqpu.secrets": [
        "REDACTED",
        "Secret",
        "install_log_redaction",
        "redact",
        "register_secret_value",
    ],
    "multiqpu.simulation": [
        "SimulatorCache",
        "active_qubits",
        "compact_circuit",
        "counts_from_aer",
        "reduce_target",
    ],
    "multiqpu.delegating": [
        "DelegatingDevice",
    ],
    "multiqpu.provider_api": [
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
    ],
    "multiqpu.simulator": [
        "Batch",
        "SimulatorDevice",
        "SimulatorJob",
    ],
    "multiqpu.testing": ["DeviceConformance", "ProviderConformance"],
    "multiqpu.testing.conformance": ["DeviceConformance", "ProviderConformance"],
    "multiqpu.trust": [
        "CanaryTest",
        "Consistency",
        "DeviceVerdict",
        "Trust",
        "TrustMode",
        "TrustReport",
        "consistency",
    ],
    "multiqpu.testing.faults": [
        "BitFlips",
        "Corruption",
        "Drift",
        "FaultyDevice",
        "FaultyJob",
        "OtherCircuitCounts",
        "Submission",
        "UniformCounts",
    ],
    "multiqpu_braket": ["EXAMPLE_ARNS", "BraketProvider", "provider"],
    "multiqpu_ibm": ["IBMDevice", "IBMProvider", "provider"],
    "multiqpu_local": [
        "IdealSimulator",
        "LocalProvider",
        "LocalSimulator",
        "NoisySimulator",
        "provider",
    ],
}


def _public_modules() -> set[str]:
    """Dotted names of the public modules of multiqpu and the bundled adapters."""
    found = set()
    for base, top in ((ROOT, "multiqpu"), (ROOT / "providers", "multiqpu_*")):
        for pkg in base.glob(top):
            for path in pkg.rglob("*.py"):
                parts = list(path.relative_to(base).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                if parts[-1] == "__main__" or any(p.startswith("_") for p in parts[1:]):
                    continue
                found.add(".".join(parts))
    return found


def test_every_public_module_is_pinned() -> None:
    assert _public_modules() == set(PUBLIC_ALL)


@pytest.mark.parametrize("name", sorted(PUBLIC_ALL))
def test_all_is_pinned_and_every_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    assert list(module.__all__) == PUBLIC_ALL[name]
    assert len(set(module.__all__)) == len(module.__all__), "a name is listed twice"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what it does not define: {missing}"


def test_every_module_declares_all() -> None:
    missing = set()
    for top in (ROOT / "multiqpu", ROOT / "providers"):
        for path in top.rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            declared = any(
                isinstance(node, ast.Assign | ast.AnnAssign)
                and any(
                    isinstance(t, ast.Name) and t.id == "__all__"
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                )
                for node in tree.body
            )
            if not declared:
                missing.add(path.relative_to(ROOT).as_posix())
    assert missing == WITHOUT_ALL


def test_required_names_exist() -> None:
    for name in ("Device", "Fleet", "device", "MultiQPUError", "Calibration"):
        assert name in multiqpu.__all__
    assert callable(multiqpu.Fleet.local)
    assert callable(multiqpu.Fleet.from_config)


def test_exception_tree_is_rooted() -> None:
    for name in multiqpu.__all__:
        obj = getattr(multiqpu, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, multiqpu.MultiQPUError), name
