"""The Ray Tune function trainable around ``run_trial``: where the trial runs (node, devices),
reports through ``tune.report`` with the adapter as a ``tune.Checkpoint``, and resume from the
trial's newest complete checkpoint.

The driver imports this module to hand the function to Tune, so it imports the trial itself
(torch, transformers, peft: seconds of CPU) only in the worker that runs it; a local Ray's
workers import that ahead (``lora_hpo.search.ray_runtime.PRELOAD``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.trial_checkpoints import checkpoint_step, final_report, newest_checkpoint
from lora_hpo.training.trial_threads import LentThreads


def placement() -> dict[str, Any]:
    """Where this trial runs: its node and the devices Ray assigned it."""
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
    }


def _restore(work: str, spec: StudySpec) -> tuple[str | None, dict[str, Any] | None]:
    """(checkpoint dir to resume from, the final report when the trial had already finished)
    from ``tune.get_checkpoint()``; (None, None) for a fresh trial."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None, None
    checkpoint = newest_checkpoint(checkpoint)
    restored = Path(checkpoint.to_directory(os.path.join(work, "restore")))
    resume_from = os.path.join(work, f"checkpoint-{checkpoint_step(restored)}")
    os.rename(restored, resume_from)
    return resume_from, final_report(Path(resume_from), spec)


def tune_trainable(
    config: dict[str, Any], spec: StudySpec, threads: LentThreads | None = None
) -> None:
    """The Ray Tune function trainable: resumes from ``tune.get_checkpoint()`` when given;
    follows the threads the driver lends (``threads``) when given."""
    from ray import tune

    from lora_hpo.training.quiet_logs import quiet_libraries
    from lora_hpo.training.trainer_trial import run_trial

    quiet_libraries()
    where = placement()

    def report(metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**metrics, **where}, checkpoint=ckpt)

    with Scratch("trial") as work:  # its checkpoints: swept later if the worker is killed
        resume_from, final = _restore(work, spec)
        if resume_from is not None and final is not None:
            report(final, resume_from)  # it died after its last report: report it again
            return
        run_trial(spec, config, report, resume_from=resume_from, workdir=work, threads=threads)
