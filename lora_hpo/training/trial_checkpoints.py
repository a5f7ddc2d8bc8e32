"""A trial's checkpoint, one format for a trial that transformers' Trainer trains and for a
packed adapter: the PEFT adapter (``adapter_model.safetensors``, ``adapter_config.json``), the
optimizer and schedule states under the Trainer's names (``optimizer.pt``, ``scheduler.pt``),
``trainer_state.json`` with the step, and the trial record (``training.trial_report.write_record``)
that lists every other file with its size. The rules that must agree between the two are here:
which of a trial's checkpoints it resumes from (the newest complete one), how training state
is saved and read back (tensors and plain values only: read with ``weights_only=True``, since
a checkpoint comes back from shared storage), and that a trial restored from its final
checkpoint reports it again and trains no further."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lora_hpo.files.file_names import TRIAL_FILE
from lora_hpo.spec.spec_schema import StudySpec

OPTIMIZER = "optimizer.pt"
SCHEDULER = "scheduler.pt"
TRAINER_STATE = "trainer_state.json"
TRAINING_STATE = "training_state.pt"  # a packed adapter's data order, loss window, watch


def newest_checkpoint(checkpoint: Any) -> Any:
    """The trial's newest complete checkpoint (a ``tune.Checkpoint``). After a driver crash
    Tune restores from the checkpoint named in its last experiment snapshot, which may be older
    than the trial's last report; the trial directory holds the newer ones (the steps after it
    were already reported), the newest possibly half-copied to storage by a killed process or
    a lost node."""
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
    size."""
    from pyarrow import fs

    record = f"{path}/{TRIAL_FILE}"
    if filesystem.get_file_info(record).type != fs.FileType.File:
        return False
    with filesystem.open_input_stream(record) as src:
        files = json.loads(bytes(src.read()).decode()).get("files")
    if not isinstance(files, dict):  # a record without the list: its trainer state decides
        files = {TRAINER_STATE: None}
    found = filesystem.get_file_info([f"{path}/{name}" for name in files])
    return all(
        info.type == fs.FileType.File and size in (None, info.size)
        for info, size in zip(found, files.values(), strict=True)
    )


def checkpoint_step(folder: Path) -> int:
    return int(json.loads((folder / TRAINER_STATE).read_text())["global_step"])


def final_report(folder: Path, spec: StudySpec) -> dict[str, Any] | None:
    """The report to give again when a trial is restored from its final checkpoint (its driver
    died after the last report): that checkpoint's record; None when training goes on."""
    metrics: dict[str, Any] = json.loads((folder / TRIAL_FILE).read_text())["metrics"]
    return metrics if metrics.get("step", 0) >= spec.training.max_steps else None


def save_training_state(
    folder: Path, optimizer: Any, schedule: Any, step: int, more: dict[str, Any]
) -> None:
    """The optimizer, the schedule and the step under the Trainer's names, and ``more``
    (tensors and plain values) in ``TRAINING_STATE``."""
    import torch

    torch.save(optimizer.state_dict(), folder / OPTIMIZER)
    torch.save(schedule.state_dict(), folder / SCHEDULER)
    torch.save(more, folder / TRAINING_STATE)
    (folder / TRAINER_STATE).write_text(json.dumps({"global_step": step}))


def load_training_state(folder: Path, optimizer: Any, schedule: Any) -> tuple[int, Any]:
    """Read back what ``save_training_state`` wrote (``weights_only``: no pickled code);
    (the step, ``more``)."""
    import torch

    optimizer.load_state_dict(torch.load(folder / OPTIMIZER, weights_only=True))
    schedule.load_state_dict(torch.load(folder / SCHEDULER, weights_only=True))
    more = torch.load(folder / TRAINING_STATE, weights_only=True)
    return checkpoint_step(folder), more
