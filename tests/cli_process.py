"""``lora-hpo`` as a user runs it: a fresh process in its own session, from a working
directory of the test's choosing; it must succeed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def lora_hpo(
    cwd: Path | None, *args: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "lora_hpo.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, start_new_session=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc
