"""``multiqpu devices``: the fleet at a glance."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from multiqpu.cli import _format as fmt
from multiqpu.errors import CredentialsError, DeviceUnavailableError, MultiQPUError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from multiqpu.device import CostEstimate, Device
    from multiqpu.fleet import Fleet

__all__ = ["PRICE_SHOTS", "describe_device", "describe_fleet", "run_devices"]

#: Shots used to quote a price per task and per shot.
PRICE_SHOTS = 1000


def run_devices(args: argparse.Namespace) -> int:
    from multiqpu.fleet import Fleet

    fleet = Fleet.from_config(args.config)
    rows = asyncio.run(describe_fleet(fleet))
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(rows, _time_scales(fleet))
    return 0


async def describe_fleet(fleet: Fleet) -> list[dict[str, Any]]:
    """One JSON-ready dict per device, gathered concurrently (see docs/cli.md for fields)."""
    return list(await asyncio.gather(*(describe_device(d) for d in fleet)))


async def _price(dev: Device) -> CostEstimate:
    """The device's price for ``PRICE_SHOTS`` shots of a tiny circuit.

    Free devices (simulators, fake backends) say so for an empty batch (zero total, source
    ``"free..."``), which spares importing Qiskit to build a circuit: the default fleet's
    listing stays fast. Anything else is asked about a real one-qubit circuit.
    """

    def empty_batch() -> CostEstimate | None:
        try:
            return dev.estimate_cost([], PRICE_SHOTS)
        except MultiQPUError:
            return None

    empty = await asyncio.to_thread(empty_batch)
    if empty is not None and empty.total_usd == 0 and empty.source.startswith("free"):
        return empty
    # Built on the event-loop thread, not a worker: Qiskit's native allocator (mimalloc in
    # qiskit._accelerate) crashes later threads if Qiskit is first loaded in a thread that exits.
    probe = _probe_circuit()
    return await asyncio.to_thread(dev.estimate_cost, [probe], PRICE_SHOTS)


def _probe_circuit() -> QuantumCircuit:
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(1, 1, name="price_probe")
    qc.measure(0, 0)
    return qc


async def describe_device(dev: Device) -> dict[str, Any]:
    """Everything ``multiqpu devices`` shows about one device. A part that fails (a cloud
    device without credentials, say) is left ``null`` and its error recorded in ``errors``."""
    row: dict[str, Any] = {
        "spec": dev.spec,
        "name": dev.name,
        "provider": dev.provider,
        "num_qubits": None,
        "exact": bool(dev.exact),
        "status": "unknown",
        "pending_jobs": None,
        "expected_wait_s": None,
        "queue_source": "none",
        "queue_raw": None,
        "queue_capped": False,
        "median_2q_error": None,
        "median_1q_error": None,
        "median_readout_error": None,
        "calibration_timestamp": None,
        "per_task_usd": None,
        "per_shot_usd": None,
        "price_source": None,
        "errors": [],
    }
    errors: list[str] = row["errors"]
    unreachable = False  # after a credentials/network failure, ask nothing more of the vendor

    def failed(exc: MultiQPUError) -> None:
        nonlocal unreachable
        errors.append(fmt.one_line(exc))
        if isinstance(exc, CredentialsError | DeviceUnavailableError):
            unreachable = True
            row["status"] = "error"

    # Parts that may block (cloud devices) run in worker threads.
    try:
        row["num_qubits"] = await asyncio.to_thread(lambda: dev.num_qubits)
    except MultiQPUError as exc:
        failed(exc)
    if not unreachable:
        try:
            row["status"] = (await dev.status()).value
        except MultiQPUError as exc:
            row["status"] = "error"
            failed(exc)
    if not unreachable:
        try:
            q = await dev.queue_estimate()
            row.update(
                pending_jobs=q.pending_jobs,
                expected_wait_s=q.expected_wait_s,
                queue_source=q.source,
                queue_raw=q.raw,
                queue_capped=q.capped,
            )
        except MultiQPUError as exc:
            failed(exc)
    if not unreachable:
        try:
            cal = await asyncio.to_thread(dev.calibration)
            ideal = cal.is_ideal()  # an ideal profile lists no errors: they are all zero
            row.update(
                median_2q_error=0.0 if ideal else cal.median_2q_error(),
                median_1q_error=0.0 if ideal else cal.median_1q_error(),
                median_readout_error=0.0 if ideal else cal.median_readout_error(),
                calibration_timestamp=cal.timestamp.isoformat() if cal.timestamp else None,
            )
        except MultiQPUError as exc:
            failed(exc)
    try:  # prices usually come from tables, so try even when the device is unreachable
        cost = await _price(dev)
        per_task, per_shot = cost.per_task_usd, cost.per_shot_usd
        if per_task == 0 and per_shot == 0 and cost.total_usd > 0:
            per_shot = cost.total_usd / PRICE_SHOTS  # only a total: quote it per shot
        row.update(per_task_usd=per_task, per_shot_usd=per_shot, price_source=cost.source)
    except MultiQPUError as exc:
        failed(exc)
    row["errors"] = list(dict.fromkeys(errors))  # the same failure once
    return row


def _time_scales(fleet: Fleet) -> list[float]:
    from multiqpu.queue_model import QueuedDevice

    return sorted({d.model.time_scale for d in fleet if isinstance(d, QueuedDevice)})


def _pending_text(row: dict[str, Any]) -> str:
    if row["queue_raw"]:
        return str(row["queue_raw"])
    return "-" if row["pending_jobs"] is None else f"{row['pending_jobs']:,}"


def _price_text(row: dict[str, Any]) -> str:
    if row["per_task_usd"] is None:
        return "-"
    # one comparable figure: a task of PRICE_SHOTS shots (per task + per shot: see --json)
    total = row["per_task_usd"] + PRICE_SHOTS * row["per_shot_usd"]
    return "free" if total == 0 else fmt.usd(total)


def _print_table(rows: Sequence[dict[str, Any]], time_scales: Sequence[float]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"multiqpu fleet ({len(rows)} devices)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    # Long specs (Braket ARNs) fold; the figures never wrap.
    spec_width = min(max(len(r["spec"]) for r in rows), 18) if rows else 6
    table.add_column("Device", overflow="fold", min_width=spec_width)
    table.add_column("Qubits", justify="right", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Queue", justify="right", no_wrap=True)
    table.add_column("Wait", justify="right", no_wrap=True)
    table.add_column("From", no_wrap=True)
    table.add_column("2q err", justify="right", no_wrap=True)
    table.add_column("RO err", justify="right", no_wrap=True)
    table.add_column("Price", justify="right", no_wrap=True)
    for row in rows:
        status = row["status"]
        style = fmt.STATUS_STYLE.get(status, "")
        table.add_row(
            row["spec"],
            "-" if row["num_qubits"] is None else str(row["num_qubits"]),
            f"[{style}]{status}[/{style}]" if style else status,
            _pending_text(row),
            fmt.seconds(row["expected_wait_s"]),
            row["queue_source"],
            fmt.percent(row["median_2q_error"]),
            fmt.percent(row["median_readout_error"]),
            _price_text(row),
        )
    console = fmt.console()
    console.print(table)
    if time_scales:
        scales = ", ".join(f"x{s:g}" for s in time_scales)
        console.print()
        console.print(
            f"[dim]From 'model': a simulated queue (heavy-tailed, daily load cycle) whose "
            f"waits are real-world seconds {scales}.[/dim]"
        )
    if any(r["per_task_usd"] for r in rows) or any(r["per_shot_usd"] for r in rows):
        console.print(
            f"[dim]Price: one task of {PRICE_SHOTS} shots in US dollars (per task and per "
            "shot: multiqpu devices --json).[/dim]"
        )
    for row in rows:
        for error in row["errors"]:
            console.print(f"[red]{row['spec']}[/red]: {error}", soft_wrap=True)
