"""The workloads of tests/benchmarks/qnn.py: two tasks, the simulated fleet, and the models.

* **Classical task**: scikit-learn's breast-cancer data (569 tumours, 30 features, two
  classes), standardised and reduced to 8 features by PCA (fitted on the training part),
  scaled to angles in [0, pi]; 400 training and 169 test samples (stratified split,
  ``random_state=0``). Model: ``variational_classifier(8, 2, layers=LAYERS)``.
* **Quantum task**: ground states of the transverse-field Ising chain
  ``H = -sum Z_i Z_{i+1} - h sum X_i`` (8 sites, open ends) for ``h`` in [0.1, 2.0] (well
  inside either phase: ``|h - 1| >= 0.15``), labelled ferromagnetic (``h < 1``) or
  paramagnetic. Each state is *prepared by a circuit*: the Hamiltonian variational ansatz
  (``|+>^n``, then ``P`` layers of ``exp(-i gamma_l sum ZZ)`` and ``exp(-i beta_l sum X)``)
  whose ``2P`` angles minimise the energy for that ``h`` (classical optimisation on the
  statevector, done once). A data point is those angles; the model prepares the state from
  them and applies trainable layers (RY and RZ on every qubit, a CZ chain) before measuring
  two outputs (``Z_4`` and ``Z_3 Z_4``, a softmax over them). The preparations are the
  HVA's best within 4 layers (found by continuation from the paramagnetic side; in the
  ferromagnetic phase they reach 85-97 % of the exact ground energy). The phase is a
  property of the state: the classifier has to learn it from
  the prepared state, not from a classical feature.
* **Fleet** (per seed): devices drawn like the scheduler benchmark's reference fleet
  (``multiqpu.scheduler._fleets``): archetypes cycling through its mix (4 Heron r2, 2 Heron
  r1, 2 Eagle r3, IQM Garnet, Rigetti Ankaa-3), each with the archetype's per-job overhead
  (IBM 8 s, Braket 4 s) off by a lognormal factor (sigma 0.3) and its time per shot off by a
  lognormal speed factor (sigma 0.25). Queues: IBM devices run the training in a Session
  (jobs prioritised: lognormal wait per job, median 5 s, sigma 0.8); Braket devices queue
  every task, with a median wait drawn from the queue model's idle and moderate tiers
  (20 s or 240 s) off by a lognormal factor (sigma 0.3), sigma 0.8 per job (busier tiers are
  not where one trains). IBM devices take 3 jobs in flight, Braket ones 5. Device 0 is a
  Heron r2 at its archetype figures (the single-device reference); an ``N``-device fleet is
  the first ``N`` devices of the seed's 16.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "LAYERS",
    "breast_cancer",
    "fleet",
    "ising_model",
    "ising_phases",
]

LAYERS = 2
SITES = 8
HVA_LAYERS = 4
_ARCH = ("heron_r2", "heron_r2", "heron_r1", "eagle_r3", "garnet", "heron_r2", "heron_r1",
         "eagle_r3", "ankaa3", "heron_r2")  # fmt: skip


def breast_cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=400, random_state=0, stratify=y)
    scale = StandardScaler().fit(Xtr)
    pca = PCA(8, random_state=0).fit(scale.transform(Xtr))
    Ztr, Zte = pca.transform(scale.transform(Xtr)), pca.transform(scale.transform(Xte))
    lo, hi = Ztr.min(0), Ztr.max(0)
    Ztr = (Ztr - lo) / (hi - lo) * np.pi
    Zte = np.clip((Zte - lo) / (hi - lo), 0, 1) * np.pi
    return Ztr, ytr, Zte, yte


@functools.cache
def _zz(n: int) -> np.ndarray:
    idx = np.arange(2**n)
    bits = (idx[:, None] >> np.arange(n)[None, :]) & 1
    return np.sum((1 - 2 * bits[:, :-1]) * (1 - 2 * bits[:, 1:]), axis=1).astype(float)


def _hva_state(angles: np.ndarray, n: int) -> np.ndarray:
    p = len(angles) // 2
    zz = _zz(n)
    psi = np.full(2**n, 2 ** (-n / 2), dtype=complex)
    for layer in range(p):
        psi = psi * np.exp(1j * angles[layer] * zz)  # exp(-i gamma (-sum ZZ))
        c, s = math.cos(angles[p + layer]), math.sin(angles[p + layer])
        t = psi.reshape((2,) * n)
        for q in range(n):  # exp(+i beta X) on every qubit: exp(-i beta (-X))
            t = c * t + 1j * s * np.flip(t, axis=q)
        psi = t.reshape(-1)
    return psi


def _energy(angles: np.ndarray, h: float, n: int) -> float:
    psi = _hva_state(angles, n)
    t = psi.reshape((2,) * n)
    e_x = sum(float(np.real(np.vdot(t, np.flip(t, axis=q)))) for q in range(n))
    return -float(np.sum(np.abs(psi) ** 2 * _zz(n))) - h * e_x


@functools.cache
def ising_phases(points: int = 64, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(angles (points, 2P), labels (1: ferromagnetic), fields h): HVA ground-state
    preparations found by continuation: fields in decreasing order, each optimisation
    (BFGS on the energy) started from the previous field's angles."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    fields = np.sort(np.concatenate([rng.uniform(0.1, 0.85, points // 2),
                                     rng.uniform(1.15, 2.0, points // 2)]))[::-1]  # fmt: skip
    angles = []
    prev = np.full(2 * HVA_LAYERS, 0.1)
    for h in fields:
        prev = minimize(_energy, prev, args=(h, SITES), method="BFGS").x
        angles.append(prev)
    order = rng.permutation(points)
    return np.array(angles)[order], (fields < 1).astype(int)[order], fields[order]


def ising_model() -> object:
    """The QNN of the quantum task (see the module docstring)."""
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector

    from multiqpu.qnn import QNNModel

    n, p = SITES, HVA_LAYERS
    x = ParameterVector("x", 2 * p)
    w = ParameterVector("w", 2 * n * LAYERS)
    qc = QuantumCircuit(n)
    qc.h(range(n))
    for layer in range(p):
        for q in range(n - 1):
            qc.rzz(-2 * x[layer], q, q + 1)
        for q in range(n):
            qc.rx(-2 * x[p + layer], q)
    k = 0
    for _ in range(LAYERS):
        for q in range(n):
            qc.ry(w[k], q)
            qc.rz(w[k + 1], q)
            k += 2
        for q in range(n - 1):
            qc.cz(q, q + 1)
    # two outputs, a softmax over them: class 0 (paramagnetic) reads a single-qubit
    # observable (a rotated X: the transverse magnetisation), class 1 (ferromagnetic) a
    # nearest-neighbour ZZ correlation; the trainable layers choose the bases
    mid = n // 2
    single = "I" * (n - 1 - mid) + "Z" + "I" * mid
    pair = "I" * (n - 2 - (mid - 1)) + "ZZ" + "I" * (mid - 1)
    return QNNModel(qc, list(x), list(w), [single, pair])


def fleet(n: int, seed: int) -> list[object]:
    """The first ``n`` devices of seed ``seed``'s 16-device fleet (see the module docstring)."""
    from multiqpu.qnn import VirtualDevice
    from multiqpu.scheduler._fleets import ARCHETYPES, TIERS

    rng = np.random.default_rng(5000 + seed)
    out = []
    for i in range(16):
        kind = _ARCH[i % len(_ARCH)]
        base = ARCHETYPES[kind]
        ibm = base.topology == "heavy_hex"
        speed = 1.0 if i == 0 else float(np.exp(rng.normal(0.0, 0.25)))
        over = 1.0 if i == 0 else float(np.exp(rng.normal(0.0, 0.3)))
        if ibm:
            wait = 5.0
        else:
            tier = ("idle", "moderate")[int(rng.integers(2))]
            wait = TIERS[tier][0] * float(np.exp(rng.normal(0.0, 0.3)))
        out.append(
            VirtualDevice(
                f"{kind}_{i}",
                queue_median_s=wait,
                queue_sigma=0.8,
                overhead_s=base.overhead_s * over,
                shot_s=base.shot_s / speed,
                concurrency=3 if ibm else 5,
            )
        )
    return out[:n]
