"""Model parallelism: a QNN wider than every device trains through cutting (the forward pass
and parameter-shift gradients of a cut model come from the estimate pipeline)."""

from __future__ import annotations

import asyncio

import numpy as np

import multiqpu
from multiqpu.pool import DevicePool
from multiqpu.qnn import CutExecutor, Trainer, variational_classifier


def test_a_model_wider_than_every_device_is_trained_through_cutting() -> None:
    model = variational_classifier(2, 2, layers=1)  # 2 qubits, one CZ between them
    pool = DevicePool([multiqpu.device("local:ideal", num_qubits=1, seed=i, label=f"one{i}")
                       for i in range(2)])  # fmt: skip
    trainer = Trainer(model, pool, shots=4000, batch_size=1, aggregation="sync",
                      progress=False, cut_options={"use_scheduler": False})  # fmt: skip
    assert isinstance(trainer.executor, CutExecutor)
    X = np.array([[0.4, 2.1]])
    w = trainer.weights.copy()

    async def shard() -> object:
        trainer.executor.start(0, model.work(X, w, gradients=True), 4000, None)
        return await trainer.executor.next()

    done = asyncio.run(shard())
    out = model.outputs(X, w, done.results, gradients=True)  # type: ignore[attr-defined]
    assert out.jac is not None and out.jac_var is not None
    # forward and gradient of the cut model within 5 standard errors of the exact values
    f_exact = model.exact_outputs(X, w)
    assert np.all(np.abs(out.f - f_exact) <= 5 * np.sqrt(out.f_var) + 1e-9)
    jac_exact = model.exact_jacobian(X, w)
    assert np.all(np.abs(out.jac - jac_exact) <= 5 * np.sqrt(out.jac_var) + 1e-9)
    assert np.all(out.f_var > 0)  # every value carries its standard error
    # and the trainer steps on those gradients
    history = trainer.fit(X, np.array([1]), epochs=1)
    assert trainer.version == 1 and not np.allclose(trainer.weights, w)
    assert history.devices == trainer.executor.names
