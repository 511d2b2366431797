"""Data at rest: what multiqpu writes that holds circuits or results (the journal and its
SQLite side files, with the result cache and the CLI's run records; the readout cache; QNN
checkpoints; saved figures) is readable by its owner only, 0600 in 0700 folders;
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


def test_qnn_checkpoint_and_history_figure_are_owner_only(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import numpy as np

    from multiqpu.qnn import Trainer, VirtualDevice, VirtualExecutor, variational_classifier

    X = np.random.default_rng(0).uniform(0, np.pi, (8, 2))
    y = (X[:, 0] > X[:, 1]).astype(int)
    path = tmp_path / "new" / "ckpt.json"
    t = Trainer(variational_classifier(2, 2, layers=1), shots=64, batch_size=4, seed=0,
                checkpoint=path, executor=VirtualExecutor([VirtualDevice("q0")]))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", PermissionsTightened)
        t.fit(X, y, epochs=1)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert not path.with_name("ckpt.json.tmp").exists()
    os.chmod(path, 0o644)  # an older checkpoint: the next save is private again
    t.fit(X, y, epochs=2)
    assert mode(path) == 0o600
    figure = tmp_path / "history.png"
    t.history.plot(figure)
    assert figure.stat().st_size > 0 and mode(figure) == 0o600


def test_cli_run_records_and_figures_are_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from multiqpu.cli import main

    cfg = tmp_path / "config.toml"
    cfg.write_text('[devices.exact]\nprovider = "local"\nbackend = "ideal"\n')
    journal = tmp_path / "data" / "journal.sqlite"
    journal.parent.mkdir()  # the user's folder (0755 under this umask)
    monkeypatch.setenv("MULTIQPU_JOURNAL", str(journal))
    qasm = tmp_path / "bell.qasm"
    qasm.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
                    "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n")  # fmt: skip
    timeline = tmp_path / "timeline.png"
    assert main(["run", str(qasm), "--shots", "100", "--config", str(cfg),
                 "--plot", str(timeline)]) == 0  # fmt: skip
    assert mode(journal) == 0o600  # the run record (and its result cache)
    assert timeline.stat().st_size > 0 and mode(timeline) == 0o600
