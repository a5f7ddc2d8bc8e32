"""The study spec: frozen dataclasses, one per YAML section.

Each field's ``help`` metadata documents it; the loader (``loader.py``) builds these from YAML,
collecting every problem; ``checks.py`` holds the cross-field rules and guardrail warnings.
This module imports neither torch nor ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Task = Literal["causal-lm", "sequence-classification"]
TaskType = Literal[
    "classification", "domain-adaptation", "instruction-tuning", "continued-pretraining"
]


def doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


# --- search-space parameters: each is fixed, a range, or a list of choices -------------------


@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    step: float | None = None


@dataclass(frozen=True)
class Choices:
    values: tuple[Any, ...]


Param = Fixed | Range | Choices


# --- sections -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    demo: str | None = field(default=None, metadata=doc("a name from the offline demo registry"))
    hub: str | None = field(default=None, metadata=doc("a Hugging Face hub id"))
    path: str | None = field(default=None, metadata=doc("a local directory for from_pretrained"))
    revision: str | None = field(default=None, metadata=doc("hub revision (branch, tag, commit)"))


@dataclass(frozen=True)
class DataSpec:
    demo: str | None = field(default=None, metadata=doc("a name from the offline demo registry"))
    hub: str | None = field(default=None, metadata=doc("a hub dataset id for load_dataset"))
    hub_config: str | None = field(default=None, metadata=doc("the hub dataset's config name"))
    files: tuple[str, ...] | None = field(
        default=None, metadata=doc("local json/csv/parquet files")
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
    max_length: int = field(default=128, metadata=doc("tokens per example, truncated"))
    max_train_samples: int | None = field(default=None, metadata=doc("cap on training rows"))
    max_eval_samples: int | None = field(default=None, metadata=doc("cap on evaluation rows"))


@dataclass(frozen=True)
class TrainingSpec:
    max_steps: int = field(default=100, metadata=doc("optimizer steps per trial (ASHA's max_t)"))
    eval_every: int = field(default=20, metadata=doc("evaluate and report every N steps"))
    batch_size: int = field(default=16, metadata=doc("per-device train batch size"))
    eval_batch_size: int | None = field(default=None, metadata=doc("defaults to 2x batch_size"))
    gradient_accumulation: int = field(default=1, metadata=doc("micro-batches per step"))
    head_learning_rate: float | None = field(
        default=None,
        metadata=doc("lr for a newly initialised task head (classifier); default: the trial's lr"),
    )
    warmup_ratio: float = field(default=0.0, metadata=doc("fraction of max_steps warming up"))
    weight_decay: float = field(default=0.0, metadata=doc("AdamW weight decay"))
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = field(
        default="linear", metadata=doc("transformers learning-rate schedule")
    )
    max_grad_norm: float = field(default=1.0, metadata=doc("gradient clipping"))
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field(
        default="auto", metadata=doc("auto: bf16 on a GPU that has it, else fp32")
    )
    seed: int = field(default=0, metadata=doc("seed for data order, init and dropout"))


@dataclass(frozen=True)
class SchedulerSpec:
    type: Literal["asha", "none"] = field(default="asha", metadata=doc("early stopping"))
    grace_period: int = field(default=20, metadata=doc("steps before a trial can be stopped"))
    reduction_factor: float = field(default=3.0, metadata=doc("ASHA keeps 1/reduction_factor"))


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
    ratio_high: float = field(default=4.0, metadata=doc("stage 2: highest alpha/r"))
    rslora_alpha: float = field(default=16.0, metadata=doc("stage 1 alpha when use_rslora is on"))


@dataclass(frozen=True)
class SearchSpec:
    metric: str | None = field(default=None, metadata=doc("defaults per task"))
    mode: Literal["min", "max"] | None = field(default=None, metadata=doc("defaults per metric"))
    num_samples: int = field(default=8, metadata=doc("trials to run"))
    max_concurrent: int = field(default=2, metadata=doc("trials at once"))
    sampler: Literal["tpe", "random", "gp", "cmaes", "qmc"] = field(
        default="tpe", metadata=doc("the Optuna sampler")
    )
    seed: int = field(default=0, metadata=doc("sampler seed"))
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    max_failures: int = field(default=2, metadata=doc("retries of a failed trial"))
    strategy: Literal["single", "staged"] = field(
        default="single", metadata=doc("single: one study; staged: rank sweep, then alpha/r")
    )
    staged: StagedSpec = field(default_factory=StagedSpec)


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
class AdaLoraSpec:
    init_r: int | None = field(default=None, metadata=doc("initial rank; default 1.5x target r"))
    tinit: int = field(default=0, metadata=doc("steps of warm-up before budget pruning"))
    tfinal: int = field(default=0, metadata=doc("final fine-tuning steps at the target budget"))
    delta_t: int = field(default=1, metadata=doc("steps between budget allocations"))
    beta1: float = field(default=0.85, metadata=doc("EMA for sensitivity smoothing"))
    beta2: float = field(default=0.85, metadata=doc("EMA for uncertainty"))
    orth_reg_weight: float = field(default=0.5, metadata=doc("orthogonal regularisation"))


PARAM = "param"  # metadata key: the element type of a search-space parameter


@dataclass(frozen=True)
class SpaceSpec:
    r: Param = field(metadata=doc("LoRA rank", param=int))
    learning_rate: Param = field(metadata=doc("AdamW learning rate", param=float))
    lora_alpha: Param | None = field(default=None, metadata=doc("absolute alpha", param=float))
    alpha_ratio: Param | None = field(
        default=None, metadata=doc("alpha / r (lora_alpha = ratio * r)", param=float)
    )
    alpha_scale: Param | None = field(
        default=None, metadata=doc("alpha / sqrt(r) (lora_alpha = scale * sqrt(r))", param=float)
    )
    use_rslora: Param = field(default=Fixed(False), metadata=doc("rank-stabilised", param=bool))
    lora_dropout: Param = field(default=Fixed(0.0), metadata=doc("dropout", param=float))
    target_modules: Param = field(
        default=Fixed("attention"), metadata=doc("a preset or a list of names", param="modules")
    )
    adapter: Param = field(default=Fixed("lora"), metadata=doc("lora or adalora", param=str))
    adalora: AdaLoraSpec = field(default_factory=AdaLoraSpec)

    @property
    def alpha_mode(self) -> str:
        """Which of lora_alpha / alpha_ratio / alpha_scale the spec uses."""
        for name in ("alpha_ratio", "alpha_scale", "lora_alpha"):
            if getattr(self, name) is not None:
                return name
        return "alpha_ratio"


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
