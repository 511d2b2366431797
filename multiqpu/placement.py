"""Data placement rules: which devices may receive a piece of work.

A :class:`Placement` names the devices (glob patterns over device specs or names, e.g.
``"local:*"`` or ``"ibm:*"``) that may run the circuits it guards. ``fleet.sample``,
``fleet.run``, ``fleet.estimate`` and the QNN :class:`~multiqpu.qnn.Trainer` take
``placement=`` (a :class:`Placement` or the name of a ``[placement.NAME]`` table of the
config file); :class:`multiqpu.scheduler.JobRequest` takes one per circuit. The rule is
turned into the circuits' allowed device sets before anything is submitted, so hedges,
failover, work stealing, split shots and retries stay inside it; a run whose rules no
device of the fleet can satisfy is refused with a :class:`PlacementError` naming the rule.
See docs/trust.md.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multiqpu.errors import ConfigError, MultiQPUError

if TYPE_CHECKING:
    from multiqpu.device import Device
    from multiqpu.pool import DevicePool

__all__ = [
    "ALLOWED_KEY",
    "Placement",
    "PlacementError",
    "load_placements",
    "recorded_allowed",
    "resolve_placement",
    "restrict_pool",
]

#: journal run option holding each circuit's allowed device specs, so ``resume`` keeps them
ALLOWED_KEY = "allowed_devices"

_KEYS = ("allow",)


class PlacementError(MultiQPUError, ValueError):
    """A run's placement rules cannot be satisfied; nothing was submitted."""


@dataclass(frozen=True)
class Placement:
    """Devices allowed to receive the work: ``allow`` holds glob patterns matched against
    each device's spec (``provider:name``) and name; ``name`` labels the rule in errors."""

    allow: tuple[str, ...]
    name: str = ""

    def __init__(self, allow: Sequence[str] | str, name: str = "") -> None:
        patterns = (allow,) if isinstance(allow, str) else tuple(allow)
        if not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise ConfigError(
                f"a placement rule needs a non-empty list of device patterns, got {allow!r}",
                source="argument",
                key="allow",
            )
        object.__setattr__(self, "allow", patterns)
        object.__setattr__(self, "name", str(name))

    def __str__(self) -> str:
        rule = f"allow={list(self.allow)}"
        return f"placement '{self.name}' ({rule})" if self.name else f"placement rule {rule}"

    def allows(self, device: Device | str) -> bool:
        """Whether the device (or a spec) may receive the work."""
        names = (device,) if isinstance(device, str) else (device.spec, device.name)
        return any(fnmatch.fnmatchcase(n, p) for n in names for p in self.allow)

    def allowed_specs(self, devices: Iterable[Device]) -> frozenset[str]:
        return frozenset(d.spec for d in devices if self.allows(d))

    def restrict(self, pool: DevicePool, circuits: Iterable[Any] = ()) -> DevicePool:
        """The sub-pool this rule allows; :class:`PlacementError` when it is empty or when
        a circuit is wider than every allowed device (before anything is submitted)."""
        kept = pool.where(self.allows)
        if not len(kept):
            raise PlacementError(
                f"{self} allows no device of this fleet ({', '.join(d.spec for d in pool)}); "
                "nothing was submitted"
            )
        check_width(self, kept.devices, circuits)
        return kept


def check_width(
    rule: Placement, devices: Sequence[Device], circuits: Iterable[Any], first: int = 0
) -> None:
    """Refuse circuits no allowed device can hold (the scheduler would find no place);
    ``first``: the index of the first circuit, for the message."""
    widest = max((d.num_qubits for d in devices), default=0)
    for i, circuit in enumerate(circuits, start=first):
        if circuit.num_qubits > widest:
            raise PlacementError(
                f"{rule}: circuit {i} ({circuit.name}) needs {circuit.num_qubits} qubits and "
                f"the allowed devices ({', '.join(d.spec for d in devices)}) have at most "
                f"{widest}; nothing was submitted"
            )


def parse_placements(data: Mapping[str, Any], source: str) -> dict[str, Placement]:
    """The ``[placement.NAME]`` tables of a parsed config file, checked."""
    out: dict[str, Placement] = {}
    for name, table in data.items():
        key = f"placement.{name}"
        if not isinstance(table, dict):
            raise ConfigError("expected a table with allow = [...]", source=source, key=key)
        for k in table:
            if k not in _KEYS:
                raise ConfigError(
                    f"unknown key '{k}'; a placement table accepts allow", source=source, key=key
                )
        allow = table.get("allow")
        if isinstance(allow, str):
            allow = [allow]
        if (
            not isinstance(allow, list)
            or not allow
            or not all(isinstance(p, str) and p for p in allow)
        ):
            raise ConfigError(
                'expected allow = a non-empty list of device patterns, e.g. ["local:*"]',
                source=source,
                key=f"{key}.allow",
            )
        out[name] = Placement(allow, name=name)
    return out


def load_placements(path: str | os.PathLike[str] | None = None) -> dict[str, Placement]:
    """The named rules of the config file in effect (see :func:`multiqpu.config.config_path`)."""
    from multiqpu import _config_parse as _p
    from multiqpu.config import config_path

    found = config_path(path)
    if found is None:
        return {}
    data = _p.read_toml(found).get("placement", {})
    if not isinstance(data, dict):
        raise ConfigError("expected a table", source=str(found), key="placement")
    return parse_placements(data, str(found))


def resolve_placement(rule: Placement | str | None) -> Placement | None:
    """A :class:`Placement`, or the config file's ``[placement.NAME]`` for a name."""
    if rule is None or isinstance(rule, Placement):
        return rule
    if isinstance(rule, str):
        rules = load_placements()
        if rule not in rules:
            raise ConfigError(
                f"no [placement.{rule}] table in the config file; it has: "
                + (", ".join(sorted(rules)) or "none"),
                source="argument",
                key="placement",
            )
        return rules[rule]
    raise ConfigError(
        f"placement must be a multiqpu.Placement or a config rule's name, got {rule!r}",
        source="argument",
        key="placement",
    )


def restrict_pool(pool: DevicePool, rule: Placement | str | None) -> DevicePool:
    """The devices of ``pool`` a rule (or a config rule's name) allows; ``pool`` itself for
    None. :class:`PlacementError` when the rule allows none (nothing submitted yet)."""
    placement = resolve_placement(rule)
    return pool if placement is None else placement.restrict(pool)


def recorded_allowed(items: Sequence[Any]) -> dict[str, Any]:
    """The run options that record each item's allowed specs (none when no item is
    restricted), so that a resumed run keeps every placement rule."""
    if all(it.devices is None for it in items):
        return {}
    return {ALLOWED_KEY: [None if it.devices is None else sorted(it.devices) for it in items]}
