"""The virtual clock: ``multiqpu.scheduler.simulate`` and ``multiqpu simulate``."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from multiqpu.cli import main as cli_main
from multiqpu.errors import InvalidInputError
from multiqpu.scheduler import SimCircuit, SimDevice, Workload, reference_fleet, simulate
from multiqpu.scheduler._bounds import fluid_lower_bound


def small_fleet() -> list[SimDevice]:
    base = SimDevice("a", num_qubits=20, median_wait_s=60.0, wait_drift=0.2, wait_jitter=0.1)
    return [
        base,
        replace(base, name="b", median_wait_s=300.0, error_2q=2e-3),
        replace(base, name="c", median_wait_s=30.0, shot_s=1e-3, readout_error=0.05),
    ]


WORKLOAD = Workload((SimCircuit(4, 10, 30, 8, shots=4000),), (1.0,), 400)


def test_every_circuit_is_placed_and_the_figures_add_up() -> None:
    r = simulate(small_fleet(), WORKLOAD, policy="fastest", compare=True, bound=True)
    assert sum(d["circuits"] for d in r.per_device) == 400
    assert r.placements >= 400 and r.jobs >= 3
    assert r.lower_bound_s is not None and r.makespan_s >= 0.9 * r.lower_bound_s
    assert set(r.baselines) == {"least_busy", "round_robin"}
    # spreading over the fleet beats one device and a blind rotation here
    assert r.baselines["least_busy"]["makespan_s"] > r.makespan_s
    assert r.baselines["round_robin"]["makespan_s"] > r.makespan_s
    data = r.to_dict()
    assert json.loads(json.dumps(data, default=float))["circuits"] == 400


def test_policies_trade_time_for_fidelity() -> None:
    fast = simulate(small_fleet(), WORKLOAD, policy="fastest")
    accurate = simulate(small_fleet(), WORKLOAD, policy="most_accurate")
    assert accurate.mean_fidelity > fast.mean_fidelity
    assert accurate.makespan_s > fast.makespan_s
    # most_accurate uses only device b (the lowest two-qubit error)
    assert [d["circuits"] for d in accurate.per_device] == [0, 400, 0]


def test_a_device_lost_mid_run_is_dropped_and_its_work_moves() -> None:
    fleet = small_fleet()
    fleet[0] = replace(fleet[0], lost_at=200.0)
    r = simulate(fleet, WORKLOAD, policy="fastest")
    assert r.per_device[0]["dropped"]
    assert sum(d["circuits"] for d in r.per_device) == 400


def test_failures_and_outages_never_lose_a_circuit() -> None:
    fleet = [replace(d, failure_rate=0.2, outages=((100.0, 900.0),)) for d in small_fleet()]
    r = simulate(fleet, WORKLOAD, policy="fastest", max_failures=100)
    assert sum(d["circuits"] for d in r.per_device) == 400
    assert r.retries > 0


def test_queued_copies_deliver_each_circuit_once_within_the_fidelity_budget() -> None:
    # the reference fleet holds queued copies on most queue seeds; with failures and a lost
    # device too, every circuit still comes back exactly once
    fleet = [replace(d, failure_rate=0.05) for d in reference_fleet()]
    fleet[0] = replace(fleet[0], lost_at=900.0)
    work = Workload.mixed(600, shots=10_000)
    for red in (0, 2):
        # (a fidelity margin set explicitly is a hard target: no max_slowdown)
        r = simulate(fleet, work, seed=4, redundancy=red, max_failures=100, fidelity_margin=0.02)
        assert sum(d["circuits"] for d in r.per_device) == 600
    best = simulate(fleet, work, seed=4, policy="most_accurate", max_failures=100)
    assert r.mean_fidelity >= 0.98 * best.mean_fidelity - 1e-9


def test_history_teaches_the_real_waits() -> None:
    fleet = reference_fleet()
    cold = simulate(fleet, 300, shots=4000)
    warm = simulate(fleet, 300, shots=4000, history=True)
    assert sum(k.jobs for k in warm.knowledge) > sum(k.jobs for k in cold.knowledge)


def test_fluid_lower_bound_on_a_hand_computed_case() -> None:
    # two devices, 100 unit circuits; device 0 starts at 0 at rate 1/s, device 1 at 20 s at
    # rate 1/s: T - 0 + T - 20 = 100 -> T = 60
    lb = fluid_lower_bound(
        np.array([100]), np.array([[1.0, 1.0]]), np.array([0.0, 20.0]), np.array([[True, True]])
    )
    assert lb == pytest.approx(60.0)
    # device 1 starts too late to help: T = 100 on device 0 alone
    lb = fluid_lower_bound(
        np.array([100]), np.array([[1.0, 1.0]]), np.array([0.0, 200.0]), np.array([[True, True]])
    )
    assert lb == pytest.approx(100.0)


def test_fluid_lower_bound_with_a_fidelity_budget() -> None:
    # as above (T = 60 splits 60/40), but device 0 loses 0.1 a circuit and only 2.0 may be
    # lost: at most 20 circuits there, 80 on device 1 from t = 20: T = 100
    args = (np.array([100]), np.array([[1.0, 1.0]]), np.array([0.0, 20.0]))
    ok = np.array([[True, True]])
    lb = fluid_lower_bound(*args, ok, loss=np.array([[0.1, 0.0]]), budget=2.0)
    assert lb == pytest.approx(100.0)
    assert fluid_lower_bound(*args, ok, loss=np.array([[0.1, 0.0]]), budget=100.0) == (
        pytest.approx(60.0)
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_balanced_keeps_its_fidelity_budget_and_no_run_beats_its_bound(seed: int) -> None:
    # a fidelity margin set explicitly is a hard target (no max_slowdown)
    bal = simulate(10, 600, shots=10_000, seed=seed, bound=True, fidelity_margin=0.02)
    fast = simulate(10, 600, shots=10_000, seed=seed, policy="fastest", bound=True)
    acc = simulate(10, 600, shots=10_000, seed=seed, policy="most_accurate")
    assert bal.mean_fidelity >= 0.98 * acc.mean_fidelity - 1e-9
    assert "max_slowdown" not in bal.limits
    assert bal.lower_bound_s is not None and fast.lower_bound_s is not None
    assert bal.makespan_s >= bal.lower_bound_s >= fast.lower_bound_s * (1 - 1e-9)
    assert fast.makespan_s >= fast.lower_bound_s


def test_streams_stay_lazy() -> None:
    r = simulate(small_fleet(), Workload(WORKLOAD.circuits, (1.0,), 20_000), policy="fastest")
    assert sum(d["circuits"] for d in r.per_device) == 20_000


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInputError, match="unknown policy"):
        simulate(3, 10, policy="quickest")
    with pytest.raises(InvalidInputError, match="unknown simulate option"):
        simulate(3, 10, colour="blue")


def test_cli_simulate(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["simulate", "--devices", "4", "--circuits", "300", "--compare"]) == 0
    out = capsys.readouterr().out
    assert "300 circuits on 4 simulated devices" in out and "least-busy" in out
    assert cli_main(["simulate", "--devices", "3", "--circuits", "200", "--json", "--bound"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["circuits"] == 200 and data["lower_bound_s"] > 0
    assert sum(d["circuits"] for d in data["per_device"]) == 200


def test_a_session_queues_once_then_runs_our_jobs_back_to_back() -> None:
    # a deterministic 600 s queue: in a session only the first job waits it; without one,
    # with one job at a time, every job does
    quiet = {"wait_drift": 0.0, "wait_jitter": 0.0, "daily_amplitude": 0.0}
    base = SimDevice("s", num_qubits=20, median_wait_s=600.0, max_concurrent_jobs=1, **quiet)
    work = Workload((SimCircuit(4, 10, 30, 8, shots=4000),), (1.0,), 300)
    s = simulate([replace(base, session_ttl_s=60.0)], work, policy="fastest")
    p = simulate([base], work, policy="fastest", max_failures=100)
    assert sum(d["circuits"] for d in s.per_device) == 300
    assert s.jobs >= 3  # the session's first job (one circuit), then it is fed
    busy = s.per_device[0]["busy_s"]
    # one queue wait, then at most the submission latency between jobs
    assert 600.0 + busy <= s.makespan_s <= 600.0 + busy + 2.5 * s.jobs
    assert p.makespan_s >= 600.0 * p.jobs


def test_a_session_that_never_starts_does_not_hold_the_run() -> None:
    quiet = {"wait_drift": 0.0, "wait_jitter": 0.0, "daily_amplitude": 0.0}
    good = SimDevice("g", num_qubits=20, median_wait_s=30.0, error_2q=2e-3, **quiet)
    # the most accurate device, in a session whose first job waits ~a day while it reports
    # an empty queue: the scheduler gives it work, which must come back from elsewhere
    stuck = replace(
        good,
        name="s",
        median_wait_s=86_400.0,
        others_job_s=1e9,
        error_2q=1e-3,
        session_ttl_s=60.0,
    )
    work = Workload((SimCircuit(4, 10, 30, 8, shots=4000),), (1.0,), 300)
    r = simulate([good, stuck], work)
    assert sum(d["circuits"] for d in r.per_device) == 300
    assert r.per_device[1]["circuits"] == 0
    assert r.steals + r.hedges > 0  # it was given work, then that work moved
    assert r.makespan_s < 3600.0
