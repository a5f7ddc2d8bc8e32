"""How a local Ray's prestarted workers tell the driver that their preload is done: the driver
names a folder in ``PRELOADED_ENV`` before it starts Ray (the workers inherit it), and each
worker leaves a file named by its pid there once ``lora_hpo.training.worker_preload`` has imported
the trial's modules. Light on purpose: the driver imports it, and must not import torch."""

from __future__ import annotations

import os
from pathlib import Path

PRELOADED_ENV = "LORA_HPO_PRELOADED"


def mark_done() -> None:
    """In a worker: leave this process's mark in the driver's folder, if it named one."""
    folder = os.environ.get(PRELOADED_ENV)
    if folder and Path(folder).is_dir():
        Path(folder, str(os.getpid())).touch()
