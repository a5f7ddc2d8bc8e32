"""The ONE place where LoraConfig / AdaLoraConfig is built: target modules resolved against
the model's own Linear names, the config for one trial, and fresh LoRA layers attached to the
cached base model."""

from __future__ import annotations

from typing import Any

from lora_hpo.spec.search_space import TrialParams
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.spec.target_modules import is_head, match_targets
from lora_hpo.training.base_model import BaseModel, release

LINEAR_KINDS = ("Linear", "Conv1D", "Linear4bit", "Linear8bitLt")


def linear_module_names(model: Any) -> list[str]:
    """Dotted names of the model's Linear (and GPT-2 Conv1D, bitsandbytes Linear4bit /
    Linear8bitLt) modules, heads excluded."""
    out = []
    for name, module in model.named_modules():
        kind = type(module).__name__
        if kind in LINEAR_KINDS and not is_head(name):
            out.append(name)
    return out


def resolve_targets(model: Any, target: str | tuple[str, ...]) -> list[str] | str:
    """Module names to adapt; an error listing the model's own names when nothing matches."""
    return match_targets(linear_module_names(model), target)


def adapter_config(
    params: TrialParams, spec: StudySpec, targets: list[str] | str, total_steps: int
) -> Any:
    """The PEFT config for one trial: LoraConfig, or AdaLoraConfig with its budget."""
    from peft import AdaLoraConfig, LoraConfig, TaskType

    task_type = TaskType.CAUSAL_LM if spec.task == "causal-lm" else TaskType.SEQ_CLS
    common: dict[str, Any] = {
        "task_type": task_type,
        "lora_alpha": params.lora_alpha,
        "lora_dropout": params.lora_dropout,
        "target_modules": targets,
        "use_rslora": params.use_rslora,
    }
    if params.adapter == "adalora":
        ada = spec.space.adalora
        return AdaLoraConfig(
            **common,
            target_r=params.r,
            init_r=ada.init_r or max(params.r, round(params.r * 1.5)),
            tinit=ada.tinit,
            tfinal=ada.tfinal,
            deltaT=ada.delta_t,
            beta1=ada.beta1,
            beta2=ada.beta2,
            orth_reg_weight=ada.orth_reg_weight,
            total_step=total_steps,
        )
    return LoraConfig(**common, r=params.r)


def attach(entry: BaseModel, params: TrialParams, spec: StudySpec, seed: int) -> Any:
    """Wrap the cached base model with fresh LoRA layers for one trial."""
    import transformers
    from peft import get_peft_model

    release(entry)
    targets = resolve_targets(entry.model, params.target_modules)
    config = adapter_config(params, spec, targets, spec.training.max_steps)
    transformers.set_seed(seed)  # LoRA A init (and dropout) follow the trial's seed
    entry.peft = get_peft_model(entry.model, config)
    return entry.peft
