"""Where ``local:noisy`` gets its noise: a :class:`~multiqpu.Calibration`, a JSON file written
by ``Calibration.to_dict``, another device (or its spec, e.g. ``"ibm:fake_manila"``) whose
calibration and connectivity it takes, or uniform figures.

The result is a :class:`Profile`: the calibration plus the :class:`~multiqpu.DeviceTarget`
(native gates, coupling map) the emulated device would have.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multiqpu.provider_api import Calibration, ConfigError, Device, DeviceTarget

__all__ = ["DEFAULT_NOISE", "Profile", "profile_from_option", "uniform_profile"]

#: Uniform figures used by ``local:noisy`` when given neither a calibration nor shortcuts
#: (typical of a good superconducting chip).
DEFAULT_NOISE = {"readout_error": 0.01, "gate_error_1q": 0.0005, "gate_error_2q": 0.01}

_NATIVE_FALLBACK_1Q = ("sx", "x")
_NATIVE_FALLBACK_2Q = "cx"
# Qiskit standard gates a native basis may list, by width (no qiskit import needed here).
_1Q = "h id p r rx ry rz s sdg sx sxdg t tdg u u1 u2 u3 x y z"
_2Q = "cp crx cry crz cx cy cz dcx ecr iswap rxx ryy rzx rzz swap xx_minus_yy xx_plus_yy"
_GATE_WIDTH = {**dict.fromkeys(_1Q.split(" "), 1), **dict.fromkeys(_2Q.split(" "), 2)}


@dataclass(frozen=True, eq=False)
class Profile:
    """A calibration, the target it belongs to, and a label saying where it came from."""

    calibration: Calibration
    target: DeviceTarget
    source: str

    def restricted(self, num_qubits: int) -> Profile:
        """The profile of physical qubits ``0..num_qubits-1``."""
        if num_qubits == self.target.num_qubits:
            return self
        if num_qubits > self.target.num_qubits:
            raise ConfigError(
                f"num_qubits={num_qubits} exceeds the {self.target.num_qubits} qubits of the "
                f"calibration profile ({self.source})",
                key="num_qubits",
            )
        cmap = self.target.coupling_map
        if cmap is not None:
            cmap = tuple((a, b) for a, b in cmap if a < num_qubits and b < num_qubits)
        return Profile(
            self.calibration.subset(range(num_qubits)),
            DeviceTarget(num_qubits, self.target.basis_gates, cmap),
            f"{self.source} (qubits 0-{num_qubits - 1})",
        )


def uniform_profile(
    num_qubits: int, readout_error: float, gate_error_1q: float, gate_error_2q: float
) -> Profile:
    """All-to-all, the same errors everywhere, native gates rz/sx/x/cx."""
    cal = Calibration.uniform(
        num_qubits,
        readout_error=readout_error,
        gate_error_1q=gate_error_1q,
        gate_error_2q=gate_error_2q,
        source="uniform",
    )
    target = DeviceTarget(num_qubits, ("cx", "rz", "sx", "x"), None)
    label = f"uniform (readout {readout_error}, 1q {gate_error_1q}, 2q {gate_error_2q})"
    return Profile(cal, target, label)


def profile_from_option(value: Any) -> Profile:
    """Interpret the ``calibration`` option (see the module docstring)."""
    if isinstance(value, Calibration):
        return Profile(value, _target_from_calibration(value), f"calibration ({value.source})")
    if isinstance(value, Device):
        return _from_device(value, value.spec)
    if isinstance(value, os.PathLike) or (isinstance(value, str) and _looks_like_path(value)):
        return _from_file(Path(value).expanduser())
    if isinstance(value, str):
        return _from_spec(value)
    raise ConfigError(
        "expected a multiqpu.Calibration, a path to a calibration JSON file, or a device spec "
        f"such as 'ibm:fake_manila'; got {type(value).__name__}",
        key="calibration",
    )


def _looks_like_path(text: str) -> bool:
    return text.endswith(".json") or os.sep in text or text.startswith("~") or Path(text).exists()


def _from_file(path: Path) -> Profile:
    try:
        data = json.loads(path.read_text())
        cal = Calibration.from_dict(data)
    except FileNotFoundError:
        raise ConfigError(
            f"calibration file {str(path)!r} does not exist", key="calibration"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"cannot read a calibration profile from {str(path)!r} (expected the JSON written "
            f"by Calibration.to_dict): {exc}",
            key="calibration",
        ) from exc
    return Profile(cal, _target_from_calibration(cal), f"file {path}")


def _from_spec(spec: str) -> Profile:
    from multiqpu.provider_api import device

    try:
        emulated = device(spec)
    except Exception as exc:
        raise ConfigError(f"cannot emulate {spec!r}: {exc}", key="calibration") from exc
    return _from_device(emulated, spec)


def _from_device(emulated: Device, label: str) -> Profile:
    try:
        cal = emulated.calibration()
        target = emulated.target
    except Exception as exc:
        raise ConfigError(
            f"cannot read the calibration of {label!r}: {exc}", key="calibration"
        ) from exc
    return Profile(cal, target, label)


def _target_from_calibration(cal: Calibration) -> DeviceTarget:
    """Native gates from the gate names the profile has figures for; connectivity from its
    two-qubit entries (all-to-all when it has none, or all of them)."""
    names = {n for n in (*cal.gate_errors, *cal.gate_durations) if n in _GATE_WIDTH}
    if not any(_GATE_WIDTH[n] == 1 and n != "rz" for n in names):
        names.update(_NATIVE_FALLBACK_1Q)
    names.add("rz")  # virtual on every platform; keeps the basis universal
    if cal.num_qubits > 1 and not any(_GATE_WIDTH[n] == 2 for n in names):
        names.add(_NATIVE_FALLBACK_2Q)
    edges = set(cal.gate_error_2q)
    for table in cal.gate_errors.values():
        edges.update((k[0], k[1]) for k in table if len(k) == 2)
    undirected = {frozenset(e) for e in edges if e[0] != e[1]}
    n = cal.num_qubits
    if not undirected or len(undirected) == n * (n - 1) // 2:
        cmap = None
    else:
        cmap = tuple(sorted(e for e in edges if e[0] != e[1] and max(e) < n))
    return DeviceTarget(n, tuple(sorted(names)), cmap)
