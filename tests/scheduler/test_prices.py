"""A device that cannot price a circuit has an unknown price, not a free one: ``cheapest``
ranks it after every priced device, ``budget_usd`` does not use it (and refuses up front a
circuit only it could run), and the run report names it and leaves it out of the cost.

The devices are real (Aer-backed :class:`TimedDevice`); the unpriced ones only replace
``estimate_cost``. Names are unique per test: the cost model caches estimates by device spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from _physics import tagged_circuit
from _timed import TimedDevice

import multiqpu
from multiqpu import InvalidInputError
from multiqpu.device import CostEstimate
from multiqpu.scheduler import sample
from multiqpu.scheduler._policy import masks


class Unpriced(TimedDevice):
    """A device whose price list does not cover anything: ``estimate_cost`` raises."""

    def estimate_cost(self, circuits: Sequence[Any], shots: int) -> CostEstimate:
        raise RuntimeError("no price list for this device")


class Silent(TimedDevice):
    """A device whose ``estimate_cost`` returns nothing."""

    def estimate_cost(self, circuits: Sequence[Any], shots: int) -> CostEstimate:
        return None  # type: ignore[return-value]


def _text(report: Any) -> str:
    """The printed report with its line wrapping undone."""
    return " ".join(str(report).split())


def test_cheapest_mask_ranks_unknown_prices_after_priced_ones() -> None:
    fits = np.ones((2, 3), dtype=bool)
    fits[1, :2] = False  # class 1 fits only on the unpriced device
    price = np.array([[0.02, 0.01, np.nan], [0.02, 0.01, np.nan]])
    m = masks(
        "cheapest",
        fits=fits,
        fidelity=np.full((2, 3), 0.9),
        price=price,
        alive=np.ones(3, dtype=bool),
        floor=np.zeros(2),
        margin=0.02,
    )
    assert m.preferred.tolist() == [[False, True, False], [False, False, True]]
    assert m.allowed.tolist() == fits.tolist()


@pytest.mark.parametrize("kind", [Unpriced, Silent])
async def test_cheapest_prefers_a_priced_device_over_one_that_cannot_price(kind: type) -> None:
    name = kind.__name__.lower()
    dear = TimedDevice(f"dear-{name}", price_per_circuit=0.02)
    cheap = TimedDevice(f"cheap-{name}", price_per_circuit=0.01)
    unknown = kind(f"unknown-{name}")
    circuits = [tagged_circuit(i) for i in range(12)]
    result = await sample(
        [dear, cheap, unknown], circuits, shots=100, policy="cheapest", journal=None
    )
    assert set(result.devices) == {cheap.spec}  # treated as free, it would have taken them all
    report = result.report
    assert report.unpriced_devices == (unknown.spec,)
    assert report.total_cost_usd == pytest.approx(0.12)
    assert [d.unpriced_circuits for d in report.devices] == [0, 0, 0]
    assert "no price known on " + unknown.spec in _text(report)


async def test_a_circuit_only_an_unpriced_device_runs_is_not_counted_as_free() -> None:
    wide = multiqpu.device("local:ideal", num_qubits=8, seed=5)
    priced = TimedDevice("priced-narrow", price_per_circuit=0.5)  # 6 qubits
    unknown = Unpriced("unknown-wide", inner=wide)
    narrow = [tagged_circuit(i) for i in range(3)]
    wide_circuits = [tagged_circuit(i, bits=6) for i in range(2)]  # 7 qubits
    result = await sample(
        [priced, unknown], narrow + wide_circuits, shots=100, policy="cheapest", journal=None
    )
    assert result.devices == [priced.spec] * 3 + [unknown.spec] * 2
    report = result.report
    rows = {d.device: d for d in report.devices}
    assert rows[unknown.spec].unpriced_circuits == 2 and rows[unknown.spec].cost_usd == 0.0
    assert rows[priced.spec].unpriced_circuits == 0
    assert report.total_cost_usd == pytest.approx(1.5)  # the priced circuits only
    assert report.unpriced_devices == (unknown.spec,)
    assert "excludes 2 circuit(s) of unknown price" in _text(report)
    assert "0.00+?" in _text(report)  # the unpriced device's cost cell
    assert report.to_dict()["unpriced_devices"] == [unknown.spec]


async def test_a_budget_never_uses_a_device_that_cannot_price() -> None:
    # the unpriced device is much quicker: without the rule, fastest would use it
    slow = TimedDevice("priced-slow", price_per_circuit=0.01, wait_s=0.3, concurrency=1)
    quick = Unpriced("unknown-quick")
    circuits = [tagged_circuit(i) for i in range(10)]
    result = await sample(
        [slow, quick], circuits, shots=100, policy="fastest", budget_usd=1.0, journal=None
    )
    assert set(result.devices) == {slow.spec} and quick.submits == []
    assert result.report.unpriced_devices == (quick.spec,)
    assert result.report.total_cost_usd == pytest.approx(0.1)


async def test_a_budget_refuses_up_front_a_circuit_no_device_can_price() -> None:
    wide = multiqpu.device("local:ideal", num_qubits=8, seed=5)
    priced = TimedDevice("priced-only-narrow", price_per_circuit=0.01)
    unknown = Unpriced("unknown-only-wide", inner=wide)
    circuits = [tagged_circuit(0), tagged_circuit(1, bits=6)]
    with pytest.raises(InvalidInputError, match="cannot price it") as info:
        await sample([priced, unknown], circuits, shots=100, budget_usd=5.0, journal=None)
    assert "budget_usd" in str(info.value) and "nothing was submitted" in str(info.value)
    assert priced.submits == [] and unknown.submits == []
