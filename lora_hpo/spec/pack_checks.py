"""Packed trials (``search.pack``): what a packed study can train, and the line that says how
its trials, packs and resources combine (``validate`` and ``show-space`` print it)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from lora_hpo.spec.problem_rules import at_least
from lora_hpo.spec.space_params import can_be
from lora_hpo.spec.spec_errors import Problem
from lora_hpo.spec.spec_schema import ResourcesSpec, SearchSpec, SpaceSpec, TrainingSpec

PACKED_OPTIMIZERS = ("adamw_torch", "adamw_torch_fused")


def check_pack(search: SearchSpec, training: TrainingSpec, space: SpaceSpec) -> Iterator[Problem]:
    """What packed training does not do (yet), each refused by the field that asks for it."""
    yield from at_least(search.pack, 1, "search.pack")
    if search.pack <= 1:
        return
    why = f"search.pack is {search.pack}: packed trials"
    if can_be(space.adapter, "adalora"):
        yield Problem("space.adapter", f"{why} train LoRA only, but adalora is allowed")
    if training.gradient_accumulation != 1:
        yield Problem(
            "training.gradient_accumulation",
            f"{why} take one micro-batch per step (1), but got {training.gradient_accumulation}",
        )
    if training.gradient_checkpointing:
        yield Problem("training.gradient_checkpointing", f"{why} do not checkpoint; set false")
    if training.precision == "fp16":
        yield Problem(
            "training.precision", f"{why} run in fp32 or bf16 (no fp16 loss scaling), got fp16"
        )
    if training.optim not in PACKED_OPTIMIZERS:
        yield Problem(
            "training.optim",
            f"{why} use one of {list(PACKED_OPTIMIZERS)}, but got {training.optim!r}",
        )


def explain_pack(search: SearchSpec, resources: ResourcesSpec) -> str | None:
    """How the trials, packs and resources combine; None for an unpacked study."""
    k = search.pack
    if k <= 1:
        return None
    packs = math.ceil(search.max_concurrent / k)
    gpu = f", {resources.gpu:g} GPU" if resources.gpu else ""
    per_gpu = ""
    if 0 < resources.gpu < 1:
        per_gpu = f"; {math.floor(1 / resources.gpu)} packs share a GPU"
    return (
        f"packed: {search.max_concurrent} trials at once in {packs} pack(s) of up to {k}, each"
        f" pack one worker with one base model and one trial's resources ({resources.cpu:g}"
        f" CPU{gpu}){per_gpu}; each adapter is still its own trial"
    )
