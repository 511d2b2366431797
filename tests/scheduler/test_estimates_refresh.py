"""A device's planning wait follows the learner even when the observation came from another
device. Each device learns its waits from its own jobs, but its prior comes from the whole
fleet (per kind of report), so a queue measured on one device moves the estimate of devices
that finished nothing yet. Before, only the device observed was refreshed: family seed
14028, ``balanced``, planned garnet_6 with a 540 s wait while the learner expected 34,000 s
there, and its three queued jobs, judged due any moment, were not copied for 4,900 s."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from multiqpu.scheduler import SimCircuit, SimDevice, Workload
from multiqpu.scheduler._core import Core, CoreConfig
from multiqpu.scheduler._learning import Learner
from multiqpu.scheduler._tables import ArraySource
from multiqpu.scheduler._virtual import tables_for


def test_a_queue_measured_on_one_device_moves_the_plan_of_devices_not_yet_measured() -> None:
    base = SimDevice("a", num_qubits=20, median_wait_s=60.0, max_circuits_per_job=10)
    fleet = [base, replace(base, name="b"), replace(base, name="c")]
    work = Workload((SimCircuit(4, 10, 30, 8, shots=4000),), (1.0,), 300)
    learner = Learner(3, reported_wait_s=[30.0, 30.0, 30.0], prior_overhead_s=[5.0] * 3)
    core = Core(
        tables_for(fleet, work),
        ArraySource(np.arange(300), np.zeros(300, dtype=np.int64)),
        concurrency=[2, 2, 2],
        max_batch=[10, 10, 10],
        learner=learner,
        config=CoreConfig(redundancy=0, policy="fastest", hedging=False),
    )
    st = core.state
    subs = core.pump(0.0)
    first = next(s for s in subs if s.device == 0)
    before = st.wait.copy()
    core.on_started(first.job_id, 3_000.0)
    # device 0's queue: 100x what its report said (30 s)
    core.on_done(first.job_id, 3_010.0, queue_s=3_000.0, execution_s=10.0)
    expected = learner.wait_quantile(st.config.risk_z)
    assert learner.n[1] == 0 and learner.n[2] == 0  # nothing measured there
    assert expected[2] > 3 * before[2]  # the fleet's prior moved them
    # and the plan uses what the learner now expects
    np.testing.assert_allclose(st.wait, expected, rtol=0.11)
    assert st.wait[2] > 3 * before[2]
