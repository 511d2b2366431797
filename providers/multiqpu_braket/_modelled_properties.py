"""Regenerate ``data/iqm_garnet_modelled.json``: a MODELLED (not measured) Braket
device-properties document shaped like IQM Garnet's.

No real Braket device-properties snapshot ships with amazon-braket-sdk or
amazon-braket-schemas, so the offline emulator uses this document instead. It follows the
real ``braket.device_schema.iqm.iqm_device_capabilities`` v1 schema (and validates against
it), with Garnet's public shape: 20 transmons labelled "1".."20" on a square lattice of 30
couplers, native gates ``prx`` and ``cz``. The per-qubit figures are drawn from a fixed seed
around the medians IQM and AWS publish for Garnet (1Q RB fidelity ~99.9 %, CZ fidelity
~99.3 %, readout fidelity ~97.5 %, T1 ~48 us, T2 echo ~25 us). They are plausible, not a
calibration of any real day.

Run ``python -m multiqpu_braket._modelled_properties`` to rewrite the file.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

SEED = 20250601
UPDATED_AT = "2025-06-01T00:00:00+00:00"
# Garnet's coupler graph (0-based here, labels are 1-based in the document).
EDGES = (
    (0, 1), (0, 3), (1, 4), (2, 3), (2, 7), (3, 4), (3, 8), (4, 5), (4, 9), (5, 6),
    (5, 10), (6, 11), (7, 8), (7, 12), (8, 9), (8, 13), (9, 10), (9, 14), (10, 11), (10, 15),
    (11, 16), (12, 13), (13, 14), (13, 17), (14, 15), (14, 18), (15, 16), (15, 19), (17, 18),
    (18, 19),
)  # fmt: skip
NUM_QUBITS = 20
MEDIAN_1Q_ERROR = 1.0e-3
MEDIAN_2Q_ERROR = 7.0e-3
MEDIAN_READOUT_ERROR = 2.5e-2
MEDIAN_T1_US = 48.0
MEDIAN_T2_US = 25.0

_SUPPORTED_OPERATIONS = [
    "ccnot", "cnot", "cphaseshift", "cphaseshift00", "cphaseshift01", "cphaseshift10",
    "cswap", "swap", "iswap", "pswap", "ecr", "cy", "cz", "xy", "xx", "yy", "zz", "h", "i",
    "phaseshift", "rx", "ry", "rz", "s", "si", "t", "ti", "v", "vi", "x", "y", "z", "prx",
]  # fmt: skip


def _lognormal(rng: random.Random, median: float, sigma: float, cap: float) -> float:
    return min(cap, median * math.exp(rng.gauss(0.0, sigma)))


def _device_parameters_schema() -> dict[str, Any]:
    """The JSON schema of IQM's device parameters, as real documents carry it (this dev
    script may import braket; the runtime never runs it)."""
    from braket.device_schema.iqm.iqm_device_parameters_v1 import IqmDeviceParameters

    return dict(json.loads(IqmDeviceParameters.schema_json()))


def build() -> dict[str, Any]:
    rng = random.Random(SEED)
    one_q: dict[str, Any] = {}
    for q in range(NUM_QUBITS):
        e1 = _lognormal(rng, MEDIAN_1Q_ERROR, 0.4, 0.01)
        ro = _lognormal(rng, MEDIAN_READOUT_ERROR, 0.4, 0.15)
        t1 = max(15.0, rng.gauss(MEDIAN_T1_US, 10.0))
        t2 = min(2 * t1, max(5.0, rng.gauss(MEDIAN_T2_US, 7.0)))
        one_q[str(q + 1)] = {
            "T1": {"value": round(t1, 2), "standardError": None, "unit": "us"},
            "T2": {"value": round(t2, 2), "standardError": None, "unit": "us"},
            "oneQubitFidelity": [
                {
                    "fidelityType": {"name": "RANDOMIZED_BENCHMARKING", "description": None},
                    "fidelity": round(1 - e1, 6),
                    "standardError": None,
                },
                {
                    "fidelityType": {
                        "name": "SIMULTANEOUS_RANDOMIZED_BENCHMARKING",
                        "description": None,
                    },
                    "fidelity": round(1 - 1.3 * e1, 6),
                    "standardError": None,
                },
                {
                    "fidelityType": {"name": "READOUT", "description": None},
                    "fidelity": round(1 - ro, 5),
                    "standardError": None,
                },
            ],
        }
    two_q: dict[str, Any] = {}
    for a, b in EDGES:
        e2 = _lognormal(rng, MEDIAN_2Q_ERROR, 0.5, 0.06)
        two_q[f"{a + 1}-{b + 1}"] = {
            "twoQubitGateFidelity": [
                {
                    "direction": None,
                    "gateName": "CZ",
                    "fidelity": round(1 - e2, 5),
                    "standardError": None,
                    "fidelityType": {"name": "CLIFFORD_RB", "description": None},
                }
            ]
        }
    graph: dict[str, list[str]] = {}
    for a, b in EDGES:  # listed both ways: CZ is symmetric
        graph.setdefault(str(a + 1), []).append(str(b + 1))
        graph.setdefault(str(b + 1), []).append(str(a + 1))
    return {
        "braketSchemaHeader": {
            "name": "braket.device_schema.iqm.iqm_device_capabilities",
            "version": "1",
        },
        "service": {
            "braketSchemaHeader": {
                "name": "braket.device_schema.device_service_properties",
                "version": "1",
            },
            "executionWindows": [
                {
                    "executionDay": "Everyday",
                    "windowStartHour": "00:00",
                    "windowEndHour": "23:59:59",
                }
            ],
            "shotsRange": [1, 20000],
            "deviceCost": {"price": 0.00145, "unit": "shot"},
            "deviceDocumentation": {
                "imageUrl": None,
                "summary": "MODELLED Garnet-like 20-qubit device (multiqpu offline emulator); "
                "figures are plausible, not a real calibration snapshot.",
                "externalDocumentationUrl": None,
            },
            "deviceLocation": "modelled",
            "updatedAt": UPDATED_AT,
            "getTaskPollIntervalMillis": None,
        },
        "action": {
            "braket.ir.openqasm.program": {
                "version": ["3.0"],
                "actionType": "braket.ir.openqasm.program",
                "supportedOperations": _SUPPORTED_OPERATIONS,
                "supportedModifiers": [],
                "supportedPragmas": ["verbatim"],
                "forbiddenPragmas": [],
                "maximumQubitArrays": 1,
                "maximumClassicalArrays": 1,
                "forbiddenArrayOperations": [
                    "concatenation",
                    "negativeIndex",
                    "range",
                    "rotation",
                    "slicing",
                ],
                "requiresAllQubitsMeasurement": False,
                "supportPhysicalQubits": True,
                "requiresContiguousQubitIndices": False,
                "supportsPartialVerbatimBox": False,
                "supportsUnassignedMeasurements": True,
                "disabledQubitRewiringSupported": False,
                "supportedResultTypes": [
                    {
                        "name": "Sample",
                        "observables": ["x", "y", "z", "h", "i"],
                        "minShots": 1,
                        "maxShots": 20000,
                    },
                    {
                        "name": "Expectation",
                        "observables": ["x", "y", "z", "h", "i"],
                        "minShots": 1,
                        "maxShots": 20000,
                    },
                    {
                        "name": "Variance",
                        "observables": ["x", "y", "z", "h", "i"],
                        "minShots": 1,
                        "maxShots": 20000,
                    },
                    {"name": "Probability", "minShots": 1, "maxShots": 20000},
                ],
            }
        },
        "paradigm": {
            "braketSchemaHeader": {
                "name": "braket.device_schema.gate_model_qpu_paradigm_properties",
                "version": "1",
            },
            "qubitCount": NUM_QUBITS,
            "nativeGateSet": ["cz", "prx"],
            "connectivity": {"fullyConnected": False, "connectivityGraph": graph},
        },
        "provider": None,
        "deviceParameters": _device_parameters_schema(),
        "standardized": {
            "braketSchemaHeader": {
                "name": "braket.device_schema.standardized_gate_model_qpu_device_properties",
                "version": "1",
            },
            "oneQubitProperties": one_q,
            "twoQubitProperties": two_q,
        },
    }


def main() -> None:
    path = Path(__file__).parent / "data" / "iqm_garnet_modelled.json"
    path.write_text(json.dumps(build(), indent=1) + "\n")
    print(path)


if __name__ == "__main__":
    main()
