"""Shot-wise distribution (docs/shots.md): shots above a device's cap split into parts on one
device, parts spread over devices with ``split_shots``, merged counts that are exact sums and
offered only when the devices' shares are compatible, budgets counting every part."""

from __future__ import annotations

import pytest
from _physics import assert_matches_exact, tagged_circuit
from qiskit import QuantumCircuit

import multiqpu
from multiqpu import Fleet, InvalidInputError
from multiqpu.errors import IncompatibleResultsError
from multiqpu.journal import Journal
from multiqpu.scheduler._shots import homogeneity


def ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n, name=f"ghz{n}")
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    qc.measure_all()
    return qc


def ideal_fleet(caps: tuple[int, ...] = (100_000, 50_000), batch: int = 300) -> Fleet:
    return Fleet(
        [
            multiqpu.device(
                "local:ideal",
                label=f"cap{k}",
                num_qubits=6,
                seed=10 + k,
                limits=multiqpu.DeviceLimits(max_shots=cap, max_circuits_per_job=batch),
            )
            for k, cap in enumerate(caps)
        ]
    )


async def test_400k_shots_on_a_fleet_capped_at_100k_return_400k_counts_with_parts(
    tmp_path,
) -> None:
    fleet = ideal_fleet()
    qc = ghz(3)
    with Journal(tmp_path / "j.sqlite") as journal:
        result = await fleet.sample([qc], shots=400_000, journal=journal)
        r = result[0]
        assert r.shots == 400_000 and sum(r.counts.values()) == 400_000
        assert_matches_exact(qc, r.counts, 400_000)
        # split_shots="auto" with the balanced policy: parts on one device, within its cap
        assert len(r.parts) == 1 and r.parts[0].parts == 4 and r.parts[0].shots == 400_000
        assert r.compatibility is None and r.merged
        assert r.device == r.parts[0].device == "local:cap0"  # the larger cap: fewer parts
        assert result.report.circuits == 1 and result.report.extra["shot_parts"] == 4
        # the journal holds the parts as the run's tasks, each within the cap
        run_id = result.report.run_id
        loaded = journal.load_circuits(run_id)
        assert [s for _, s in loaded] == [100_000] * 4
        done = journal.done_results(run_id)
        # merged counts are the exact sum of the recorded parts
        total: dict[str, int] = {}
        for _, res in done.values():
            for k, v in res.counts.items():
                total[k] = total.get(k, 0) + v
        assert total == dict(r.counts)
        # parts are independent draws, not one draw repeated
        assert len({tuple(sorted(res.counts.items())) for _, res in done.values()}) == 4


async def test_parts_of_one_job_are_independent_draws() -> None:
    # copies of one circuit in one job (the device batches them): each its own seed
    fleet = ideal_fleet(caps=(1000,))
    result = await fleet.sample([tagged_circuit(3)], shots=10_000, journal=None)
    r = result[0]
    # the device batches copies: fewer jobs than parts (the first job on a device of
    # unknown speed is a one-circuit probe, and no job holds over a quarter of the plan)
    assert r.parts[0].parts == 10 and len(r.parts[0].job_ids) < 10
    assert_matches_exact(tagged_circuit(3), r.counts, 10_000)


async def test_split_over_devices_keeps_per_device_counts_and_tests_them() -> None:
    fleet = ideal_fleet(caps=(100_000, 100_000, 100_000))
    qc = tagged_circuit(5)
    result = await fleet.sample([qc], shots=60_000, split_shots=True, journal=None)
    r = result[0]
    assert sum(s.shots for s in r.parts) == 60_000
    assert len(r.parts) >= 2, r.parts  # spread like a batch
    for share in r.parts:
        assert sum(share.counts.values()) == share.shots
        assert_matches_exact(qc, share.counts, share.shots)
    assert r.compatibility is not None and r.compatibility.compatible
    assert_matches_exact(qc, r.counts, 60_000)
    assert r.device == "+".join(s.device for s in r.parts)


async def test_auto_spreads_only_when_asked_for_speed() -> None:
    fleet = ideal_fleet(caps=(100_000, 100_000, 100_000))
    qc = ghz(3)
    slow = await fleet.sample([qc], shots=20_000, journal=None)
    assert slow[0].parts == ()  # within the cap and no hurry: one job, not split
    fast = await fleet.sample([qc], shots=20_000, policy="fastest", journal=None)
    assert sum(s.shots for s in fast[0].parts) == 20_000
    off = await fleet.sample([qc], shots=300_000, policy="fastest", split_shots=False, journal=None)
    assert len(off[0].parts) == 1 and off[0].parts[0].parts == 3


async def test_incompatible_devices_are_flagged_not_merged() -> None:
    limits = multiqpu.DeviceLimits(max_shots=100_000)
    clean = multiqpu.device("local:ideal", label="clean", num_qubits=5, seed=1, limits=limits)
    noisy = multiqpu.device(
        "local:noisy", label="noisy", num_qubits=5, seed=2, limits=limits, readout_error=0.1
    )
    result = await Fleet([clean, noisy]).sample(
        [ghz(3)], shots=40_000, split_shots=True, policy="fastest", journal=None
    )
    r = result[0]
    assert {s.device for s in r.parts} == {"local:clean", "local:noisy"}
    assert r.compatibility is not None and not r.compatibility.compatible and not r.merged
    with pytest.raises(IncompatibleResultsError, match="not merged"):
        _ = r.counts
    assert sum(sum(s.counts.values()) for s in r.parts) == 40_000


def test_homogeneity_test_holds_its_level_under_shot_noise() -> None:
    import numpy as np

    rng = np.random.default_rng(5)
    p = np.array([0.5, 0.3, 0.15, 0.05])
    rejected = 0
    for _ in range(400):
        shares = [dict(zip("abcd", rng.multinomial(5000, p).tolist(), strict=True)) for _ in "xyz"]
        rejected += not homogeneity(shares).compatible
    assert rejected <= 4  # alpha = 1e-3: 0.4 expected; 4 or more has probability < 1e-3


async def test_budget_counts_every_part() -> None:
    from dataclasses import replace

    from _timed import TimedDevice

    dev = TimedDevice("priced-parts", price_per_circuit=0.5)
    dev.limits = replace(dev.limits, max_shots=1000)
    with pytest.raises(InvalidInputError, match="budget_usd=2"):
        await Fleet([dev]).sample([ghz(3)], shots=5000, journal=None, budget_usd=2.0)
    result = await Fleet([dev]).sample([ghz(3)], shots=5000, journal=None, budget_usd=3.0)
    assert result[0].parts[0].parts == 5 and result.report.devices[0].circuits == 5
    assert result.report.total_cost_usd == pytest.approx(2.5)


def test_split_shots_is_checked() -> None:
    with pytest.raises(InvalidInputError, match="split_shots"):
        ideal_fleet().sample_sync([ghz(3)], shots=10, split_shots="yes", journal=None)


async def test_split_shots_true_gives_every_eligible_device_a_part() -> None:
    """split_shots=True spreads for real: every device wide enough runs a part, even when the
    policy, knowing one device to be fast, would have kept them all there."""
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    fleet = multiqpu.Fleet(
        [multiqpu.device("local:ideal", seed=k, label=f"sim{k}") for k in range(3)]
    )
    r = (await fleet.sample([qc], shots=6000, split_shots=True, policy="fastest",
                            journal=None))[0]  # fmt: skip
    assert sorted(p.device for p in r.parts) == ["local:sim0", "local:sim1", "local:sim2"]
    assert sum(p.shots for p in r.parts) == 6000 and sum(r.counts.values()) == 6000


def test_spread_pins_skip_a_device_expected_to_be_slower_than_one_device_alone() -> None:
    import numpy as np

    from multiqpu.scheduler._shots import spread_count, spread_pins

    assert spread_count(1_000_000, [100_000] * 4) == 40  # 10 parts per device
    assert spread_count(500, [100_000] * 4) == 5  # at least 100 shots a part
    # four devices, 1,000,000 shots at 250 us a shot (250 s), 10 jobs each alone
    run_s = np.full(4, 250.0)
    conc, jobs, over = np.full(4, 5), np.full(4, 10), np.full(4, 5.0)
    # idle queues: every device finishes a part long before one could finish everything
    assert spread_pins(np.zeros(4), over, run_s, conc, jobs, 40).tolist() == [0, 1, 2, 3]
    # one device behind an hour of queue: no part is pinned there (the best alone: 60 s)
    wait = np.array([0.0, 0.0, 3600.0, 0.0])
    assert spread_pins(wait, over, run_s, conc, jobs, 40).tolist() == [0, 1, 3]
    # but at least two devices run a part: split_shots=True asked for a spread
    wait = np.array([0.0, 900.0, 3600.0, 1800.0])
    assert spread_pins(wait, over, run_s, conc, jobs, 40).tolist() == [0, 1]
