"""Base-model cache and the ONE place where LoraConfig / AdaLoraConfig is built.

A worker process keeps its loaded base model and tokenizer between trials (Ray reuses the
actor). Each trial attaches fresh LoRA layers with ``get_peft_model`` and the next trial starts
by unloading them (``unload()`` drops the adapter and restores the original modules), so the
base weights are never trained and never reloaded from disk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lora_hpo.errors import UsageError
from lora_hpo.registry import TARGET_PRESETS
from lora_hpo.space import TrialParams
from lora_hpo.spec import StudySpec

log = logging.getLogger(__name__)

_HEADS = ("classifier", "score", "lm_head", "pooler", "cls")  # never targeted by presets


@dataclass
class BaseModel:
    model: Any
    tokenizer: Any
    source: str  # "demo:NAME", a hub id or a local path
    revision: str  # hub revision, or a content hash of the weights for local/demo sources
    head: dict[str, Any] = field(default_factory=dict)  # pristine classification head
    peft: Any = field(default=None)  # the PeftModel wrapping ``model`` during a trial


_CACHE: dict[tuple[Any, ...], BaseModel] = {}
LOAD_COUNT: dict[str, int] = {}  # source -> from_pretrained calls in this process


def model_source(spec: StudySpec) -> tuple[str, str, str | None]:
    """(display source, from_pretrained location, revision) for the spec's model."""
    m = spec.model
    if m.demo is not None:
        from lora_hpo.demos import demo_model_dir

        return f"demo:{m.demo}", str(demo_model_dir(m.demo)), None
    if m.hub is not None:
        return m.hub, m.hub, m.revision
    return str(m.path), str(m.path), None


_TOKENIZERS: dict[Any, Any] = {}


def load_tokenizer(spec: StudySpec) -> Any:
    """The model's tokenizer (cached per process), with a pad token."""
    if spec.model not in _TOKENIZERS:
        from transformers import AutoTokenizer

        _, where, revision = model_source(spec)
        tokenizer = AutoTokenizer.from_pretrained(where, revision=revision)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        _TOKENIZERS.clear()
        _TOKENIZERS[spec.model] = tokenizer
    return _TOKENIZERS[spec.model]


def _load(spec: StudySpec, num_labels: int | None) -> BaseModel:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    source, where, revision = model_source(spec)
    tokenizer = load_tokenizer(spec)
    transformers.set_seed(0)  # the classification head's init is the same in every process
    if spec.task == "causal-lm":
        model = AutoModelForCausalLM.from_pretrained(where, revision=revision, dtype=torch.float32)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            where, revision=revision, num_labels=num_labels, dtype=torch.float32
        )
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
    LOAD_COUNT[source] = LOAD_COUNT.get(source, 0) + 1
    # PEFT trains a copy of the head (modules_to_save) and unload() keeps that copy: keep the
    # pristine head to put back, so every trial starts from the same base.
    head = {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if k.split(".")[0] in ("classifier", "score")
    }
    return BaseModel(model, tokenizer, source, revision or weights_hash(model), head)


def base_model(spec: StudySpec, num_labels: int | None = None) -> BaseModel:
    """The cached base model for this spec, with any previous trial's adapter removed."""
    key = (spec.model, spec.task, num_labels)
    entry = _CACHE.get(key)
    if entry is None:
        _CACHE.clear()  # one base model per worker: a new study's model replaces the old one
        entry = _CACHE[key] = _load(spec, num_labels)
    release(entry)
    return entry


def release(entry: BaseModel) -> None:
    """Drop a trial's LoRA layers (also after a trial that was stopped mid-way)."""
    if entry.peft is not None:
        entry.model = entry.peft.unload()
        entry.peft = None
        if entry.head:
            entry.model.load_state_dict(entry.head, strict=False)
    entry.model.train(False)


def weights_hash(model: Any) -> str:
    """A content hash of the base weights (lineage for local sources; tests check it)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().sum().item().hex().encode())
            digest.update(tensor.detach().float().abs().sum().item().hex().encode())
    return digest.hexdigest()[:16]


def linear_module_names(model: Any) -> list[str]:
    """Dotted names of the model's Linear (and GPT-2 Conv1D) modules, heads excluded."""
    out = []
    for name, module in model.named_modules():
        kind = type(module).__name__
        if kind in ("Linear", "Conv1D") and not any(p in _HEADS for p in name.split(".")):
            out.append(name)
    return out


def resolve_targets(model: Any, target: str | tuple[str, ...]) -> list[str] | str:
    """Module names to adapt; an error listing the model's own names when nothing matches."""
    if target == "all-linear":
        return "all-linear"
    names = linear_module_names(model)
    wanted = TARGET_PRESETS.get(target, ()) if isinstance(target, str) else target
    matched = sorted({w for w in wanted for n in names if n == w or n.endswith("." + w)})
    missing = [] if isinstance(target, str) else [w for w in wanted if w not in matched]
    if not matched or missing:
        leaves = sorted({n.split(".")[-1] for n in names})
        what = f"preset {target!r}" if isinstance(target, str) else f"{missing or list(wanted)}"
        raise UsageError(
            f"space.target_modules: {what} matches no module of this model; its Linear modules"
            f" are named {leaves} (full names like {names[:3]})"
        )
    return matched


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
