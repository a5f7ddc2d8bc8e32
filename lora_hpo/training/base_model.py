"""The base model and tokenizer, loaded once per worker process and cached, at the dtype or
quantization the spec asks for (``mixed_precision.py``); a quantized base is prepared for k-bit
training (PEFT's ``prepare_model_for_kbit_training``).

A worker process keeps its loaded base model and tokenizer between trials (Ray reuses the
actor). Each trial attaches fresh LoRA layers with ``get_peft_model`` and the next trial starts
by unloading them (``unload()`` drops the adapter and restores the original modules), so the
base weights are never trained and never reloaded from disk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_hpo.files.content_hash import folder_hash
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.label_ids import mapping
from lora_hpo.training.mixed_precision import keep_4bit_exact_on_cpu, load_kwargs

log = logging.getLogger(__name__)


@dataclass
class BaseModel:
    model: Any
    tokenizer: Any
    source: str  # "demo:NAME", a hub id or a local path
    revision: str  # hub revision, or a content hash of the weights for local/demo sources
    head: dict[str, Any] = field(default_factory=dict)  # pristine classification head
    peft: Any = field(default=None)  # the PeftModel wrapping ``model`` during a trial


_CACHE: dict[tuple[Any, ...], BaseModel] = {}


def model_source(spec: StudySpec) -> tuple[str, str, str | None]:
    """(display source, from_pretrained location, revision) for the spec's model."""
    m = spec.model
    if m.demo is not None:
        from lora_hpo.training.demo_assets import demo_model_dir

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


def _from_pretrained(spec: StudySpec, labels: tuple[str, ...] | None) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    _, where, revision = model_source(spec)
    kwargs = {"revision": revision, **load_kwargs(spec)}
    if spec.task == "causal-lm":
        return AutoModelForCausalLM.from_pretrained(where, **kwargs)
    names = labels or ()
    return AutoModelForSequenceClassification.from_pretrained(
        where, num_labels=len(names), **mapping(names), **kwargs
    )


def load_base(spec: StudySpec, labels: tuple[str, ...] | None) -> BaseModel:
    """A freshly loaded base model (no cache): packed trials wrap their own copy."""
    import transformers

    source, where, revision = model_source(spec)
    tokenizer = load_tokenizer(spec)
    transformers.set_seed(0)  # the classification head's init is the same in every process
    model = _from_pretrained(spec, labels)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if spec.model.quantization is not None:
        from peft import prepare_model_for_kbit_training

        checkpointing = spec.training.gradient_checkpointing
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
        keep_4bit_exact_on_cpu(model)
    # PEFT trains a copy of the head (modules_to_save) and unload() keeps that copy: keep the
    # pristine head to put back, so every trial starts from the same base.
    head = {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if k.split(".")[0] in ("classifier", "score")
    }
    folder = Path(where)
    identity = revision or (f"sha256:{folder_hash(folder)}" if folder.is_dir() else "unpinned")
    return BaseModel(model, tokenizer, source, identity, head)


def base_model(spec: StudySpec, labels: tuple[str, ...] | None = None) -> BaseModel:
    """The cached base model for this spec, with any previous trial's adapter removed."""
    key = (spec.model, spec.task, labels)
    entry = _CACHE.get(key)
    if entry is None:
        _CACHE.clear()  # one base model per worker: a new study's model replaces the old one
        entry = _CACHE[key] = load_base(spec, labels)
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
