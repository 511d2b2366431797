"""A fleet: the set of devices multiqpu may use, and ``multiqpu.device(spec)``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from os import PathLike
from typing import TYPE_CHECKING, Any, overload

from multiqpu.errors import ConfigError
from multiqpu.pool import DevicePool, local_devices

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.cutting import CutPlan, EstimateResult
    from multiqpu.device import Device
    from multiqpu.mitigation._results import MitigatedEstimate, MitigatedSample
    from multiqpu.pipeline._combine import SplitEstimate
    from multiqpu.scheduler import SampleResult

__all__ = ["Fleet", "device"]


def device(spec: str, *, label: str | None = None, **options: Any) -> Device:
    """Build one device from a ``"provider:name"`` spec, e.g. ``device("ibm:fake_torino")``
    or ``device("local:ideal", num_qubits=7)``, or from the label of a device in the config
    file. Options resolve as: these arguments > environment > config file > defaults
    (see :mod:`multiqpu.config`).

    ``label`` renames the device (its spec becomes ``provider:label``), so a fleet can hold
    several devices of one kind, e.g. two ``local:ideal`` simulators of different sizes."""
    from multiqpu.config import make_device

    if label is not None and (
        not isinstance(label, str) or not label.strip() or any(c in label for c in ": \t\n")
    ):
        raise ConfigError(
            f"label must be a non-empty name without ':' or spaces, got {label!r}", key="label"
        )
    dev = make_device(spec, options)
    if label is not None:
        dev.name = label
    return dev


class Fleet:
    """An ordered set of devices with unique specs: the user's facade over a
    :class:`~multiqpu.pool.DevicePool` (``fleet.pool``), which is what the engines run on.
    What one call learns about the devices (queue waits, speeds) serves the next call on the
    same fleet."""

    __slots__ = ("__weakref__", "pool")

    def __init__(self, devices: Iterable[Device] | DevicePool) -> None:
        self.pool = devices if isinstance(devices, DevicePool) else DevicePool(devices)

    # ------------------------------------------------------------------ construction
    @classmethod
    def local(cls, *, queues: bool = True, time_scale: float | None = None) -> Fleet:
        """The embedded default fleet: every installed provider's default devices (fake IBM
        backends with real calibration snapshots, a noisy Braket emulator, an ideal
        simulator), each behind a simulated queue unless ``queues=False``."""
        return cls(local_devices(queues=queues, time_scale=time_scale))

    @classmethod
    def from_config(cls, path: str | PathLike[str] | None = None) -> Fleet:
        """The fleet a config file declares (``path``, ``$MULTIQPU_CONFIG`` or the user config
        file), or the embedded default fleet when there is no config file."""
        from multiqpu.config import load_devices

        return cls(load_devices(path))

    # ------------------------------------------------------------------ the scheduler
    @overload
    async def sample(
        self,
        circuits: Any,
        shots: Any = 1024,
        policy: str = "balanced",
        *,
        mitigation: None = None,
        **options: Any,
    ) -> SampleResult: ...
    @overload
    async def sample(
        self,
        circuits: Any,
        shots: Any = 1024,
        policy: str = "balanced",
        *,
        mitigation: Any,
        **options: Any,
    ) -> MitigatedSample: ...
    async def sample(
        self,
        circuits: Any,
        shots: Any = 1024,
        policy: str = "balanced",
        *,
        mitigation: Any = None,
        **options: Any,
    ) -> SampleResult | MitigatedSample:
        """Run the circuits across the fleet; one result per circuit, in input order, with
        the device that produced it and a run report (``result.report``). See
        :func:`multiqpu.scheduler.sample` and docs/scheduler.md for policies and options.
        ``mitigation`` (e.g. ``[multiqpu.Readout(), multiqpu.ZNE()]``) corrects each result
        on the device that produced it: see docs/mitigation.md."""
        from multiqpu.pipeline import sample

        return await sample(self.pool, circuits, shots, policy, mitigation=mitigation, **options)

    async def run(self, jobs: Any, policy: str = "balanced", **options: Any) -> SampleResult:
        """Like :meth:`sample` with per-circuit shots, devices and fidelity floors
        (:class:`multiqpu.scheduler.JobRequest` or ``(circuit, shots)`` pairs)."""
        from multiqpu.scheduler import run

        return await run(self.pool, jobs, policy, **options)

    async def resume(self, run_id: str, **options: Any) -> SampleResult:
        """Finish an interrupted run from the job journal (``journal=`` to pick the file)."""
        from multiqpu.scheduler import resume

        return await resume(self.pool, run_id, **options)

    def sample_sync(
        self, circuits: Any, shots: Any = 1024, policy: str = "balanced", **options: Any
    ) -> SampleResult:
        """:meth:`sample` from synchronous code (safe in Jupyter: runs on a background loop)."""
        from multiqpu.scheduler import sample_sync

        return sample_sync(self.pool, circuits, shots, policy, **options)

    # ------------------------------------------------------------------ Qiskit primitives
    def estimator(self, **options: Any) -> Any:
        """A Qiskit ``BaseEstimatorV2`` running on this fleet (see
        :class:`multiqpu.primitives.FleetEstimator` for the options)."""
        from multiqpu.primitives import FleetEstimator

        return FleetEstimator(self, **options)

    def sampler(self, **options: Any) -> Any:
        """A Qiskit ``BaseSamplerV2`` running on this fleet (see
        :class:`multiqpu.primitives.FleetSampler` for the options)."""
        from multiqpu.primitives import FleetSampler

        return FleetSampler(self, **options)

    # ------------------------------------------------------------------ container protocol
    @property
    def devices(self) -> tuple[Device, ...]:
        return self.pool.devices

    def __iter__(self) -> Iterator[Device]:
        return iter(self.pool)

    def __len__(self) -> int:
        return len(self.pool)

    def __contains__(self, spec: object) -> bool:
        return spec in self.pool

    def __getitem__(self, spec: str) -> Device:
        """A device by spec (``"ibm:fake_torino"``) or by unique name (``"fake_torino"``)."""
        return self.pool[spec]

    # ------------------------------------------------------------------ circuit cutting
    @overload
    async def estimate(
        self,
        circuit: QuantumCircuit,
        observables: Any,
        *,
        mitigation: None = None,
        **options: Any,
    ) -> EstimateResult | SplitEstimate: ...
    @overload
    async def estimate(
        self, circuit: QuantumCircuit, observables: Any, *, mitigation: Any, **options: Any
    ) -> MitigatedEstimate | SplitEstimate: ...
    async def estimate(
        self,
        circuit: QuantumCircuit,
        observables: Any,
        *,
        mitigation: Any = None,
        **options: Any,
    ) -> EstimateResult | MitigatedEstimate | SplitEstimate:
        """Expectation values of ``observables`` (SparsePauliOp, PauliList, Pauli strings, or
        a list of them), each with a standard error, cutting ``circuit`` into fragments
        spread across the fleet when no device fits it. Options: ``shots`` (total over all
        sub-experiments, default 100,000; None: exact, on ideal simulators), ``precision``,
        ``policy``, ``cut`` ("auto", "always", "never", "fidelity"), ``max_fragment_qubits``,
        ``gate_cuts``, ``wire_cuts``, ``adaptive``, ``limits`` (:class:`multiqpu.cutting.
        CutLimits`), ``seed``. See docs/cutting.md. ``mitigation`` (e.g.
        ``[multiqpu.Readout(), multiqpu.ZNE()]``) corrects every sub-experiment on the device
        that ran it before knitting; precision targets and adaptive shots work the same
        with it (shots count what the unmitigated run spends): see docs/mitigation.md.
        ``split_shots=True`` (or "auto" with ``policy="fastest"``) shares the shots among the
        devices that hold the circuit uncut, corrects each device's share there and combines
        the values with inverse-variance weights (a :class:`multiqpu.pipeline.SplitEstimate`
        with the spread between devices): see docs/shots.md. ``trust=multiqpu.Trust()`` mixes
        canary circuits into every scheduler run and quarantines a device whose canaries
        disagree with its own calibration: see docs/trust.md."""
        from multiqpu.pipeline import estimate

        return await estimate(self.pool, circuit, observables, mitigation=mitigation, **options)

    def plan(
        self,
        circuit: QuantumCircuit,
        observables: Any = None,
        *,
        mitigation: Any = None,
        **options: Any,
    ) -> CutPlan:
        """What :meth:`estimate` would do (cuts, fragments, sub-experiments, overhead, shots,
        expected time and cost, devices) without submitting anything; ``plan.refused`` says
        if a bound (``limits``) would refuse it. Takes :meth:`estimate`'s arguments."""
        from multiqpu.pipeline import plan

        return plan(self.pool, circuit, observables, mitigation=mitigation, **options)

    def __repr__(self) -> str:
        return f"Fleet([{', '.join(self.pool.specs)}])"
