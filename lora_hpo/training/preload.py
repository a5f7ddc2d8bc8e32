"""What a local Ray's prestarted workers import as they start (Ray's
``preload_python_modules``, set by ``lora_hpo.search.runtime``): Tune's function trainable and
the trial's modules (torch, transformers, peft), seconds of CPU a slot's first trial would
otherwise wait for. Then the worker leaves a file named by its pid in the folder that
``PRELOADED_ENV`` names, so that the driver asks Tune for the trial actors only once the
workers are done: Ray gives an actor only a worker that has finished its preload, and starts
(and preloads) another process for one asked for earlier.

The file is left even when an import fails: the trial then fails with that error, as it would
without the preload.
"""

from __future__ import annotations

import os
from pathlib import Path

from lora_hpo.spec.env import PRELOADED_ENV

try:
    import ray.tune  # noqa: F401

    import lora_hpo.training.trial  # noqa: F401
finally:
    _folder = os.environ.get(PRELOADED_ENV)
    if _folder and Path(_folder).is_dir():
        Path(_folder, str(os.getpid())).touch()
