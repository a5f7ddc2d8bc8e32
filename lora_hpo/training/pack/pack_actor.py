"""The pack worker: a threaded Ray actor that holds one base model and a ``PackRunner`` with
``search.pack`` slots. It asks for what one unpacked trial asks for (``resources``); the
trials that use it are thin Tune trials (``pack_client.py``) that call ``claim``, ``next`` and
``drop``, each call on its own actor thread, while the runner's thread trains."""

from __future__ import annotations

import os
from typing import Any

from lora_hpo.spec.spec_schema import StudySpec

CALLS_PER_SLOT = 2  # a slot's ``next`` waiting, and its ``drop`` or a ``claim`` arriving
SPARE_CALLS = 4  # claims that find the pack full


class PackActor:
    """One pack. Created through ``ray.remote`` by ``lora_hpo.search.pack_actors``."""

    def __init__(self, spec: StudySpec, capacity: int) -> None:
        import torch  # before anything of Ray's spawns threads that touch it

        from lora_hpo.training.pack.pack_runner import PackRunner
        from lora_hpo.training.quiet_logs import quiet_libraries
        from lora_hpo.training.tune_trainable import placement

        quiet_libraries()
        torch.set_num_threads(max(1, int(spec.resources.cpu)))  # as an unpacked trial does
        where = {**placement(), "pack_pid": os.getpid()}  # which pack a trial trained in
        self.runner = PackRunner(spec, capacity, where)

    def claim(self, key: str, sampled: dict[str, Any], restore: bytes | None) -> bool:
        return self.runner.claim(key, sampled, restore)

    def next(self, key: str) -> tuple[dict[str, Any], bytes]:
        return self.runner.next(key)

    def drop(self, key: str) -> None:
        self.runner.drop(key)

    def stop(self) -> None:
        """End the training thread and remove the pack's scratch folder (the study is over)."""
        self.runner.stop()


def max_calls(capacity: int) -> int:
    """The actor's ``max_concurrency``: every slot's blocking call, plus spare ones."""
    return CALLS_PER_SLOT * capacity + SPARE_CALLS
