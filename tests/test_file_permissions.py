"""Data at rest: what multiqpu writes that holds circuits or results (the journal and its
SQLite side files, the readout cache) is readable by its owner only, 0600 in 0700 folders;
older, looser files keep working and are tightened with a warning (docs/trust.md)."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from qiskit import QuantumCircuit

from multiqpu._private_files import PermissionsTightened
from multiqpu.journal import Journal
from multiqpu.mitigation._cache import ReadoutCache, clear_memory
from multiqpu.mitigation._readout import ReadoutCalibration
from multiqpu.pool import ideal_devices
from multiqpu.scheduler import sample_sync

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """The common default umask (0644 files, 0755 folders): multiqpu must not rely on it."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    return qc


def test_new_journal_and_side_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "made" / "by" / "multiqpu" / "journal.sqlite"
    with warnings.catch_warnings():
        warnings.simplefilter("error", PermissionsTightened)  # nothing to tighten: all new
        journal = Journal(path)
        try:
            result = sample_sync(ideal_devices(), [bell()], shots=100, journal=journal)
            assert sum(result.results[0].counts.values()) == 100
            wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
            assert wal.exists() and shm.exists()  # open connection in WAL mode
            assert {mode(path), mode(wal), mode(shm)} == {0o600}
        finally:
            journal.close()
    assert mode(path) == 0o600
    for folder in (path.parent, path.parent.parent, path.parent.parent.parent):
        assert mode(folder) == 0o700, folder  # every folder multiqpu created
    assert mode(tmp_path) == stat.S_IMODE(tmp_path.stat().st_mode)  # the user's: untouched


def test_loose_journal_keeps_working_and_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal(path) as first:
        run = sample_sync(ideal_devices(), [bell()], shots=50, journal=first)
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists():
            os.chmod(p, 0o644)  # as an older multiqpu left it
    os.chmod(tmp_path, 0o755)
    with pytest.warns(PermissionsTightened, match="was readable by others"):
        journal = Journal(path)
    try:
        assert run.report.run_id in {r.run_id for r in journal.runs()}  # still readable
        assert mode(path) == 0o600
        for side in ("-wal", "-shm"):
            if Path(f"{path}{side}").exists():
                assert mode(Path(f"{path}{side}")) == 0o600
    finally:
        journal.close()
    assert mode(tmp_path) == 0o755  # a folder the user named is theirs


def test_readout_cache_is_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "readout"
    cache = ReadoutCache(folder)
    cal = ReadoutCalibration(
        "ibm:x", "fp1", (0, 1), (0.01, 0.02), (0.03, 0.04),
        (500.0,) * 2, (500.0,) * 2, "measured", measured_at=1000.0, shots=2000,
    )  # fmt: skip
    cache.store(cal)
    files = list(folder.iterdir())
    assert len(files) == 1 and mode(files[0]) == 0o600
    assert mode(folder) == 0o700 and mode(folder.parent) == 0o700
    # an older, looser cache file: read, tightened, with a warning
    os.chmod(files[0], 0o644)
    clear_memory()
    with pytest.warns(PermissionsTightened):
        hit = cache.lookup("ibm:x", "fp1", (0, 1), max_age_s=None)
    assert hit is not None and hit.p10 == (0.01, 0.02)
    assert mode(files[0]) == 0o600
