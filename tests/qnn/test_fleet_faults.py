"""Training on real devices that fail the way QPUs do: transient submission errors are
retried (throttled, backed off), a job that fails after it was accepted runs again on its
device, a lost device's shards move to the live ones, and bad input (or losing every device)
is final instead of retried."""

from __future__ import annotations

import numpy as np
import pytest

import multiqpu
from multiqpu.qnn import FleetExecutor, History, Trainer, variational_classifier
from multiqpu.scheduler import Options
from multiqpu.testing.faults import FaultyDevice

pytest.importorskip("sklearn")

QUICK = Options(backoff_s=0.01)


def _moons(n: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    X, y = make_moons(n, noise=0.05, random_state=0)
    return (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi, y


def _trainer(executor: FleetExecutor, **options: object) -> Trainer:
    """A small classifier for 32 two-moons samples, batches of 8, 256 shots."""
    return Trainer(
        variational_classifier(2, 2, layers=1),
        executor=executor,
        shots=256,
        batch_size=8,
        learning_rate=0.2,
        progress=False,
        **options,  # type: ignore[arg-type]
    )


def _train(executor: FleetExecutor, aggregation: str, epochs: int) -> History:
    """:func:`_trainer` fitted for ``epochs``."""
    X, y = _moons(32)
    return _trainer(executor, aggregation=aggregation).fit(X, y, epochs=epochs)


def test_training_survives_transient_errors_and_failed_jobs() -> None:
    flaky = FaultyDevice(
        multiqpu.device("local:ideal", num_qubits=4, seed=1),
        name="flaky",
        transient_failures=0.3,
        job_failures=0.3,
        seed=4,
    )
    steady = multiqpu.device("local:ideal", num_qubits=4, seed=2)
    executor = FleetExecutor([flaky, steady], options=QUICK)
    history = _train(executor, "sync", epochs=3)  # 6 fused jobs a device (two batches each)
    assert len(history.epochs) == 3 and all(np.isfinite(e.loss) for e in history.epochs)
    # both kinds of fault happened, each was handled the way it should be, and the flaky
    # device still did its share of the training
    assert flaky.transient_raised > 0 and flaky.failed_jobs > 0
    assert executor.submitter.retries == flaky.transient_raised
    assert executor.job_retries == flaky.failed_jobs
    assert history.share()[flaky.spec] > 0
    # every accepted job was either delivered or failed on purpose: none is left running
    assert flaky.in_flight == 0


async def test_a_lost_device_and_bad_input_are_final_not_retried() -> None:
    model = variational_classifier(2, 2, layers=1)
    work = model.work(np.array([[0.3, 1.1]]), model.init_weights(1), gradients=False)
    lost = FaultyDevice(multiqpu.device("local:ideal", num_qubits=4), fail_after=0)
    executor = FleetExecutor([lost], options=QUICK)
    executor.start(0, work, 128, "lost")
    with pytest.raises(multiqpu.DeviceUnavailableError):
        await executor.next()
    assert lost.attempts == 1 and executor.job_retries == 0

    small = FaultyDevice(multiqpu.device("local:ideal", num_qubits=4))
    executor = FleetExecutor([small], options=QUICK)
    executor.start(0, work, 10**9, "too many shots")
    with pytest.raises(multiqpu.InvalidInputError):
        await executor.next()
    assert executor.job_retries == 0 and executor.submitter.retries == 0


def test_job_failures_must_be_a_probability() -> None:
    with pytest.raises(multiqpu.InvalidInputError, match="job_failures"):
        FaultyDevice(multiqpu.device("local:ideal"), job_failures=1.5)


@pytest.mark.parametrize("aggregation", ["sync", "async", "local"])
def test_training_goes_on_when_a_device_is_lost(aggregation: str) -> None:
    """A device lost mid-training (its 3rd submission and later fail, in-flight jobs too):
    its shard runs again on a live device, it gets no more shards, every epoch completes
    with every sample, and its lost work is not counted as its own."""
    lost = FaultyDevice(
        multiqpu.device("local:ideal", num_qubits=4, seed=1),
        name="lost",
        fail_after=2,
        fail_in_flight=True,
    )
    live = [multiqpu.device("local:ideal", num_qubits=4, seed=s, label=f"live{s}") for s in (2, 3)]
    executor = FleetExecutor([lost, *live], options=QUICK)
    history = _train(executor, aggregation, epochs=3)
    assert len(history.epochs) == 3 and all(np.isfinite(e.loss) for e in history.epochs)
    assert executor.lost_devices() == {0} and lost.attempts >= 3
    assert executor.moved >= 1  # the shard of the failing submission ran elsewhere
    # after the loss no job reached the lost device: its submissions stop at the failing one
    assert len(lost.submissions) == 2
    for epoch in history.epochs:
        assert sum(epoch.samples) == 32  # every sample, once per epoch
    assert history.epochs[-1].samples[0] == 0


@pytest.mark.usefixtures("unfused")
@pytest.mark.parametrize("pipeline", [0, 1])
def test_a_moved_shard_is_tallied_on_the_device_that_ran_it(pipeline: int) -> None:
    """Under a robust rule, the rows of a lost device's shards, run by live devices, count
    as those devices' rows in the outlier tally: the lost device has rows only for the
    jobs it finished itself (its first one; its second submission fails). One step a job
    (FUSE 1), so that job is one row."""
    lost = FaultyDevice(multiqpu.device("local:ideal", num_qubits=4, seed=1), name="lost",
                        fail_after=1)  # fmt: skip
    live = [
        multiqpu.device("local:ideal", num_qubits=4, seed=s, label=f"live{s}") for s in (2, 3, 4)
    ]
    executor = FleetExecutor([lost, *live], options=QUICK)
    X, y = _moons(32)
    trainer = _trainer(executor, aggregator="median", pipeline=pipeline)
    history = trainer.fit(X, y, epochs=2)
    assert executor.lost_devices() == {0} and executor.moved >= 1
    seen = trainer.aggregator.seen  # type: ignore[attr-defined]
    assert seen[0] == 1  # its one finished job; the moved ones are the live devices' rows
    assert (seen[1:] >= 1).all() and (seen <= 8).all()  # 2 epochs x 4 steps
    assert len(history.epochs) == 2
