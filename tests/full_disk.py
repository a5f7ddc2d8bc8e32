"""A real full disk for tests: a small tmpfs mounted in a private mount namespace (no one else
sees it, and it goes with the process that mounted it), filled by a filler file until the
kernel answers ENOSPC. Mounting needs root and ``unshare(1)``, as CI has."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAN_MOUNT = os.geteuid() == 0 and shutil.which("unshare") is not None
WHY_NOT = "mounting a private tmpfs needs root and unshare(1)"


def run_unshared(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -c code args`` in a private mount namespace, from the repository root (so
    ``tests`` imports); the caller checks its exit status and output."""
    cmd = ["unshare", "-m", "--propagation", "private", sys.executable, "-c", code, *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def mount_small_tmpfs(folder: Path, size: str = "256k") -> None:
    """In the calling (unshared) process only: a tmpfs of ``size`` on ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    subprocess.run(cmd, check=True)


def fill(folder: Path) -> Path:
    """Write a filler file in ``folder`` until its disk is full (ENOSPC); the filler's path.
    Unbuffered writes, so the last one is the one the kernel refused."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    return filler
