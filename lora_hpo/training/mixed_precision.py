"""How a trial's base model sits in memory: its dtype (``model.dtype``; ``auto`` is bf16 on a
GPU that has it, else fp32), its quantization (``model.quantization``: bitsandbytes 4- or
8-bit, task heads left out), its attention kernel, and the Trainer's mixed-precision flags,
which follow the dtype. LoRA weights stay fp32 (PEFT casts the adapter up)."""

from __future__ import annotations

from typing import Any

from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.spec.target_modules import HEADS


def _gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _bf16_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def weights_dtype(spec: StudySpec) -> str:
    """float32 | bfloat16 | float16: what the base weights load as."""
    want = spec.model.dtype
    if want == "auto":
        return "bfloat16" if _bf16_gpu() else "float32"
    return want


def compute_dtype(spec: StudySpec) -> str:
    """The dtype quantized layers compute in (``quantization.compute_dtype``; auto: the
    weights' dtype, or bf16 when the weights are fp32 on a GPU that has it)."""
    q = spec.model.quantization
    if q is not None and q.compute_dtype != "auto":
        return q.compute_dtype
    dtype = weights_dtype(spec)
    return "bfloat16" if dtype == "float32" and _bf16_gpu() else dtype


def mixed_precision(spec: StudySpec) -> str:
    """fp32 | bf16 | fp16 for the Trainer: ``training.precision``, whose ``auto`` follows the
    weights' dtype (and is bf16 for quantized bases on a GPU that has it)."""
    want = spec.training.precision
    if want != "auto":
        return want
    dtype = compute_dtype(spec) if spec.model.quantization else weights_dtype(spec)
    if not _gpu():
        return "fp32"
    return {"bfloat16": "bf16", "float16": "fp16"}.get(dtype, "fp32")


def torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def quantization_config(spec: StudySpec) -> Any:
    """transformers' BitsAndBytesConfig for ``model.quantization`` (None without one). Task
    heads are skipped: PEFT trains a copy of them, which bitsandbytes cannot hold."""
    q = spec.model.quantization
    if q is None:
        return None
    from transformers import BitsAndBytesConfig

    skip = list(HEADS)
    if q.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.quant_type,
        bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_compute_dtype=torch_dtype(compute_dtype(spec)),
        llm_int8_skip_modules=skip,
    )


def load_kwargs(spec: StudySpec) -> dict[str, Any]:
    """The from_pretrained arguments for the base weights' dtype, quantization and attention."""
    kwargs: dict[str, Any] = {"dtype": torch_dtype(weights_dtype(spec))}
    quant = quantization_config(spec)
    if quant is not None:
        kwargs["quantization_config"] = quant
        if _gpu():
            import torch

            kwargs["device_map"] = {"": torch.cuda.current_device()}
    if spec.model.attn_implementation is not None:
        kwargs["attn_implementation"] = spec.model.attn_implementation
    return kwargs


def keep_4bit_exact_on_cpu(model: Any) -> None:
    """Turn off bitsandbytes' CPU inference fast path on every 4-bit layer. In eval mode it
    repacks the quantized weights in place, and training mode unpacks them with a lossy
    ("best-effort") inverse, so every eval between training steps would drift the frozen
    base, and the next trial would start from another one. With it off, the packed weights
    and their quantization state stay bit-identical (tests/training/test_mixed_precision.py)."""
    import torch

    if torch.cuda.is_available():
        return
    for module in model.modules():
        if type(module).__name__ == "Linear4bit" and hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
