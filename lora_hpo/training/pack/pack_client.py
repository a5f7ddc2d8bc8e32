"""The Tune trial of a packed study: a thin client of a pack. It claims a slot in one of the
study's packs with its config (and, when Tune restores it, its checkpoint), relays each report
the pack gives it through ``tune.report`` with the checkpoint, and frees the slot when it
ends, however it ends (``tune.report`` raises when the scheduler stops the trial)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.pack.pack_archive import pack_folder, unpack_folder
from lora_hpo.training.quiet_logs import quiet_loggers

CLAIM_WAIT_S = 600.0  # a freed slot reaches its pack within a second; a pack may still be
# waiting for a node (the autoscaler), so claims retry for this long


class NoFreeSlot(RuntimeError):
    pass


def _restore_bytes() -> bytes | None:
    from ray import tune

    from lora_hpo.training.trial_checkpoints import newest_checkpoint

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with newest_checkpoint(checkpoint).as_directory() as folder:
        return pack_folder(Path(folder))


def claim(packs: list[str], namespace: str, key: str, config: dict[str, Any], restore: Any) -> Any:
    """The handle of the pack that took trial ``key``; tries the packs in turn until one has
    a free slot."""
    import ray

    deadline, pause = time.monotonic() + CLAIM_WAIT_S, 0.05
    start = hash(key) % len(packs)  # spread first claims over the packs
    while True:
        for i in range(len(packs)):
            handle = ray.get_actor(packs[(start + i) % len(packs)], namespace=namespace)
            if ray.get(handle.claim.remote(key, config, restore)):
                return handle
        if time.monotonic() > deadline:
            raise NoFreeSlot(f"no pack of {packs} had a free slot for {CLAIM_WAIT_S:.0f} s")
        time.sleep(pause)
        pause = min(1.0, pause * 2)


def packed_trainable(
    config: dict[str, Any], spec: StudySpec, packs: list[str], namespace: str
) -> None:
    """The Ray Tune function trainable of a packed study."""
    import ray
    from ray import tune

    quiet_loggers()
    key = tune.get_context().get_trial_id()
    handle = claim(packs, namespace, key, config, _restore_bytes())
    try:
        while True:
            metrics, blob = ray.get(handle.next.remote(key))
            with Scratch("packed") as work:
                folder = unpack_folder(blob, Path(work) / f"checkpoint-{metrics['step']}")
                ckpt = tune.Checkpoint.from_directory(str(folder))
                tune.report(metrics, checkpoint=ckpt)
            if metrics["status"] != "running":
                return
    finally:
        handle.drop.remote(key)
