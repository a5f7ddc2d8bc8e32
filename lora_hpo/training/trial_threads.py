"""Threads a CPU trial may use: its own share (``resources.cpu``) and, when the driver says
slots are idle (fewer trials left than slots at a study's tail), theirs too.

The driver (``lora_hpo.search.thread_lending``) writes the count into a small file on the one node
that runs the study; each trial reads it when the file changes, at the start of a step, and
sets torch's thread count. A missing or unreadable file leaves the trial on its own share. A
lone trial on 2 threads trained about 1.6x and evaluated about 1.8x faster than on 1
(``bench/RESULTS.md``, "Threads for a lone trial").
"""

from __future__ import annotations

import os
from pathlib import Path


def own_threads(cpu: float) -> int:
    """A trial's own thread count: its CPU share, at least 1."""
    return max(1, int(cpu))


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def write_count(path: str | Path, threads: int) -> None:
    """Write ``threads`` to ``path`` whole (readers never see half a file)."""
    path = Path(path)
    part = path.with_name(f".{path.name}.part")
    part.write_text(f"{threads}\n")
    os.replace(part, path)


def read_count(path: str | Path) -> int | None:
    """The count in ``path``; None when it is missing or does not hold a positive integer."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


class LentThreads:
    """The thread count a trial follows: its own share, and what the driver lends it through
    the file at ``path`` (None: nothing is lent). ``poll()`` at each step's start follows the
    driver's count, never below the trial's own share nor above the CPUs it may use. A plain
    object: the driver hands it to the trial through Tune (``search.trial_execution``)."""

    def __init__(self, path: str | None, own: int) -> None:
        self.path, self.own = path, own
        self.threads = own
        self._seen: int | None = None  # the file's mtime when last read

    def poll(self) -> int:
        if self.path is None:
            return self.threads
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError:
            return self.threads
        if mtime != self._seen:
            self._seen = mtime
            count = read_count(self.path)
            if count is not None:
                self._set(min(max(count, self.own), max(self.own, usable_cpus())))
        return self.threads

    def _set(self, threads: int) -> None:
        import torch

        if threads != self.threads:
            torch.set_num_threads(threads)
            self.threads = threads
