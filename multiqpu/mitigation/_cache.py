"""Readout calibrations kept across runs: in memory and on disk.

Entries are keyed by (device spec, physical qubits, calibration fingerprint). The
fingerprint (:meth:`multiqpu.Calibration.fingerprint`) hashes the device's whole calibration
profile including the vendor's calibration timestamp, so when the vendor recalibrates the
device the old readout calibrations stop matching and are measured again. ``max_age_s``
(on :class:`~multiqpu.Readout`) also expires entries by age.

A request for some qubits is served if every qubit appears in a valid entry for that
device and fingerprint (the newest entry wins per qubit): per-qubit flip probabilities
are what the tensored model needs, so calibrations of overlapping qubit sets combine.

On disk: one JSON file per (device, fingerprint) under the cache directory, rewritten
atomically (temporary file + ``os.replace``); concurrent writers can only lose an entry
(which is then measured again), never corrupt the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from multiqpu._private_files import private_dir, tighten_file
from multiqpu.mitigation._readout import ReadoutCalibration, merge

__all__ = ["ReadoutCache"]

_MAX_ENTRIES = 64
_LOCK = threading.Lock()
#: Process-wide memory layer: (directory or "", device, fingerprint) -> entries.
_MEMORY: dict[tuple[str, str, str], list[ReadoutCalibration]] = {}


class ReadoutCache:
    """Look up and store readout calibrations (``directory`` None: memory only)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def _file(self, device: str, fingerprint: str) -> Path:
        assert self.directory is not None
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", device)[:60]
        digest = hashlib.sha256(device.encode()).hexdigest()[:8]
        return self.directory / f"{safe}-{digest}-{fingerprint}.json"

    def _slot(self, device: str, fingerprint: str) -> tuple[str, str, str]:
        return (str(self.directory or ""), device, fingerprint)

    def _entries(self, device: str, fingerprint: str) -> list[ReadoutCalibration]:
        slot = self._slot(device, fingerprint)
        with _LOCK:
            entries = _MEMORY.get(slot)
        if entries is None:
            entries = self._read(device, fingerprint)
            with _LOCK:
                entries = _MEMORY.setdefault(slot, entries)
        return list(entries)

    def _read(self, device: str, fingerprint: str) -> list[ReadoutCalibration]:
        if self.directory is None:
            return []
        path = self._file(device, fingerprint)
        try:
            tighten_file(path)  # an older, looser file: 0600 (docs/trust.md)
            data = json.loads(path.read_text())
            return [ReadoutCalibration.from_dict(e) for e in data["entries"]]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError):
            return []  # unreadable cache file: measure again (it is rewritten on store)

    def lookup(
        self, device: str, fingerprint: str, qubits: Sequence[int], *, max_age_s: float | None
    ) -> ReadoutCalibration | None:
        """A calibration covering ``qubits`` (in that order), or None."""
        now = time.time()
        entries = [
            e
            for e in self._entries(device, fingerprint)
            if max_age_s is None or (e.measured_at is not None and now - e.measured_at <= max_age_s)
        ]
        entries.sort(key=lambda e: e.measured_at or 0.0, reverse=True)
        chosen: dict[int, ReadoutCalibration] = {}
        for q in qubits:
            for e in entries:
                if q in e.index():
                    chosen[q] = e
                    break
            else:
                return None
        parts = sorted(
            {id(e): e for e in chosen.values()}.values(),
            key=lambda e: e.measured_at or 0.0,
            reverse=True,
        )
        return merge(device, fingerprint, qubits, parts, source="cache")

    def store(self, cal: ReadoutCalibration) -> None:
        slot = self._slot(cal.device, cal.fingerprint)
        entries = self._entries(cal.device, cal.fingerprint)
        entries.append(cal)
        entries = entries[-_MAX_ENTRIES:]
        with _LOCK:
            _MEMORY[slot] = entries
        if self.directory is None:
            return
        private_dir(self.directory, owned=_owned(self.directory))  # 0700 (docs/trust.md)
        payload = {
            "format": "multiqpu-readout-1",
            "device": cal.device,
            "fingerprint": cal.fingerprint,
            "entries": [e.to_dict() for e in entries],
        }
        path = self._file(cal.device, cal.fingerprint)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(payload, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _owned(directory: Path) -> bool:
    """Whether ``directory`` is multiqpu's default cache folder (tightened when loose)."""
    from platformdirs import user_cache_path

    return directory == user_cache_path("multiqpu") / "readout"


def clear_memory() -> None:
    """Forget the in-memory layer (tests; the files stay)."""
    with _LOCK:
        _MEMORY.clear()
