"""Rules for what a trial's resources can run, checked when the spec loads (before anything
is reserved): half precision and flash attention need a GPU; 8-bit optimizers and
quantization need bitsandbytes; the optimizer is one of the names transformers knows. Which
packages are installed is read with ``importlib.util.find_spec`` (nothing is imported)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

from lora_hpo.spec.registries import OPTIMIZERS
from lora_hpo.spec.spec_errors import Problem
from lora_hpo.spec.spec_schema import ModelSpec, ResourcesSpec, TrainingSpec

NEEDS_BNB = ("adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit")


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def check_hardware(m: ModelSpec, t: TrainingSpec, r: ResourcesSpec) -> Iterator[Problem]:
    cpu_only = r.gpu == 0
    if cpu_only and m.dtype == "float16":
        yield Problem(
            "model.dtype",
            "float16 needs a GPU (resources.gpu > 0), but resources.gpu is 0: CPUs do not train"
            " in fp16; use float32 or bfloat16",
        )
    if cpu_only and t.precision == "fp16":
        yield Problem(
            "training.precision",
            "fp16 mixed precision needs a GPU (resources.gpu > 0), but resources.gpu is 0; use"
            " fp32 or bf16",
        )
    yield from _check_attention(m, cpu_only)
    if t.optim not in OPTIMIZERS:
        yield Problem("training.optim", f"must be one of {list(OPTIMIZERS)}, but got {t.optim!r}")
    needs = ["model.quantization"] if m.quantization else []
    needs += ["training.optim"] if t.optim in NEEDS_BNB else []
    if needs and not installed("bitsandbytes"):
        for field in needs:
            yield Problem(
                field, "needs bitsandbytes, which is not installed: pip install 'lora-hpo[qlora]'"
            )


def _check_attention(m: ModelSpec, cpu_only: bool) -> Iterator[Problem]:
    if m.attn_implementation != "flash_attention_2":
        return
    if cpu_only:
        yield Problem(
            "model.attn_implementation",
            "flash_attention_2 needs a GPU, but resources.gpu is 0; use sdpa",
        )
    elif not installed("flash_attn"):
        yield Problem(
            "model.attn_implementation",
            "flash_attention_2 needs the flash-attn package, which is not installed; use sdpa",
        )
