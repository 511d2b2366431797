"""Files at rest readable by their owner only, as ssh does: what multiqpu writes that holds
circuits or results (the journal with its SQLite ``-wal``/``-shm`` side files, which also
hold the scheduler's result cache and the CLI's run records; the readout cache; QNN
checkpoints; saved figures) is created 0600 in 0700 folders.

Existing files keep working: a file multiqpu opens with group or other permission bits is
tightened to 0600 (``chmod``) with a :class:`PermissionsTightened` warning; a folder is
tightened only when multiqpu owns it (``owned=True``: its default data and cache folders),
never a folder the user named. See docs/trust.md ("Data placement and data at rest").
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "PermissionsTightened",
    "private_dir",
    "private_file",
    "private_output",
    "tighten_file",
]

FILE_MODE = 0o600
DIR_MODE = 0o700


class PermissionsTightened(UserWarning):
    """multiqpu found one of its files (or folders) readable by others and tightened it."""


def _tighten(path: Path, mode: int, what: str) -> None:
    try:
        st = path.stat()
    except OSError:
        return
    if stat.S_IMODE(st.st_mode) & 0o077 == 0:
        return
    old = stat.S_IMODE(st.st_mode)
    try:
        os.chmod(path, mode)
    except OSError as exc:  # not ours (another user's file): say so, keep working
        warnings.warn(
            f"{what} {path} is readable by others (mode {old:o}) and could not be made "
            f"private ({exc}); chmod {mode:o} it",
            PermissionsTightened,
            stacklevel=3,
        )
        return
    warnings.warn(
        f"{what} {path} was readable by others (mode {old:o}); multiqpu set it to {mode:o}",
        PermissionsTightened,
        stacklevel=3,
    )


def private_dir(path: Path, *, owned: bool = False) -> None:
    """Create ``path`` (and missing parents) with mode 0700; an existing folder is tightened
    only when ``owned`` (one multiqpu made for itself)."""
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, DIR_MODE)  # mkdir's mode is masked by the umask; be exact
    if owned and not missing:
        _tighten(path, DIR_MODE, "the folder")


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist, else tighten it to 0600."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        _tighten(path, FILE_MODE, "the file")
        return
    os.close(fd)
    os.chmod(path, FILE_MODE)


def tighten_file(path: Path) -> None:
    """Tighten an existing file to 0600 (nothing when it does not exist)."""
    _tighten(path, FILE_MODE, "the file")


def private_output(path: object) -> None:
    """Before a file is written at a user-given ``path`` (a figure, a checkpoint): create it
    0600 (or tighten it), so that the writer, which truncates, keeps that mode. Folders are
    the user's and are left alone; anything that is not a path (a file object) is skipped."""
    if isinstance(path, (str, os.PathLike)):
        target = Path(os.fspath(path)).expanduser()
        if target.parent.is_dir():
            private_file(target)
