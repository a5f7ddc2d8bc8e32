"""The preflight: on the driver, before any trial is scheduled, everything a trial would find
wrong in seconds: the model's config and tokenizer resolve, the data loads and a sample
tokenises, the labels are consistent, the target modules match, ``max_length`` fits. Each
failure is a UsageError (exit 2) naming the field; on a cluster it runs where the study runs,
so a path the cluster cannot read fails the job at once."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from lora_hpo.spec.memory_estimate import Shape, describe_memory, estimate_for
from lora_hpo.spec.space_params import listed
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.base_model import load_tokenizer, model_source
from lora_hpo.training.lora_adapters import LINEAR_KINDS, resolve_targets
from lora_hpo.training.row_encoding import encode_splits
from lora_hpo.training.trial_data import check_splits, load_raw

SAMPLE_ROWS = 8
HINT_CLUSTER = (
    " (the study runs on the cluster: put the files on a volume every node mounts, or give an"
    " s3:// URI or a hub dataset)"
)


@dataclass(frozen=True)
class Preflight:
    seconds: float
    train_rows: int
    eval_rows: int
    labels: int | None
    memory: str = ""  # the per-trial memory estimate, in words
    memory_bytes: int = 0

    def line(self) -> str:
        labels = f", {self.labels} labels" if self.labels else ""
        head = (
            f"preflight: model, tokenizer, data ({self.train_rows} train / {self.eval_rows} eval"
            f" rows{labels}) and target modules ok in {self.seconds:.1f} s"
        )
        return f"{head}\n{self.memory}" if self.memory else head


def _model_field(spec: StudySpec) -> str:
    m = spec.model
    return "model.demo" if m.demo else "model.hub" if m.hub else "model.path"


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers at all (a closed network fails at once)."""
    import socket
    from urllib.parse import urlsplit

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "", port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def _load_config(spec: StudySpec) -> Any:
    """The model's config; a hub id is looked up in the local cache first, and the hub is
    asked only when it can be reached (otherwise every library retries for a minute)."""
    from transformers import AutoConfig

    _, where, revision = model_source(spec)
    if spec.model.hub is None:
        return AutoConfig.from_pretrained(where, revision=revision)
    try:
        return AutoConfig.from_pretrained(where, revision=revision, local_files_only=True)
    except OSError:
        if not _hub_reachable():
            offline = os.environ.get("HF_HUB_OFFLINE") or "unset"
            raise UsageError(
                f"model.hub: {where!r} is not in the local Hugging Face cache, and the hub"
                f" cannot be reached (HF_HUB_OFFLINE={offline}); download it first where the"
                " hub is reachable, or give model.path to a local folder"
            ) from None
        return AutoConfig.from_pretrained(where, revision=revision)


def _resolve(spec: StudySpec) -> tuple[Any, Any]:
    """(tokenizer, config), or a UsageError that names the model field."""
    try:
        config = _load_config(spec)
        return load_tokenizer(spec), config
    except (OSError, ValueError, KeyError) as exc:
        field = _model_field(spec)
        reason = " ".join(str(exc).split())[:300]
        _, where, _ = model_source(spec)
        raise UsageError(f"{field}: cannot load {where!r}: {reason}") from None


def _skeleton(spec: StudySpec, config: Any) -> Any:
    """The model built on the meta device: its modules and shapes, no weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    auto = AutoModelForCausalLM if spec.task == "causal-lm" else AutoModelForSequenceClassification
    with torch.device("meta"):
        return auto.from_config(config)


def shape_of(skeleton: Any, config: Any) -> Shape:
    """The memory estimate's view of a model: Linear weight shapes and the other params."""
    linears, other = {}, 0
    for name, module in skeleton.named_modules():
        weight = getattr(module, "weight", None)
        if type(module).__name__ in LINEAR_KINDS and weight is not None and weight.dim() == 2:
            linears[name] = (int(weight.shape[0]), int(weight.shape[1]))
    seen = {id(m.weight) for n, m in skeleton.named_modules() if n in linears}
    other = sum(p.numel() for p in skeleton.parameters() if id(p) not in seen)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    return Shape(
        linears=linears,
        other_params=other,
        hidden=hidden,
        layers=int(getattr(config, "num_hidden_layers", 0) or 0),
        vocab=int(getattr(config, "vocab_size", 0) or 0),
        intermediate=int(getattr(config, "intermediate_size", 0) or 4 * hidden),
        heads=int(getattr(config, "num_attention_heads", 1) or 1),
    )


def _check_length(spec: StudySpec, config: Any) -> None:
    limit = getattr(config, "max_position_embeddings", None)
    if isinstance(limit, int) and spec.data.max_length > limit:
        raise UsageError(
            f"data.max_length: must be <= {limit}, the longest input of the model, but got"
            f" {spec.data.max_length}"
        )


def preflight(spec: StudySpec, on_cluster: bool = False) -> Preflight:
    """Run every check; the first failure raises UsageError."""
    start = time.perf_counter()
    tokenizer, config = _resolve(spec)
    _check_length(spec, config)
    try:
        train, evaluation = load_raw(spec)
    except UsageError as exc:
        raise UsageError(f"{exc}{HINT_CLUSTER if on_cluster else ''}") from None
    names = check_splits(spec, train, evaluation)
    head = [split.select(range(min(SAMPLE_ROWS, len(split)))) for split in (train, evaluation)]
    encode_splits(spec, tokenizer, head[0], head[1], names)  # a sample tokenises
    skeleton = _skeleton(spec, config)
    for target in listed(spec.space.target_modules):
        resolve_targets(skeleton, target)
    labels = len(names) if names else None
    shape = shape_of(skeleton, config)
    memory = estimate_for(spec, shape, labels or 0)
    return Preflight(
        time.perf_counter() - start,
        len(train),
        len(evaluation),
        labels,
        describe_memory(spec, shape, labels or 0),
        memory.total,
    )
