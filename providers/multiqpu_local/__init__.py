"""multiqpu provider ``local``: Aer simulators that need no account and no network.

- ``local:ideal``: noiseless, any size (``num_qubits``, default 24), all-to-all; exact
  probabilities with ``shots=None``.
- ``local:noisy``: the noise of any calibration profile (a :class:`multiqpu.Calibration`, a
  JSON file, or another device's spec such as ``"ibm:fake_manila"``, whose connectivity and
  native gates it takes too), or uniform error rates.

Importing this package loads neither Aer nor Qiskit; running a circuit does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from multiqpu.provider_api import ConfigError, Device, Provider
from multiqpu_local._base import LOCAL_LIMITS, LocalSimulator
from multiqpu_local._ideal import IdealSimulator
from multiqpu_local._noisy import NoisySimulator
from multiqpu_local._options import (
    check_known,
    int_option,
    limits_option,
    probability_option,
    seed_option,
)
from multiqpu_local._profile import DEFAULT_NOISE, Profile, profile_from_option, uniform_profile

__all__ = ["IdealSimulator", "LocalProvider", "LocalSimulator", "NoisySimulator", "provider"]

_COMMON = ("limits", "seed")
_IDEAL_OPTIONS = (*_COMMON, "num_qubits")
_UNIFORM = tuple(DEFAULT_NOISE)
_NOISY_OPTIONS = (*_COMMON, "num_qubits", "calibration", *_UNIFORM)
DEFAULT_NUM_QUBITS = 24


class LocalProvider(Provider):
    """The ``local`` provider (registered under the ``multiqpu.providers`` entry point)."""

    name = "local"
    extra = "local"
    requires: Sequence[str] = ("qiskit_aer",)
    env_options: Mapping[str, str] = {}
    secret_options: Sequence[str] = ()

    def default_devices(self) -> Sequence[str]:
        return ["ideal"]

    def known_devices(self) -> Sequence[str]:
        return ["ideal", "noisy"]

    def device_options(self, name: str) -> frozenset[str] | None:
        """Options ``device(name, ...)`` accepts (None for an unknown name)."""
        return {"ideal": frozenset(_IDEAL_OPTIONS), "noisy": frozenset(_NOISY_OPTIONS)}.get(name)

    def device(self, name: str, **options: Any) -> Device:
        if name == "ideal":
            check_known("local:ideal", options, _IDEAL_OPTIONS)
            return IdealSimulator(
                int_option("num_qubits", options.get("num_qubits", DEFAULT_NUM_QUBITS)),
                seed=seed_option(options.get("seed")),
                limits=limits_option(options.get("limits"), LOCAL_LIMITS),
            )
        if name == "noisy":
            check_known("local:noisy", options, _NOISY_OPTIONS)
            return NoisySimulator(
                _noisy_profile(options),
                seed=seed_option(options.get("seed")),
                limits=limits_option(options.get("limits"), LOCAL_LIMITS),
            )
        raise ConfigError(
            f"unknown local device {name!r}; the local provider has: "
            f"{', '.join(self.known_devices())} (e.g. 'local:ideal')"
        )


def _noisy_profile(options: Mapping[str, Any]) -> Profile:
    num_qubits = options.get("num_qubits")
    if num_qubits is not None:
        num_qubits = int_option("num_qubits", num_qubits)
    shortcuts = {k: probability_option(k, options[k]) for k in _UNIFORM if k in options}
    if options.get("calibration") is not None:
        if shortcuts:
            raise ConfigError(
                f"give either a calibration or the uniform noise options "
                f"({', '.join(shortcuts)}), not both",
                key=next(iter(shortcuts)),
            )
        profile = profile_from_option(options["calibration"])
        return profile.restricted(num_qubits) if num_qubits is not None else profile
    noise = {**DEFAULT_NOISE, **shortcuts}
    return uniform_profile(
        num_qubits or DEFAULT_NUM_QUBITS,
        noise["readout_error"],
        noise["gate_error_1q"],
        noise["gate_error_2q"],
    )


#: The object the ``multiqpu.providers`` entry point ``local`` names.
provider = LocalProvider()
