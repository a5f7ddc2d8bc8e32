"""The Ray Tune function trainable around ``run_trial``: where the trial runs (node, devices),
reports through ``tune.report`` with the adapter as a ``tune.Checkpoint``, and resume from the
trial's newest complete checkpoint.

The driver imports this module to hand the function to Tune, so it imports the trial itself
(torch, transformers, peft: seconds of CPU) only in the worker that runs it; a local Ray's
workers import that ahead (``lora_hpo.search.runtime.PRELOAD``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from lora_hpo.spec.env import WORKER_ENV
from lora_hpo.spec.files import TRIAL_FILE
from lora_hpo.spec.schema import StudySpec
from lora_hpo.spec.scratch import Scratch


def newest_checkpoint(checkpoint: Any) -> Any:
    """The trial's newest complete checkpoint. After a driver crash Tune restores from the
    checkpoint named in its last experiment snapshot, which may be older than the trial's last
    report; the trial directory holds the newer ones (the steps after it were already
    reported), the newest possibly half-copied to storage by a killed process or a lost node."""
    from pyarrow import fs
    from ray import tune

    filesystem, parent = checkpoint.filesystem, checkpoint.path.rstrip("/").rsplit("/", 1)[0]
    found = filesystem.get_file_info(fs.FileSelector(parent, allow_not_found=True))
    names = [i.base_name for i in found if i.type == fs.FileType.Directory]
    for name in sorted((n for n in names if n.startswith("checkpoint_")), reverse=True):
        path = f"{parent}/{name}"
        if complete(filesystem, path):
            return tune.Checkpoint(path, filesystem=filesystem)
    return checkpoint


def complete(filesystem: Any, path: str) -> bool:
    """Whether a checkpoint holds its trial record and every file the record lists, at its
    size (``training.report.write_record``)."""
    from pyarrow import fs

    record = f"{path}/{TRIAL_FILE}"
    if filesystem.get_file_info(record).type != fs.FileType.File:
        return False
    with filesystem.open_input_stream(record) as src:
        files = json.loads(bytes(src.read()).decode()).get("files")
    if not isinstance(files, dict):  # a record without the list: its trainer state decides
        files = {"trainer_state.json": None}
    found = filesystem.get_file_info([f"{path}/{name}" for name in files])
    return all(
        info.type == fs.FileType.File and size in (None, info.size)
        for info, size in zip(found, files.values(), strict=True)
    )


def placement() -> dict[str, Any]:
    """Where this trial runs: node, the devices Ray assigned, when it started, and the worker
    settings it sees."""
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "started_at": time.time(),
        "process_started_at": _process_started_at(),
        # the worker settings as this trial process sees them (they must reach it in a job)
        **{f"env_{k}": os.environ.get(k, "") for k in WORKER_ENV},
    }


def _process_started_at() -> float:
    """When this worker process started (the lead before a trial: worker start, then imports)."""
    import psutil

    return float(psutil.Process().create_time())


def _restore(work: str) -> tuple[str | None, dict[str, Any] | None]:
    """(checkpoint dir to resume from, the final report when the trial had already finished)
    from ``tune.get_checkpoint()``; (None, None) for a fresh trial."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None, None
    checkpoint = newest_checkpoint(checkpoint)
    restored = Path(checkpoint.to_directory(os.path.join(work, "restore")))
    state = json.loads((restored / "trainer_state.json").read_text())
    resume_from = os.path.join(work, f"checkpoint-{state['global_step']}")
    os.rename(restored, resume_from)
    record = json.loads(Path(resume_from, TRIAL_FILE).read_text())
    return resume_from, record["metrics"]


def tune_trainable(
    config: dict[str, Any], spec: StudySpec, threads_file: str | None = None
) -> None:
    """The Ray Tune function trainable: resumes from ``tune.get_checkpoint()`` when given;
    follows the driver's thread count in ``threads_file`` when given."""
    from ray import tune

    from lora_hpo.training.quiet import quiet_libraries
    from lora_hpo.training.trial import run_trial

    quiet_libraries()
    where = placement()

    def report(metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**metrics, **where, "reported_at": time.time()}, checkpoint=ckpt)

    with Scratch("trial") as work:  # its checkpoints: swept later if the worker is killed
        resume_from, last = _restore(work)
        if resume_from is not None and last is not None and last["step"] >= spec.training.max_steps:
            report(last, resume_from)  # it died after its last report: report it again
            return
        run_trial(
            spec, config, report, resume_from=resume_from, workdir=work, threads_file=threads_file
        )
