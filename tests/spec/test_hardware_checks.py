"""What a trial's resources cannot run is an error when the spec loads, naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lora_hpo.spec import hardware_checks as hardware
from lora_hpo.spec.spec_errors import SpecError
from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import BASE_SPEC


def _spec(model: dict[str, Any] | None = None, gpu: float = 0, **training: Any) -> Any:
    data = copy.deepcopy(BASE_SPEC)
    data["model"] = {"demo": "minilm-l6"} | (model or {})
    data["training"] |= training
    data["resources"] = {"cpu": 1, "gpu": gpu}
    return parse_spec(data)


@pytest.mark.parametrize(
    ("model", "training", "field", "fragment"),
    [
        ({"dtype": "float16"}, {}, "model.dtype", "float16 needs a GPU"),
        ({}, {"precision": "fp16"}, "training.precision", "fp16 mixed precision needs a GPU"),
        ({"attn_implementation": "flash_attention_2"}, {}, "model.attn_implementation",
         "flash_attention_2 needs a GPU"),
        ({}, {"optim": "adamw_apex"}, "training.optim", "must be one of"),
        ({"quantization": {"bits": 3}}, {}, "model.quantization.bits", "must be one of [4, 8]"),
        ({"quantization": {"bits": 4, "quant_type": "nf5"}}, {}, "model.quantization.quant_type",
         "did you mean 'nf4'"),
    ],
)  # fmt: skip
def test_what_cpu_trials_cannot_run_is_refused(
    model: dict[str, Any], training: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as err:
        _spec(model, **training)
    assert f"{field}: " in str(err.value) and fragment in str(err.value), str(err.value)


def test_half_precision_and_quantization_are_fine_with_a_gpu() -> None:
    spec = _spec({"dtype": "float16", "quantization": {"bits": 4}}, gpu=0.5, precision="fp16")
    assert spec.model.quantization is not None and spec.model.quantization.bits == 4
    assert _spec({"dtype": "bfloat16"}).model.dtype == "bfloat16"  # bf16 runs on CPU too


def test_quantization_without_bitsandbytes_names_the_extra(monkeypatch: Any) -> None:
    monkeypatch.setattr(hardware, "installed", lambda package: package != "bitsandbytes")
    with pytest.raises(SpecError, match=r"model\.quantization: needs bitsandbytes.*\[qlora\]"):
        _spec({"quantization": {"bits": 4}})
    with pytest.raises(SpecError, match=r"training\.optim: needs bitsandbytes"):
        _spec(optim="paged_adamw_8bit")


def test_the_optimizer_names_are_transformers_own() -> None:
    from transformers.training_args import OptimizerNames

    from lora_hpo.spec.registries import OPTIMIZERS

    assert set(OPTIMIZERS) <= {o.value for o in OptimizerNames}
