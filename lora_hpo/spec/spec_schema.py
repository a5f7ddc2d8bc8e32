"""The study spec: frozen dataclasses, one per YAML section.

Each field's ``help`` metadata documents it; ``spec_parse.py`` builds these from YAML, collecting
every problem; ``spec_checks.py`` holds the cross-field rules and ``guardrails.py`` the warnings.
Search-space parameters (fixed, range, choices) are in ``space_params.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lora_hpo.spec.space_params import SplitFiles, doc
from lora_hpo.spec.space_schema import PARAM, AdaLoraSpec, SpaceSpec

Task = Literal["causal-lm", "sequence-classification"]
TaskType = Literal[
    "classification", "domain-adaptation", "instruction-tuning", "continued-pretraining"
]


__all__ = ["PARAM", "AdaLoraSpec", "SpaceSpec", "StudySpec"]  # and the section classes


# --- sections -------------------------------------------------------------------------------


Dtype = Literal["auto", "float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class QuantizationSpec:
    bits: Literal[4, 8] = field(metadata=doc("bitsandbytes: 4 (QLoRA) or 8 (LLM.int8)"))
    quant_type: Literal["nf4", "fp4"] = field(default="nf4", metadata=doc("4-bit data type"))
    double_quant: bool = field(default=True, metadata=doc("quantize the 4-bit scales too"))
    compute_dtype: Dtype = field(
        default="auto", metadata=doc("what 4-bit layers compute in; auto: bf16 on a GPU")
    )


@dataclass(frozen=True)
class ModelSpec:
    demo: str | None = field(default=None, metadata=doc("a name from the offline demo registry"))
    hub: str | None = field(default=None, metadata=doc("a Hugging Face hub id"))
    path: str | None = field(default=None, metadata=doc("a local directory for from_pretrained"))
    revision: str | None = field(default=None, metadata=doc("hub revision (branch, tag, commit)"))
    dtype: Dtype = field(
        default="auto",
        metadata=doc("the base weights' dtype; auto: bfloat16 on a GPU that has it, else fp32"),
    )
    quantization: QuantizationSpec | None = field(
        default=None, metadata=doc("load the base quantized (QLoRA); needs lora-hpo[qlora]")
    )
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] | None = field(
        default=None, metadata=doc("attention kernel; default: transformers' own (sdpa)")
    )


@dataclass(frozen=True)
class DataSpec:
    demo: str | None = field(default=None, metadata=doc("a name from the offline demo registry"))
    hub: str | None = field(default=None, metadata=doc("a hub dataset id for load_dataset"))
    hub_config: str | None = field(default=None, metadata=doc("the hub dataset's config name"))
    files: tuple[str, ...] | SplitFiles | None = field(
        default=None,
        metadata=doc(
            "local json/csv/parquet files (paths relative to the spec file): a list of train"
            " files, or a mapping from split to files, e.g. {train: [a.jsonl], validation:"
            " [b.jsonl]} with eval_split: validation",
            files=True,
        ),
    )
    format: Literal["json", "csv", "parquet"] | None = field(
        default=None, metadata=doc("file format; inferred from the extension when omitted")
    )
    train_split: str = field(default="train", metadata=doc("split to train on"))
    eval_split: str | None = field(default=None, metadata=doc("split to evaluate on"))
    eval_fraction: float | None = field(
        default=None, metadata=doc("hold out this fraction of train when there is no eval_split")
    )
    text_field: str | None = field(default=None, metadata=doc("input text column"))
    label_field: str | None = field(default=None, metadata=doc("class label column"))
    prompt_field: str | None = field(default=None, metadata=doc("prompt column (causal-lm)"))
    completion_field: str | None = field(
        default=None, metadata=doc("completion column (causal-lm)")
    )
    messages_field: str | None = field(
        default=None,
        metadata=doc(
            "chat column (causal-lm), instead of text or prompt/completion: each row a list of"
            " {role, content} messages (system, user, assistant), encoded with the tokenizer's"
            " chat template; the loss is on the assistant turns only"
        ),
    )
    chat_template: Literal["auto", "always", "never"] = field(
        default="auto",
        metadata=doc(
            "encode prompt/completion rows as a user/assistant chat through the tokenizer's chat"
            " template, the loss on the answer only: auto (when the tokenizer has a template),"
            " always (it must have one), never (the raw prompt followed by the completion)"
        ),
    )
    max_length: int = field(
        default=128, metadata=doc("tokens per example, truncated", most=1 << 20)
    )
    max_train_samples: int | None = field(default=None, metadata=doc("cap on training rows"))
    max_eval_samples: int | None = field(default=None, metadata=doc("cap on evaluation rows"))

    def split_files(self) -> dict[str, tuple[str, ...]]:
        """Split name -> files: the list form is the train split's files."""
        if isinstance(self.files, SplitFiles):
            return self.files.as_dict()
        return {self.train_split: tuple(self.files or ())}

    def all_files(self) -> list[str]:
        return [f for files in self.split_files().values() for f in files]


@dataclass(frozen=True)
class TrainingSpec:
    max_steps: int = field(
        default=100, metadata=doc("optimizer steps per trial (ASHA's max_t)", most=10**8)
    )
    eval_every: int | None = field(
        default=None,
        metadata=doc(
            "also evaluate every N steps (denser curves); by default a trial evaluates at ASHA's"
            " rungs and its last step only"
        ),
    )
    batch_size: int = field(default=16, metadata=doc("per-device train batch size", most=1 << 20))
    eval_batch_size: int | None = field(default=None, metadata=doc("defaults to 2x batch_size"))
    gradient_accumulation: int = field(default=1, metadata=doc("micro-batches per step"))
    head_learning_rate: float | None = field(
        default=None,
        metadata=doc(
            "lr for a newly initialised task head (classifier); default: the trial's lr", most=10.0
        ),
    )
    warmup_ratio: float = field(default=0.0, metadata=doc("fraction of max_steps warming up"))
    weight_decay: float = field(default=0.0, metadata=doc("AdamW weight decay"))
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = field(
        default="linear", metadata=doc("transformers learning-rate schedule")
    )
    max_grad_norm: float = field(default=1.0, metadata=doc("gradient clipping"))
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field(
        default="auto", metadata=doc("mixed precision; auto follows model.dtype (fp32 on CPU)")
    )
    gradient_checkpointing: bool = field(
        default=False, metadata=doc("recompute activations in backward: less memory, ~30% slower")
    )
    optim: str = field(
        default="adamw_torch",
        metadata=doc("a transformers optimizer name, e.g. adamw_torch_fused, paged_adamw_8bit"),
    )
    seed: int = field(
        default=0, metadata=doc("seed for data order, init and dropout", least=0, most=2**32 - 1)
    )


@dataclass(frozen=True)
class SchedulerSpec:
    type: Literal["asha", "curve", "none"] = field(
        default="curve",
        metadata=doc("early stopping: asha (rungs), curve (cannot reach the incumbent), none"),
    )
    grace_period: int = field(default=20, metadata=doc("steps before a trial can be stopped"))
    reduction_factor: float = field(
        default=3.0, metadata=doc("ASHA keeps 1/reduction_factor (not read by curve)")
    )


@dataclass(frozen=True)
class StagedSpec:
    r_min: int = field(default=8, metadata=doc("stage 1 starts at this rank (a power of two)"))
    r_max: int = field(default=64, metadata=doc("stage 1 doubles r up to this rank at most"))
    plateau_tolerance: float = field(
        default=0.01, metadata=doc("stop doubling when r*2 improves the metric by less (relative)")
    )
    samples_per_rank: int = field(default=2, metadata=doc("stage 1 trials at each rank"))
    stage2_samples: int = field(default=8, metadata=doc("stage 2 trials over alpha/r and lr"))
    ratio_low: float = field(default=0.5, metadata=doc("stage 2: lowest alpha/r (or alpha/sqrt r)"))
    # at most what space.alpha_ratio and space.lora_alpha may search (spec_checks.MOST)
    ratio_high: float = field(default=4.0, metadata=doc("stage 2: highest alpha/r", most=1e4))
    rslora_alpha: float = field(
        default=16.0, metadata=doc("stage 1 alpha when use_rslora is on", most=1e6)
    )


@dataclass(frozen=True)
class SearchSpec:
    metric: str | None = field(default=None, metadata=doc("defaults per task"))
    mode: Literal["min", "max"] | None = field(default=None, metadata=doc("defaults per metric"))
    num_samples: int = field(default=8, metadata=doc("trials to run", most=10**6))
    max_concurrent: int = field(default=2, metadata=doc("trials at once", most=10**5))
    pack: int = field(
        default=1,
        metadata=doc("trials that share one worker and base model (packed training)", most=256),
    )
    sampler: Literal["lora", "tpe", "random", "gp", "cmaes", "qmc"] = field(
        default="lora",
        metadata=doc("lora: priors on step size and rank, mixed with the incumbent; or Optuna's"),
    )
    seed: int = field(default=0, metadata=doc("sampler seed", least=0, most=2**32 - 1))
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    max_failures: int = field(default=2, metadata=doc("retries of a failed trial"))
    strategy: Literal["single", "staged"] = field(
        default="single", metadata=doc("single: one study; staged: rank sweep, then alpha/r")
    )
    staged: StagedSpec = field(default_factory=StagedSpec)
    warm_start: bool = field(
        default=False,
        metadata=doc("start from earlier studies of the same base model in the MLflow store"),
    )


@dataclass(frozen=True)
class ResourcesSpec:
    cpu: float = field(default=1.0, metadata=doc("CPUs per trial"))
    gpu: float = field(default=0.0, metadata=doc("GPUs per trial: a fraction in (0, 1] or whole"))


@dataclass(frozen=True)
class TrackingSpec:
    experiment: str | None = field(default=None, metadata=doc("defaults to the study name"))
    tracking_uri: str | None = field(default=None, metadata=doc("else MLFLOW_TRACKING_URI"))
    registered_model: str | None = field(default=None, metadata=doc("registry name (champion)"))
    log_adapters: Literal["completed", "top-k", "none"] = field(
        default="completed", metadata=doc("which trials' adapters are stored")
    )
    top_k: int = field(default=3, metadata=doc("with log_adapters: top-k"))


@dataclass(frozen=True)
class MonitorSpec:
    norm_growth: float = field(
        default=100.0, metadata=doc("diverged when adapter-norm max grows beyond this factor")
    )
    relative_norm: float = field(
        default=5.0, metadata=doc("diverged when any ‖s·BA‖ exceeds this factor of ‖W0‖")
    )
    loss_blowup: float = field(
        default=4.0, metadata=doc("diverged when eval loss exceeds this factor of its first value")
    )


@dataclass(frozen=True)
class StudySpec:
    name: str = field(metadata=doc("study name: the Ray experiment and the MLflow experiment"))
    task: Task = field(metadata=doc("causal-lm or sequence-classification"))
    model: ModelSpec = field(metadata=doc("the base model"))
    data: DataSpec = field(metadata=doc("the dataset"))
    space: SpaceSpec = field(metadata=doc("the search space"))
    task_type: TaskType | None = field(default=None, metadata=doc("hint for rank guardrails"))
    training: TrainingSpec = field(default_factory=TrainingSpec)
    search: SearchSpec = field(default_factory=SearchSpec)
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    tracking: TrackingSpec = field(default_factory=TrackingSpec)
    monitor: MonitorSpec = field(default_factory=MonitorSpec)

    @property
    def metric(self) -> str:
        return default_metric(self.task, self.search)

    @property
    def mode(self) -> str:
        if self.search.mode:
            return self.search.mode
        return METRIC_MODES.get(self.metric, "min")

    @property
    def experiment(self) -> str:
        return self.tracking.experiment or self.name


# metrics each task reports, with the direction that is better
METRIC_MODES: dict[str, str] = {"eval_loss": "min", "train_loss": "min"}
TASK_METRICS: dict[str, dict[str, str]] = {
    "sequence-classification": {"eval_loss": "min", "eval_accuracy": "max", "eval_f1": "max"},
    "causal-lm": {"eval_loss": "min", "eval_perplexity": "min"},
}
for _m in TASK_METRICS.values():
    METRIC_MODES.update(_m)


def default_metric(task: str, search: SearchSpec) -> str:
    """The study metric: as given, else accuracy for classification and eval loss for LMs."""
    if search.metric:
        return search.metric
    return "eval_accuracy" if task == "sequence-classification" else "eval_loss"
