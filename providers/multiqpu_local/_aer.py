"""Thin, blocking helpers around Aer (imported lazily: only running a circuit loads Aer)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from multiqpu.provider_api import ProviderError

if TYPE_CHECKING:
    import numpy as np
    from qiskit import QuantumCircuit
    from qiskit_aer import AerSimulator

__all__ = ["aer_compatible", "ideal_simulator", "probabilities", "sample"]

# Instructions multiqpu's circuits may hold that are not in Aer's basis list but that Aer runs.
_ALWAYS_OK = frozenset({"measure", "barrier", "reset", "delay"})


@cache
def ideal_simulator(method: str = "automatic") -> AerSimulator:
    from qiskit_aer import AerSimulator

    return AerSimulator(method=method)


@cache
def _aer_instructions() -> frozenset[str]:
    return frozenset(ideal_simulator().configuration().basis_gates) | _ALWAYS_OK


def aer_compatible(circuit: QuantumCircuit) -> QuantumCircuit:
    """The circuit itself if Aer runs all its instructions, else unrolled to Aer's gates
    (library gates such as ``QFTGate`` or ``StatePreparation`` have no Aer instruction)."""
    ops = set(circuit.count_ops())
    if ops <= _aer_instructions():
        return circuit
    from qiskit import transpile
    from qiskit.circuit.library import get_standard_gate_name_mapping

    standard = get_standard_gate_name_mapping()
    basis = sorted(n for n in _aer_instructions() if n in standard and n != "delay")
    return transpile(circuit, basis_gates=basis, optimization_level=0)


def _result(sim: AerSimulator, circuit: QuantumCircuit, **options: Any) -> Any:
    from qiskit_aer import AerError

    try:
        result = sim.run(aer_compatible(circuit), **options).result()
    except AerError as exc:
        raise ProviderError(
            "Aer could not run the circuit", provider="local", vendor_message=str(exc)
        ) from exc
    if not result.success:
        raise ProviderError(
            "Aer could not run the circuit", provider="local", vendor_message=str(result.status)
        )
    return result


def sample(sim: AerSimulator, circuit: QuantumCircuit, shots: int, seed: int) -> dict[str, int]:
    """Counts keyed by bitstrings over all classical bits, clbit 0 rightmost.

    Aer's own ``get_counts`` formats keys from the registers only (a loose classical bit is
    dropped from the key), so we decode its per-memory-slot hex keys ourselves."""
    width = circuit.num_clbits
    if width == 0:
        return {}
    result = _result(sim, circuit, shots=shots, seed_simulator=seed)
    raw = result.data(0).get("counts", {})
    return {format(int(key, 16), f"0{width}b"): int(value) for key, value in raw.items()}


def probabilities(circuit: QuantumCircuit, qubits: Sequence[int]) -> np.ndarray:
    """Exact probabilities of ``qubits`` (``qubits[0]`` is bit 0 of the index) at the end of a
    measurement-free circuit, by statevector simulation in double precision."""
    from qiskit_aer.library import SaveProbabilities

    circ = aer_compatible(circuit).copy()
    circ.append(SaveProbabilities(len(qubits), label="p"), list(qubits))
    result = _result(ideal_simulator("statevector"), circ, shots=None)
    import numpy as np

    return np.asarray(result.data(0)["p"], dtype=float)
