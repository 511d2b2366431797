"""The placement core's inputs: per (circuit class, device) estimates and task sources.

A *class* is a set of tasks the scheduler cannot tell apart: same circuit structure, shots and
per-task restrictions. Fragments of a cut circuit and data shards repeat structures, so a
batch of thousands of circuits usually has a handful of classes, and every estimate below is
computed once per (class, device), never per circuit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["ArraySource", "ClassTables", "StreamSource", "TaskSource"]


@dataclass(frozen=True)
class ClassTables:
    """Estimates per (class, device); arrays of shape (C, D) unless noted.

    Attributes:
        fits: the class can run on the device at all (qubits, shots, restrictions).
        fidelity: estimated fidelity of the class on the device (product of 1 - error over
            the transpiled circuit's operations on its chosen layout).
        raw_s: predicted execution seconds of one circuit: shots x circuit duration (the
            learned per-device speed factor and per-job overhead are applied on top).
        price: US dollars to run one circuit of the class on the device; NaN where the
            device cannot price it (unknown, not free).
        floor: per-class fidelity floor, shape (C,) (0 where none).
        group: per-class batch group, shape (C,): tasks of different groups never share a job
            (a job has one shots value).
        shots: per-class shots, shape (C,) (0 for exact results).
        weight: per-class share of the workload, shape (C,) (for batch sizing).
    """

    fits: np.ndarray
    fidelity: np.ndarray
    raw_s: np.ndarray
    price: np.ndarray
    floor: np.ndarray
    group: np.ndarray
    shots: np.ndarray
    weight: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.fits.shape[0])

    @property
    def n_devices(self) -> int:
        return int(self.fits.shape[1])


class TaskSource:
    """Where unplaced tasks come from: ``take(n)`` returns up to ``n`` (indices, classes)."""

    total: int
    remaining: int

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def class_counts(self, n_classes: int) -> np.ndarray:
        """How many tasks of each class the source yields in all (for budget reserves)."""
        raise NotImplementedError


class ArraySource(TaskSource):
    """Tasks known up front (the async executor)."""

    def __init__(self, indices: np.ndarray, classes: np.ndarray) -> None:
        self._idx = np.asarray(indices, dtype=np.int64)
        self._cls = np.asarray(classes, dtype=np.int64)
        self._pos = 0
        self.total = len(self._idx)
        self.remaining = self.total

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self._pos, min(self._pos + n, self.total)
        self._pos = b
        self.remaining = self.total - b
        return self._idx[a:b], self._cls[a:b]

    def class_counts(self, n_classes: int) -> np.ndarray:
        return np.bincount(self._cls, minlength=n_classes)


class StreamSource(TaskSource):
    """``total`` tasks whose classes are drawn i.i.d. from ``probabilities``, generated in
    chunks on demand (seeded), so a million tasks never exist at once."""

    def __init__(
        self, total: int, probabilities: np.ndarray, *, seed: int = 0, chunk: int = 8192
    ) -> None:
        self.total = int(total)
        self.remaining = self.total
        self._p = np.asarray(probabilities, dtype=float) / np.sum(probabilities)
        self._seed = seed
        self._chunk = chunk
        self._gen = self._chunks()
        self._buf_idx = np.empty(0, dtype=np.int64)
        self._buf_cls = np.empty(0, dtype=np.int64)

    def _chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(self._seed)
        start = 0
        while start < self.total:
            n = min(self._chunk, self.total - start)
            cls = rng.choice(len(self._p), size=n, p=self._p)
            yield np.arange(start, start + n, dtype=np.int64), cls.astype(np.int64)
            start += n

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx_parts, cls_parts, have = [], [], 0
        while have < n:
            if len(self._buf_idx) == 0:
                nxt = next(self._gen, None)
                if nxt is None:
                    break
                self._buf_idx, self._buf_cls = nxt
            k = min(n - have, len(self._buf_idx))
            idx_parts.append(self._buf_idx[:k])
            cls_parts.append(self._buf_cls[:k])
            self._buf_idx, self._buf_cls = self._buf_idx[k:], self._buf_cls[k:]
            have += k
        self.remaining -= have
        if not idx_parts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        if len(idx_parts) == 1:
            return idx_parts[0], cls_parts[0]
        return np.concatenate(idx_parts), np.concatenate(cls_parts)

    def class_counts(self, n_classes: int) -> np.ndarray:
        counts = np.zeros(n_classes, dtype=np.int64)
        for _, cls in self._chunks():  # a fresh generator with the same seed
            counts += np.bincount(cls, minlength=n_classes)
        return counts
