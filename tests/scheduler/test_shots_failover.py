"""Shot parts fail over (docs/shots.md, "When a device is lost"): parts pinned to a device
that is lost mid-run are re-planned over the live devices that fit, on the real executor
with :class:`~multiqpu.testing.faults.FaultyDevice`; the merge records where each part ran
and tests the devices' shares like any spread."""

from __future__ import annotations

import pytest
from _physics import assert_matches_exact, tagged_circuit

import multiqpu
from multiqpu import DeviceUnavailableError
from multiqpu.journal import Journal
from multiqpu.scheduler import JobRequest
from multiqpu.testing.faults import FaultyDevice


def _ideal(label: str, cap: int, seed: int, **limits: int) -> multiqpu.Device:
    return multiqpu.device(
        "local:ideal",
        label=label,
        num_qubits=6,
        seed=seed,
        limits=multiqpu.DeviceLimits(max_shots=cap, **limits),
    )


async def test_parts_over_the_cap_fail_over_when_their_device_is_lost(tmp_path) -> None:
    # 400,000 shots: all four 100,000-shot parts go to the larger cap, which is lost after
    # two jobs (one part per job, one job at a time); the other 200,000 shots are re-planned
    # on the live device within its 50,000 cap (both take one job at a time)
    big = FaultyDevice(
        _ideal("big", 100_000, 1, max_circuits_per_job=1, max_concurrent_jobs=1),
        name="big",
        fail_after=2,
    )
    small = _ideal("small", 50_000, 2, max_concurrent_jobs=1)
    qc = tagged_circuit(4)
    with Journal(tmp_path / "j.sqlite") as journal:
        result = await multiqpu.Fleet([big, small]).sample([qc], shots=400_000, journal=journal)
        runs = {r.run_id: r for r in journal.runs(limit=10)}
    r = result[0]
    assert big.lost and len(big.submissions) == 2
    shares = {s.device: s for s in r.parts}
    assert set(shares) == {big.spec, small.spec}
    assert shares[big.spec].shots == 200_000 and shares[big.spec].parts == 2
    assert shares[small.spec].shots == 200_000 and shares[small.spec].parts == 4
    assert sum(sum(s.counts.values()) for s in r.parts) == r.shots == 400_000
    # two ideal devices: the test finds the shares compatible, and the merge is their sum
    assert r.compatibility is not None and r.compatibility.compatible and r.merged
    assert_matches_exact(qc, r.counts, 400_000)
    for share in r.parts:
        assert_matches_exact(qc, share.counts, share.shots)
    extra = result.report.extra
    assert extra["shot_failovers"] == 1 and extra["lost_devices"] == [big.spec]
    # the journal: the first run failed with its two parts done; the failover run is its own
    first = next(k for k in runs if not k.endswith("-failover1"))
    assert runs[first].state == "failed" and runs[first].n_done == 2
    assert runs[f"{first}-failover1"].state == "done"


async def test_split_shots_true_fails_over_the_part_pinned_to_a_lost_device() -> None:
    # split_shots=True: 10 parts per device (1,000 shots each), one pinned to each device
    # expected to finish it in time (all three: no queues); "dies" is lost at its first job
    dies = FaultyDevice(_ideal("d", 100_000, 3), name="dies", fail_after=0)
    live = [_ideal(f"live{k}", 100_000, 4 + k) for k in range(2)]
    qc = tagged_circuit(3)
    fleet = multiqpu.Fleet([dies, *live])
    result = await fleet.sample([qc], shots=30_000, split_shots=True, journal=None)
    r = result[0]
    assert dies.lost and not dies.submissions
    assert {s.device for s in r.parts} == {d.spec for d in live}
    assert sum(s.shots for s in r.parts) == 30_000 == sum(r.counts.values())
    # its pinned part's 1,000 shots re-planned as 10 parts of 100 over the live devices
    assert sum(s.parts for s in r.parts) == 29 + 10
    assert result.report.extra["shot_failovers"] == 1
    assert r.compatibility is not None and r.compatibility.compatible
    assert_matches_exact(qc, r.counts, 30_000)


async def test_a_loss_with_no_live_device_that_fits_still_fails() -> None:
    # the only device wide enough is lost: nothing to fail over to, the run fails clearly
    wide = FaultyDevice(
        _ideal("wide", 1000, 5, max_circuits_per_job=1, max_concurrent_jobs=1),
        name="wide",
        fail_after=1,
    )
    narrow = multiqpu.device("local:ideal", label="narrow", num_qubits=2, seed=6)
    with pytest.raises(DeviceUnavailableError):
        await multiqpu.Fleet([wide, narrow]).sample([tagged_circuit(4)], shots=3000, journal=None)


async def test_a_failover_run_resumes_on_its_own(tmp_path) -> None:
    # the failover round is recorded with a plan of its own circuits: resuming it merges
    # its parts (all finished here, so nothing is submitted again)
    big = FaultyDevice(
        _ideal("big", 10_000, 7, max_circuits_per_job=1, max_concurrent_jobs=1),
        name="big",
        fail_after=1,
    )
    small = _ideal("small", 5_000, 8, max_concurrent_jobs=1)
    qc = tagged_circuit(3)
    with Journal(tmp_path / "j.sqlite") as journal:
        fleet = multiqpu.Fleet([big, small])
        # a second circuit, kept off "big" so that big's one job is a part of the first
        other = JobRequest(tagged_circuit(2), 100, devices=[small.spec])
        result = await fleet.run([(qc, 30_000), other], journal=journal)
        failover = next(r.run_id for r in journal.runs(limit=10) if r.run_id.endswith("-failover1"))
        again = await fleet.resume(failover, journal=journal)
    assert [s.shots for s in result[0].parts] == [10_000, 20_000]
    # the failover run's circuits: the split one first (20,000 shots left, on "small"), then
    # the other one if it had not finished before the loss
    assert again[0].shots == 20_000 and again[0].parts[0].device == small.spec
    assert [r.shots for r in again.results[1:]] in ([], [100])
    assert again.report.circuits == len(again.results)
