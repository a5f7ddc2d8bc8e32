"""Big-model settings on CPU: base weights in bf16 with fp32 LoRA on top, a 4-bit QLoRA trial
through the base-model cache with the quantized weights bit-identical after it, gradient
checkpointing and a bitsandbytes optimizer; all real PEFT training on MiniLM."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from lora_hpo.spec.search_space import derive
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.training.base_model import release
from lora_hpo.training.lora_adapters import attach
from lora_hpo.training.mixed_precision import load_kwargs, mixed_precision, weights_dtype
from lora_hpo.training.trainer_trial import prepare, run_trial
from tests.conftest import BASE_SPEC
from tests.tiny_models import weights_hash

pytestmark = pytest.mark.slow
PARAMS = {"r": 4, "alpha_ratio": 1.0, "learning_rate": 1e-3}


def _spec(model: dict[str, Any] | None = None, **training: Any) -> Any:
    data = copy.deepcopy(BASE_SPEC)
    data["model"] = {"demo": "minilm-l6"} | (model or {})
    data["data"].update(max_train_samples=64, max_eval_samples=32)
    data["training"] = {"max_steps": 4, "eval_every": 2, "batch_size": 8} | training
    data["search"]["scheduler"]["grace_period"] = 2
    return parse_spec(data)


def test_bf16_base_weights_with_fp32_lora_on_cpu() -> None:
    spec = _spec({"dtype": "bfloat16"})
    assert weights_dtype(spec) == "bfloat16" and mixed_precision(spec) == "fp32"  # CPU
    entry, _ = prepare(spec)
    assert {p.dtype for p in entry.model.parameters()} == {torch.bfloat16}
    peft_model = attach(entry, derive(spec.space, PARAMS), spec, seed=0)
    lora = {p.dtype for n, p in peft_model.named_parameters() if "lora_" in n}
    assert lora == {torch.float32}  # PEFT keeps the adapter in fp32
    release(entry)
    last = run_trial(spec, PARAMS, lambda m, c: None)
    assert last["status"] == "completed"


def test_auto_is_fp32_on_cpu() -> None:
    spec = _spec()
    assert weights_dtype(spec) == "float32"
    assert load_kwargs(spec)["dtype"] is torch.float32


def test_a_4bit_trial_through_the_cache_leaves_the_quantized_base_bit_identical() -> None:
    spec = _spec({"quantization": {"bits": 4, "quant_type": "nf4"}})
    entry, _ = prepare(spec)
    kinds = {type(m).__name__ for m in entry.model.modules()}
    assert "Linear4bit" in kinds
    before = weights_hash(entry.model)
    for lr in (1e-3, 3e-3):  # two trials on the one cached base
        last = run_trial(spec, PARAMS | {"learning_rate": lr}, lambda m, c: None)
        assert last["status"] == "completed"
    again, _ = prepare(spec)
    assert again is entry  # the cached base, not reloaded
    assert weights_hash(entry.model) == before


def test_8bit_base_gradient_checkpointing_and_a_paged_optimizer() -> None:
    spec = _spec(
        {"quantization": {"bits": 8}}, gradient_checkpointing=True, optim="paged_adamw_8bit"
    )
    reports: list[dict[str, Any]] = []
    last = run_trial(spec, PARAMS, lambda m, c: reports.append(m))
    assert [m["step"] for m in reports] == [2, 4] and last["status"] == "completed"
