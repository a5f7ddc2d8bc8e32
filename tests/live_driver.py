"""A ``lora-hpo run`` driver in its own process group whose live view is read as it prints,
so that a test can kill it at a chosen point of the study (the study directory on storage
lags the driver by Tune's sync period)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROW = re.compile(r"\] (\w+): .*step=(\d+|-), .*status=(\w+)")
Steps = dict[str, tuple[int, str]]


class LiveDriver:
    def __init__(self, cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None):
        env = dict(env or os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def steps(self) -> Steps:
        """trial id -> (its last step shown, its status), from the live view so far."""
        out = {}
        for line in list(self.lines):
            found = ROW.search(line)
            if found and found.group(2) != "-":
                out[found.group(1)] = (int(found.group(2)), found.group(3))
        return out

    def kill_when(
        self, ready: Callable[[dict[str, tuple[int, str]]], bool], timeout: float
    ) -> None:
        """kill -9 the driver's process group once ``ready(steps)`` holds (or at ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if ready(self.steps()):
                break
            time.sleep(0.2)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
