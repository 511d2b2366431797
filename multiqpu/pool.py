"""The device pool: the devices an engine may use, and what was learned about them.

Every engine (scheduler, cutting, mitigation, primitives, QNN) works on a
:class:`DevicePool`, never on the :class:`~multiqpu.Fleet` facade above it. A pool is an
ordered set of devices with unique specs plus the statistics the scheduler learned from their
completed jobs (queue waits, speeds): what one call learns is there for the next call on the
same pool, and a :meth:`~DevicePool.subset` (one device, the devices wide enough for a
circuit) shares that memory with the pool it came from.

:func:`as_pool` turns whatever a user passed as ``fleet=`` into a pool: a pool, anything that
carries one (a ``Fleet``), a device, a list of devices or specs, or a preset name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu.errors import ConfigError

if TYPE_CHECKING:
    from multiqpu.device import Device
    from multiqpu.trust import CanaryTest

__all__ = [
    "IDEAL_SPECS",
    "DeviceKnowledge",
    "DevicePool",
    "PoolLike",
    "as_pool",
    "ideal_devices",
    "local_devices",
]

#: What every ``fleet=`` argument of the engines accepts: a DevicePool, a Fleet, a Device, a
#: list of devices or specs, a preset name ("ideal", "default", "local") or comma-separated
#: specs, or None (the engine's default preset).
PoolLike = Any

#: Device specs of the noiseless, exact-capable simulators, in order of preference.
IDEAL_SPECS = ("local:ideal", "braket:sv")


@dataclass(frozen=True)
class DeviceKnowledge:
    """What was learned about one device, carried from run to run (sufficient statistics of
    the scheduler's wait and speed estimates, see :mod:`multiqpu.scheduler._learning`)."""

    n: float = 0.0
    sum_r: float = 0.0
    sum_r2: float = 0.0
    sxx: tuple[float, float, float] = (0.0, 0.0, 0.0)  # weighted sums 1, p, p^2
    sxy: tuple[float, float] = (0.0, 0.0)  # weighted sums y, p*y
    jobs: int = 0


class DevicePool:
    """An ordered set of devices with unique specs, and what was learned about them.

    ``knowledge`` maps a device spec to its :class:`DeviceKnowledge`; it is shared by every
    subset of the pool, so learning done on a one-device subset serves the whole pool.
    ``canary_tests`` maps a device spec to its sequential canary test
    (:class:`multiqpu.trust.CanaryTest`), shared the same way: a device flagged in one run
    stays flagged for the pool's later runs (``pool.canary_tests.pop(spec)`` clears it)."""

    __slots__ = ("_devices", "canary_tests", "knowledge")

    def __init__(
        self,
        devices: Iterable[Device],
        *,
        knowledge: dict[str, DeviceKnowledge] | None = None,
        canary_tests: dict[str, CanaryTest] | None = None,
    ) -> None:
        from multiqpu.device import Device

        self._devices: dict[str, Device] = {}
        for d in devices:
            if not isinstance(d, Device):
                raise ConfigError(
                    f"a fleet holds multiqpu Device objects, got {type(d).__name__}; "
                    "build one with multiqpu.device('provider:name')"
                )
            if d.spec in self._devices:
                raise ConfigError(
                    f"device '{d.spec}' appears twice in the fleet; give one a distinct label, "
                    f"e.g. multiqpu.device('{d.spec}', ..., label='{d.name}-2')"
                )
            self._devices[d.spec] = d
        self.knowledge: dict[str, DeviceKnowledge] = {} if knowledge is None else knowledge
        self.canary_tests: dict[str, CanaryTest] = {} if canary_tests is None else canary_tests

    # ------------------------------------------------------------------ derived pools
    def subset(self, devices: Iterable[Device]) -> DevicePool:
        """A pool of some of these devices that shares this pool's learned knowledge."""
        return DevicePool(devices, knowledge=self.knowledge, canary_tests=self.canary_tests)

    def where(self, keep: Any) -> DevicePool:
        """The sub-pool of devices for which ``keep(device)`` is true (shares knowledge)."""
        return self.subset(d for d in self._devices.values() if keep(d))

    # ------------------------------------------------------------------ container protocol
    @property
    def devices(self) -> tuple[Device, ...]:
        return tuple(self._devices.values())

    @property
    def specs(self) -> tuple[str, ...]:
        return tuple(self._devices)

    def __iter__(self) -> Iterator[Device]:
        return iter(self._devices.values())

    def __len__(self) -> int:
        return len(self._devices)

    def __bool__(self) -> bool:
        return bool(self._devices)

    def __contains__(self, spec: object) -> bool:
        return spec in self._devices

    def __getitem__(self, spec: str) -> Device:
        """A device by spec (``"ibm:fake_torino"``) or by unique name (``"fake_torino"``)."""
        if spec in self._devices:
            return self._devices[spec]
        matches = [d for d in self._devices.values() if d.name == spec]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(
            f"no device '{spec}' in this fleet; it has: {', '.join(self._devices) or 'none'}"
        )

    def __repr__(self) -> str:
        return f"DevicePool([{', '.join(self._devices)}])"


# ---------------------------------------------------------------------------- building
def local_devices(*, queues: bool = True, time_scale: float | None = None) -> list[Device]:
    """The embedded default fleet's devices: every installed provider's default devices (fake
    IBM backends with real calibration snapshots, a noisy Braket emulator, an ideal
    simulator), each behind a simulated queue unless ``queues=False``."""
    from multiqpu.providers import available_providers, check_requirements, get_provider
    from multiqpu.queue_model import QueuedDevice, QueueModel

    devices: list[Device] = []
    for pname in available_providers():
        try:
            provider = get_provider(pname)
            check_requirements(provider)
        except ConfigError:
            continue  # extra not installed: the fleet is what is installed
        for i, name in enumerate(provider.default_devices()):
            dev = provider.device(name)
            if queues:
                model = QueueModel.for_device(dev.spec, style=pname, index=i)
                if time_scale is not None:
                    model = model.with_time_scale(time_scale)
                dev = QueuedDevice(dev, model)
            devices.append(dev)
    if not devices:
        raise ConfigError(
            "no provider is installed, so the default fleet is empty; "
            "run: pip install 'multiqpu[all]'"
        )
    return devices


def ideal_devices() -> list[Device]:
    """Every installed noiseless exact simulator (``local:ideal``, ``braket:sv``)."""
    from multiqpu.config import make_device

    devices: list[Device] = []
    for spec in IDEAL_SPECS:
        try:
            devices.append(make_device(spec, {}))
        except ConfigError:  # that provider's extra is not installed
            continue
    if not devices:
        raise ConfigError("no ideal simulator is installed; run: pip install 'multiqpu[local]'")
    return devices


def as_pool(fleet: PoolLike, *, default: str = "ideal") -> DevicePool:
    """A :class:`DevicePool` from what a user passed as ``fleet=``.

    Accepted: a DevicePool; anything carrying one as ``.pool`` (a :class:`~multiqpu.Fleet`);
    one Device; a list of Devices or specs; a string naming a preset (``"ideal"``: the
    noiseless exact simulators, ``"default"``: the configured fleet or the embedded default
    fleet, ``"local"``: the embedded default fleet) or comma-separated specs
    (``"local:ideal,ibm:fake_manila"``); ``None`` means the preset named by ``default``.
    """
    from multiqpu.device import Device

    if fleet is None:
        fleet = default
    if isinstance(fleet, DevicePool):
        return fleet
    carried = getattr(fleet, "pool", None)
    if isinstance(carried, DevicePool):
        return carried
    if isinstance(fleet, Device):
        return DevicePool([fleet])
    if isinstance(fleet, str):
        from multiqpu.config import load_devices, make_device

        name = fleet.strip()
        if name == "ideal":
            return DevicePool(ideal_devices())
        if name in ("default", "config"):
            return DevicePool(load_devices())
        if name == "local":
            return DevicePool(local_devices())
        return DevicePool(make_device(s.strip(), {}) for s in name.split(",") if s.strip())
    if isinstance(fleet, Iterable):
        from multiqpu.config import make_device

        return DevicePool(d if isinstance(d, Device) else make_device(str(d), {}) for d in fleet)
    raise ConfigError(
        f"fleet= takes a multiqpu.Fleet, a Device, a list of devices or specs, or one of "
        f"'ideal', 'default', 'local'; got {type(fleet).__name__}"
    )
