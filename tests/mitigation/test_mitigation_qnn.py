"""Mitigation of data shards: the trainer corrects each shard on the device that ran it.

A device whose only noise is readout error biases every <Z> towards zero; with
``mitigation=[Readout()]`` the shard's outputs and parameter-shift gradients come back within
4 standard errors of the exact values, while the plain ones are off by many."""

from __future__ import annotations

import numpy as np
import pytest

import multiqpu
from multiqpu.errors import InvalidInputError
from multiqpu.qnn import Trainer, VirtualDevice, VirtualExecutor, variational_classifier

X = np.array([[0.3, 1.2], [2.0, 0.4], [1.1, 2.6]])
SHOTS = 8000


def _fleet() -> multiqpu.Fleet:
    noisy = multiqpu.device(
        "local:noisy",
        num_qubits=2,
        readout_error=0.1,
        gate_error_1q=0.0,
        gate_error_2q=0.0,
        seed=11,
        label="readout_only",
    )
    return multiqpu.Fleet([noisy])


async def _shard(trainer: Trainer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    model, w = trainer.model, trainer.weights
    trainer.executor.start(0, model.work(X, w, gradients=True), trainer.shots, "shard")
    done = await trainer.executor.next()
    out = model.outputs(X, w, done.results, gradients=True)
    assert out.jac is not None and out.jac_var is not None
    return out.f, np.sqrt(out.f_var), out.jac, np.sqrt(out.jac_var)


async def test_mitigated_shards_are_unbiased_and_plain_ones_are_not() -> None:
    model = variational_classifier(2, 2, layers=2)
    fleet = _fleet()
    plain = Trainer(model, fleet, shots=SHOTS, progress=False, seed=3)
    mitigated = Trainer(
        model, fleet, shots=SHOTS, progress=False, seed=3, mitigation=[multiqpu.Readout()]
    )
    assert np.array_equal(plain.weights, mitigated.weights)
    exact_f = model.exact_outputs(X, plain.weights)
    exact_j = model.exact_jacobian(X, plain.weights)

    f0, _, _, _ = await _shard(plain)
    f1, se_f, j1, se_j = await _shard(mitigated)

    assert np.all(se_f > 0) and np.all(se_j > 0)
    # mitigated: within 4 standard errors of the exact values, outputs and gradients
    assert np.all(np.abs(f1 - exact_f) < 4 * se_f), (f1, exact_f, se_f)
    assert np.all(np.abs(j1 - exact_j) < 4 * se_j + 1e-9)
    # plain: readout error 0.1 shrinks <Z> by (1 - 2 * 0.1) = 0.8
    big = np.abs(exact_f) > 0.2
    assert np.any(big)
    assert np.mean(np.abs(f0 - exact_f)[big]) > 3 * np.mean(np.abs(f1 - exact_f)[big])
    np.testing.assert_allclose(f0[big], 0.8 * exact_f[big], atol=0.05)


async def test_mitigated_training_runs_and_reports_every_sample() -> None:
    model = variational_classifier(2, 2, layers=1)
    y = np.array([0, 1, 0])
    trainer = Trainer(
        model, _fleet(), shots=2000, batch_size=3, progress=False,
        mitigation=[multiqpu.Readout()],
    )  # fmt: skip
    history = await trainer.afit(X, y, epochs=1)
    assert sum(history.epochs[0].samples) == len(X)
    assert np.isfinite(history.epochs[0].loss)


def test_mitigation_refusals() -> None:
    model = variational_classifier(2, 2, layers=1)
    with pytest.raises(InvalidInputError, match="exact values"):
        Trainer(model, _fleet(), shots=None, mitigation=[multiqpu.Readout()])
    with pytest.raises(InvalidInputError, match="executor"):
        Trainer(
            model,
            executor=VirtualExecutor([VirtualDevice("v0")]),
            shots=100,
            mitigation=[multiqpu.Readout()],
        )
    with pytest.raises(InvalidInputError, match="not linear"):
        Trainer(
            model, _fleet(), shots=100,
            mitigation=[multiqpu.ZNE(scales=(1, 3), extrapolator="exponential")],
        )  # fmt: skip
