"""Batched statevector simulation of a :class:`~multiqpu.qnn.model.Work` (numpy only).

All circuits of a Work share a few templates and differ only in their gate angles, so each
template is simulated once for all of its rows: the state is an array ``(rows, 2, ..., 2)``
and every gate is one ``einsum`` with a ``(rows, d, d)`` (or shared ``(d, d)``) matrix. This
is what the virtual-clock devices of the QNN benchmark and the exact references of the tests
run; thousands of small circuits take milliseconds, where one Qiskit ``Statevector`` takes
a few.

Conventions follow Qiskit: a gate's matrix indexes basis states with its first qubit least
significant; results are probabilities over the measured classical bits, keyed by
bitstrings with classical bit 0 rightmost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from multiqpu.errors import InvalidInputError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CircuitResult
    from multiqpu.primitives._pauli import Basis, Term
    from multiqpu.qnn.model import Work

__all__ = ["SampledRows", "exact_probabilities", "probabilities_array"]

_I2 = np.eye(2, dtype=complex)
_PAULI = {
    "x": np.array([[0, 1], [1, 0]], dtype=complex),
    "y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def _rotation(pauli: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    eye = np.eye(len(pauli), dtype=complex)

    def build(theta: np.ndarray) -> np.ndarray:
        t = theta[:, None, None] / 2
        return np.cos(t) * eye - 1j * np.sin(t) * pauli

    return build


def _kron(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-qubit operator with ``b`` on the gate's first qubit (least significant)."""
    return np.kron(a, b)


def _phase(theta: np.ndarray, dim: int) -> np.ndarray:
    out = np.zeros((len(theta), dim, dim), dtype=complex)
    for i in range(dim - 1):
        out[:, i, i] = 1
    out[:, dim - 1, dim - 1] = np.exp(1j * theta)
    return out


def _controlled(single: np.ndarray) -> np.ndarray:
    """(n, 4, 4) for control = first qubit (index bit 0), target = second (bit 1)."""
    n = len(single)
    out = np.zeros((n, 4, 4), dtype=complex)
    out[:, 0, 0] = out[:, 2, 2] = 1  # control 0: identity on the target
    for t in range(2):
        for u in range(2):
            out[:, 1 + 2 * t, 1 + 2 * u] = single[:, t, u]
    return out


def _u(theta: np.ndarray, phi: np.ndarray, lam: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    out = np.empty((len(theta), 2, 2), dtype=complex)
    out[:, 0, 0] = c
    out[:, 0, 1] = -np.exp(1j * lam) * s
    out[:, 1, 0] = np.exp(1j * phi) * s
    out[:, 1, 1] = np.exp(1j * (phi + lam)) * c
    return out


_ONE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "rx": _rotation(_PAULI["x"]),
    "ry": _rotation(_PAULI["y"]),
    "rz": _rotation(_PAULI["z"]),
    "p": lambda t: _phase(t, 2),
    "u1": lambda t: _phase(t, 2),
    "rxx": _rotation(_kron(_PAULI["x"], _PAULI["x"])),
    "ryy": _rotation(_kron(_PAULI["y"], _PAULI["y"])),
    "rzz": _rotation(_kron(_PAULI["z"], _PAULI["z"])),
    "rzx": _rotation(_kron(_PAULI["x"], _PAULI["z"])),  # Z on the first qubit, X on the second
    "cp": lambda t: _phase(t, 4),
    "crx": lambda t: _controlled(_rotation(_PAULI["x"])(t)),
    "cry": lambda t: _controlled(_rotation(_PAULI["y"])(t)),
    "crz": lambda t: _controlled(_rotation(_PAULI["z"])(t)),
}


def _apply(state: np.ndarray, matrix: np.ndarray, qubits: list[int], nq: int) -> np.ndarray:
    """Apply ``matrix`` ((d, d) or (rows, d, d)) to ``qubits`` of ``state`` (rows, 2, ..., 2),
    where axis ``1 + nq - 1 - q`` holds qubit ``q`` (qubit 0 last, Qiskit's order).
    One-qubit gates and diagonal gates are applied as elementwise products (no matrix
    product): the bulk of a layered QNN's gates, and several times faster."""
    k = len(qubits)
    rows = state.shape[0]
    m = matrix if matrix.ndim == 3 else matrix[None]
    if k == 1:
        ax = 1 + nq - 1 - qubits[0]
        view = state.reshape(rows, 2 ** (ax - 1), 2, 2 ** (nq - ax))
        a, b = view[:, :, 0, :], view[:, :, 1, :]

        def c(i: int, j: int) -> np.ndarray:
            return m[:, i, j][:, None, None]

        if not (np.any(m[:, 0, 1]) or np.any(m[:, 1, 0])):
            out = np.stack([c(0, 0) * a, c(1, 1) * b], axis=2)
        else:
            out = np.stack([c(0, 0) * a + c(0, 1) * b, c(1, 0) * a + c(1, 1) * b], axis=2)
        return out.reshape(state.shape)
    axes = [1 + nq - 1 - q for q in reversed(qubits)]  # first gate qubit least significant
    moved = np.moveaxis(state, axes, list(range(nq + 1 - k, nq + 1)))
    shape = moved.shape
    flat = moved.reshape(shape[0], -1, 2**k)
    off = m - m * np.eye(2**k)[None]
    if not np.any(off):
        diag = np.diagonal(m, axis1=1, axis2=2)  # (1 or rows, d)
        flat = flat * diag[:, None, :]
    else:
        flat = np.matmul(flat, np.transpose(m, (0, 2, 1)))
    return np.moveaxis(flat.reshape(shape), list(range(nq + 1 - k, nq + 1)), axes)


def _simulate(
    circuit: QuantumCircuit, values: np.ndarray, dtype: type = np.complex128
) -> np.ndarray:
    """Probabilities (rows, 2**m) over the measured clbits for each row of slot values.

    Rows that agree on every angle so far share one state (``group``): all rows start as
    one state, and a gate whose angle differs between the rows of a group splits it. The
    parameter-shift circuits of a sample agree up to their shifted gate, and a batch's
    weights are the same for every sample, so about half the gate applications of a
    gradient batch are saved."""
    from qiskit.circuit import ParameterExpression

    nq = circuit.num_qubits
    rows = len(values)
    position = {p: k for k, p in enumerate(circuit.parameters)}
    group = np.zeros(rows, dtype=np.int64)  # row -> its state
    state = np.zeros((1, 2**nq), dtype=dtype)
    state[:, 0] = 1
    state = state.reshape((1,) + (2,) * nq)
    measured: dict[int, int] = {}  # clbit -> qubit
    slot_rows = np.zeros(1, dtype=np.int64)  # a row of each group
    for inst in circuit.data:
        op = inst.operation
        qubits = [circuit.find_bit(q).index for q in inst.qubits]
        name = op.name
        if name == "measure":
            measured[circuit.find_bit(inst.clbits[0]).index] = qubits[0]
            continue
        if name in ("barrier", "id", "delay"):
            continue
        if any(q in measured.values() for q in qubits):
            raise InvalidInputError("gates after a measurement are not simulated here")
        columns = [
            position[next(iter(p.parameters))]
            for p in op.params
            if isinstance(p, ParameterExpression) and p.parameters
        ]
        if columns:  # split the groups by this gate's angles
            cols = values[:, columns]
            order = np.lexsort((*cols.T[::-1], group))
            g, c = group[order], cols[order]
            new = np.ones(rows, dtype=bool)
            new[1:] = (g[1:] != g[:-1]) | np.any(c[1:] != c[:-1], axis=1)
            first = order[new]
            group = np.empty(rows, dtype=np.int64)
            group[order] = np.cumsum(new) - 1
            state = state[g[new]]
            slot_rows = first
        width = len(state)
        params: list[np.ndarray] = []
        for p in op.params:
            if isinstance(p, ParameterExpression) and p.parameters:
                (param,) = p.parameters
                params.append(values[slot_rows, position[param]])
            else:
                params.append(np.full(width, float(p)))
        if params and name in _ONE:
            matrix = _ONE[name](params[0])
        elif params and name in ("u", "u3"):
            matrix = _u(*params)
        elif not params or all(np.all(v == v[0]) for v in params):
            bound = op if not params else op.copy()
            if params:
                bound.params = [float(v[0]) for v in params]
            matrix = np.asarray(bound.to_matrix(), dtype=complex)
        else:
            raise InvalidInputError(f"gate '{name}' with varying angles is not simulated here")
        state = _apply(state, matrix.astype(dtype, copy=False), qubits, nq)
    probs = (np.abs(state) ** 2).reshape(len(state), 2**nq)[group]
    m = circuit.num_clbits
    index = np.arange(2**nq)
    out_index: np.ndarray = np.zeros(2**nq, dtype=np.int64)
    for bit, q in measured.items():
        out_index = out_index | (((index >> q) & 1) << bit)
    if m == nq and len(np.unique(out_index)) == 2**nq:  # every qubit measured: a permutation
        full = np.empty((rows, 2**m))
        full[:, out_index] = probs
        return full
    onehot = np.zeros((2**nq, 2**m))
    onehot[index, out_index] = 1.0
    return probs @ onehot


def probabilities_array(work: Work, *, single: bool = False) -> np.ndarray:
    """(len(work), 2**clbits) exact outcome probabilities of every circuit of ``work``
    (``single``: in single precision, about 1e-7 off and twice as fast; what simulated
    devices whose results carry shot noise use)."""
    width = max(t.num_clbits for t in work.templates)
    out = np.zeros((len(work), 2**width))
    for t, tpl in enumerate(work.templates):
        rows = np.flatnonzero(work.template == t)
        if len(rows):
            probs = _simulate(tpl, work.values[rows][:, : tpl.num_parameters],
                              np.complex64 if single else np.complex128)  # fmt: skip
            out[rows, : probs.shape[1]] = probs
    return out


def exact_probabilities(work: Work) -> list[dict[str, float]]:
    """Per circuit, ``{bitstring: probability}`` (clbit 0 rightmost), zeros dropped."""
    width = max(t.num_clbits for t in work.templates)
    probs = probabilities_array(work)
    keys = [format(i, f"0{width}b") for i in range(2**width)]
    return [{keys[i]: float(p) for i, p in enumerate(row) if p > 1e-15} for row in probs]


class SampledRows(Sequence["CircuitResult"]):
    """The results of a batch of circuits, kept as exact outcome probabilities plus the shot
    count: what a device that ran ``shots`` shots of each circuit would report, without
    drawing 2**width counts per circuit.

    :meth:`expectations` (what :meth:`multiqpu.qnn.QNNModel.outputs` uses) draws the shot
    noise of the requested sums of Pauli terms directly: for a single term (a +-c valued
    outcome) the estimate is ``c (2 k / shots - 1)`` with ``k ~ Binomial(shots, (1 + e/c)/2)``,
    exactly the distribution of the mean of ``shots`` shots; for several terms measured in
    one basis it is the exact mean plus normal noise of the exact variance over ``shots``
    (the central-limit law of the shot mean). Indexing a row returns a
    :class:`~multiqpu.device.CircuitResult` with multinomial counts (or exact probabilities
    when ``shots`` is None), drawn when asked for.
    """

    def __init__(
        self, probs: np.ndarray, width: int, shots: int | None, rng: np.random.Generator
    ) -> None:
        self.probs = probs
        self.width = width
        self.shots = shots
        self._rng = rng

    def __len__(self) -> int:
        return len(self.probs)

    def __getitem__(self, i: int) -> CircuitResult:  # type: ignore[override]
        from multiqpu.device import CircuitResult

        row = self.probs[i]
        keys = [format(k, f"0{self.width}b") for k in range(len(row))]
        if self.shots is None:
            return CircuitResult(counts={}, shots=None,
                                 probabilities={keys[k]: float(p) for k, p in enumerate(row)
                                                if p > 0})  # fmt: skip
        clean = np.clip(row, 0, None)
        counts = self._rng.multinomial(self.shots, clean / clean.sum())
        return CircuitResult(counts={keys[k]: int(c) for k, c in enumerate(counts) if c},
                             shots=self.shots)  # fmt: skip

    def rows(self, start: int, stop: int) -> SampledRows:
        """Rows ``start:stop`` (the results of part of a job), drawing from the same
        generator."""
        return SampledRows(self.probs[start:stop], self.width, self.shots, self._rng)

    def expectations(
        self, rows: np.ndarray, basis: Basis, terms: Sequence[Term]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Estimates of ``sum(terms)`` (all measured by ``basis``) on ``rows``, and their
        variances (zero when exact)."""
        from multiqpu.primitives._pauli import term_masks

        if not terms:
            return np.zeros(len(rows)), np.zeros(len(rows))
        masks = term_masks(basis, terms)
        coeffs = np.array([t.coeff for t in terms], dtype=float)
        outcomes = np.arange(self.probs.shape[1], dtype=np.int64)
        parity = np.bitwise_count(outcomes[:, None] & masks[None, :]) & 1
        values = (1.0 - 2.0 * parity) @ coeffs  # (outcomes,)
        p = self.probs[rows]
        mean = p @ values
        if self.shots is None:
            return mean, np.zeros(len(rows))
        s = self.shots
        if len(terms) == 1:
            c = abs(float(coeffs[0])) or 1.0
            q = np.clip((1 + mean / c) / 2, 0.0, 1.0)
            est = c * (2 * self._rng.binomial(s, q) / s - 1)
            return est, np.maximum(c * c - est * est, 0.0) / max(s - 1, 1)
        spread = np.maximum(p @ (values * values) - mean * mean, 0.0)
        est = mean + np.sqrt(spread / s) * self._rng.standard_normal(len(rows))
        return est, spread / s
