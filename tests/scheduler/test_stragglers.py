"""Straggler defences in the real async executor (the issue's four-device fleet): a fast
device, one lost after two jobs, a slow one (4-6 s a job) and a flaky one (30 % transient
failures). Every circuit comes back once and physically right, the loss never fails the run,
and the slow device gets a probe of one circuit before anything bigger.

The device that dies is the quickest of the four (the fast and the flaky one hold each result
back 0.2 s), so the scheduler always leans on it and always meets the loss at its third job.
With all three equally quick, whether it ever got a third job was a race between their first
results, and the loss went untested in about one run in five."""

from __future__ import annotations

import pytest
from _physics import assert_matches_exact, tagged_circuit

import multiqpu
from multiqpu.journal import Journal
from multiqpu.testing.faults import FaultyDevice

SHOTS = 1000


def fleet(seed: int) -> tuple[FaultyDevice, FaultyDevice, FaultyDevice, FaultyDevice]:
    def ideal(k: int) -> multiqpu.Device:
        return multiqpu.device("local:ideal", num_qubits=8, seed=seed + k)

    return (
        FaultyDevice(ideal(0), name="fast", delay_s=0.2),
        FaultyDevice(ideal(1), name="dies", fail_after=2),
        FaultyDevice(ideal(2), name="slow", delay_s=(4.0, 6.0), seed=seed),
        FaultyDevice(ideal(3), name="flaky", transient_failures=0.3, delay_s=0.2, seed=seed),
    )


@pytest.mark.parametrize("policy", ["fastest", "balanced"])
async def test_a_slow_device_gets_a_probe_and_a_loss_never_fails_the_run(policy: str) -> None:
    fast, dies, slow, flaky = fleet(seed=3)
    circuits = [tagged_circuit(i % 16) for i in range(120)]
    journal = Journal(":memory:")
    result = await multiqpu.Fleet([fast, dies, slow, flaky]).sample(
        circuits, shots=SHOTS, policy=policy, journal=journal, progress=False, backoff_s=0.01
    )
    assert [r.index for r in result.results] == list(range(120))
    for circuit, task in zip(circuits, result.results, strict=True):
        assert_matches_exact(circuit, task.counts, SHOTS)
    assert journal.run_info(result.run_id).state == "done"
    # the slow device's speed was unknown: until its first result came back (4-6 s after
    # its first job), every job it got was a probe of one circuit
    first_result = min(s.at + s.delay_s for s in slow.submissions)
    early = [s for s in slow.submissions if s.at < first_result]
    assert early and all(len(s.circuit_keys) == 1 for s in early)
    # the lost device was dropped and its work re-placed, without failing the run
    assert len(dies.submissions) == 2 and dies.attempts > 2
    assert dies.lost and "local:dies" in result.report.dropped_devices
    assert result.report.bound_by in (None, "fidelity_margin", "max_slowdown")
