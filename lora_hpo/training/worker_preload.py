"""What a local Ray's prestarted workers import as they start (Ray's
``preload_python_modules``, set by ``lora_hpo.search.ray_runtime``): Tune's function trainable and
the trial's modules (torch, transformers, peft), seconds of CPU a slot's first trial would
otherwise wait for. Then the worker leaves its mark (``preload_marks``), so that the driver
asks Tune for the trial actors only once the workers are done: Ray gives an actor only a
worker that has finished its preload, and starts (and preloads) another process for one
asked for earlier.

The mark is left even when an import fails: the trial then fails with that error, as it would
without the preload.
"""

from __future__ import annotations

from lora_hpo.training.preload_marks import mark_done

try:
    import ray.tune  # noqa: F401

    import lora_hpo.training.trainer_trial  # noqa: F401
finally:
    mark_done()
