"""The search space section of a spec: each parameter fixed, a range or a list of choices
(``space_params.py``), alpha given one of three ways, the learning rate directly or as a step size,
and AdaLoRA's budget settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from lora_hpo.spec.space_params import Fixed, Param, doc


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
    learning_rate: Param | None = field(
        default=None, metadata=doc("AdamW learning rate (or give step_size)", param=float)
    )
    step_size: Param | None = field(
        default=None,
        metadata=doc(
            "lr x effective scale s (s = alpha/r, or alpha/sqrt r with rsLoRA); the learning"
            " rate is derived as step_size / s. With Adam the update size grows with lr x s,"
            " so searching (step_size, scale) makes the lr/scale ridge axis-aligned",
            param=float,
        ),
    )
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
