"""Scratch folders in the system temp folder that a killed process does not leave behind for
good. Each folder, ``lora-hpo-<kind>-<random>``, has a lock file beside it (the same name plus
``.owner``) that its process keeps locked for the folder's life: the kernel releases the lock
however that process ends, SIGKILL included. Making a new folder of a kind first removes the
folders of that kind whose lock is free. A trial's folder holds its checkpoints (an adapter
and its optimizer state), so a study killed on a large model would otherwise leave gigabytes
per slot in /tmp. The folder itself holds only what its user puts there, as a
``tempfile.TemporaryDirectory`` does (some are uploaded whole to MLflow).

A lock, not a pid, tells a live owner: a pid means nothing across the pid namespaces of
containers that share a temp folder, and pids are reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import IO

OWNER = ".owner"  # the lock file's suffix: <folder>.owner
PREFIX = "lora-hpo-"


def _lock(path: Path) -> IO[bytes] | None:
    """``path`` opened and locked (exclusive, not waiting), or None when another holds it."""
    try:
        handle = open(path, "rb")  # noqa: SIM115  (held for the folder's life)
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _remove(folder: str, lock: Path, handle: IO[bytes]) -> None:
    """The folder, then its lock file, while the lock is still held. A file that cannot go
    (another user's, in a sticky temp folder) stays: a scratch folder is never worth a crash."""
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        lock.unlink(missing_ok=True)
    handle.close()


def _mine(path: Path) -> bool:
    """Whether this user owns ``path``: in a temp folder shared by several users, another
    user's dead folder is theirs to sweep (the sticky bit forbids removing it anyway)."""
    try:
        return path.stat().st_uid == os.getuid()
    except OSError:
        return False


def sweep(kind: str, root: str | None = None) -> int:
    """Remove this user's ``kind`` folders under ``root`` (the temp folder) whose owner is
    gone; how many. A folder whose lock file is not there yet (being made) is left alone."""
    removed = 0
    for lock in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}{kind}-*{OWNER}"):
        handle = _lock(lock) if _mine(lock) else None
        if handle is not None:
            _remove(str(lock)[: -len(OWNER)], lock, handle)
            removed += 1
    return removed


class Scratch:
    """A scratch folder of ``kind``, owned by this process until ``cleanup`` (or the end of a
    ``with`` block, or the object's end, or the interpreter's). Like
    ``tempfile.TemporaryDirectory``, but swept by the next owner if this process is killed."""

    def __init__(self, kind: str, root: str | None = None) -> None:
        sweep(kind, root)
        self.name = tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-", dir=root)
        # locked under another name, then renamed: a sweeper never sees an unlocked lock file
        lock, staged = Path(self.name + OWNER), Path(f"{self.name}{OWNER}.{os.getpid()}")
        staged.touch()
        # a file no one else has opened; where the file system has no flock, it is held
        # unlocked, and no sweeper can lock it either: the folder is then never swept
        handle = _lock(staged) or open(staged, "rb")  # noqa: SIM115
        staged.rename(lock)
        self._finalizer = weakref.finalize(self, _remove, self.name, lock, handle)

    def cleanup(self) -> None:
        self._finalizer()

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
