"""The one search dialect: spec -> dict of ``optuna.distributions``, and sampled params ->
the concrete adapter config (``TrialParams``), including the derived ``lora_alpha``.

Only ``optuna.distributions`` is imported, lazily; never torch or ray.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lora_hpo.spec.space_params import Choices, Fixed, Param, Range
from lora_hpo.spec.spec_schema import SpaceSpec

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

SEARCHABLE = (
    "r",
    "lora_alpha",
    "alpha_ratio",
    "alpha_scale",
    "use_rslora",
    "learning_rate",
    "step_size",
    "lora_dropout",
    "target_modules",
    "adapter",
)


@dataclass(frozen=True)
class TrialParams:
    """A concrete adapter + optimizer config for one trial."""

    r: int
    lora_alpha: float
    use_rslora: bool
    learning_rate: float
    lora_dropout: float
    target_modules: str | tuple[str, ...]
    adapter: str

    @property
    def scaling(self) -> float:
        """PEFT's ``layer.scaling``: α/r, or α/√r with rsLoRA."""
        return self.lora_alpha / (math.sqrt(self.r) if self.use_rslora else self.r)

    @property
    def alpha_ratio(self) -> float:
        return self.lora_alpha / self.r

    @property
    def step_size(self) -> float:
        """lr x effective scale: the size of an Adam update to the adapter, up to a constant."""
        return self.learning_rate * self.scaling

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(self.target_modules, tuple):
            d["target_modules"] = ",".join(self.target_modules)
        derived = {"alpha_ratio": self.alpha_ratio, "step_size": self.step_size}
        return d | {"effective_scale": self.scaling} | derived


def _encode(value: Any) -> Any:
    """Optuna categoricals hold only None/bool/int/float/str: module lists become 'a,b,c'."""
    return ",".join(value) if isinstance(value, tuple) else value


def _decode_modules(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, tuple):
        return value
    text = str(value)
    return tuple(text.split(",")) if "," in text else text


def _distribution(name: str, param: Param) -> BaseDistribution:
    from optuna import distributions as d

    if isinstance(param, Choices):
        return d.CategoricalDistribution([_encode(v) for v in param.values])
    assert isinstance(param, Range)  # compile_space only passes searched params
    if name == "r":
        step = int(param.step) if param.step is not None else 1
        return d.IntDistribution(int(param.low), int(param.high), log=param.log, step=step)
    return d.FloatDistribution(param.low, param.high, log=param.log, step=param.step)


def searched(space: SpaceSpec) -> dict[str, Param]:
    """The params that are searched (not fixed), by name."""
    out = {}
    for name in SEARCHABLE:
        param = getattr(space, name)
        if param is not None and not isinstance(param, Fixed):
            out[name] = param
    return out


def fixed(space: SpaceSpec) -> dict[str, Any]:
    """The params that are fixed, by name, in the sampled-params encoding."""
    out = {}
    for name in SEARCHABLE:
        param = getattr(space, name)
        if isinstance(param, Fixed):
            out[name] = _encode(param.value)
    return out


def compile_space(space: SpaceSpec) -> dict[str, BaseDistribution]:
    """The searched params as Optuna distributions: the only search dialect there is."""
    return {name: _distribution(name, p) for name, p in searched(space).items()}


def derive(space: SpaceSpec, sampled: dict[str, Any]) -> TrialParams:
    """Resolve sampled (plus fixed) params into a concrete config: α from the ratio or the
    scale, and the learning rate from the step size (lr = step_size / s) when the space
    gives one."""
    p = fixed(space) | sampled
    r = int(p["r"])
    rslora = bool(p["use_rslora"])
    if space.alpha_ratio is not None:
        alpha = float(p["alpha_ratio"]) * r
    elif space.alpha_scale is not None:
        alpha = float(p["alpha_scale"]) * math.sqrt(r)
    else:
        alpha = float(p["lora_alpha"])
    if space.step_size is not None:
        lr = float(p["step_size"]) / (alpha / (math.sqrt(r) if rslora else r))
    else:
        lr = float(p["learning_rate"])
    return TrialParams(
        r=r,
        lora_alpha=alpha,
        use_rslora=rslora,
        learning_rate=lr,
        lora_dropout=float(p["lora_dropout"]),
        target_modules=_decode_modules(p["target_modules"]),
        adapter=str(p["adapter"]),
    )


def describe(space: SpaceSpec) -> list[tuple[str, str, str]]:
    """(name, kind, detail) rows for ``show-space``: distributions, fixed and derived params."""
    rows = [
        (n, type(dist).__name__, _dist_detail(dist)) for n, dist in compile_space(space).items()
    ]
    rows += [(n, "fixed", repr(v)) for n, v in fixed(space).items()]
    mode = space.alpha_mode
    rule = {
        "alpha_ratio": "lora_alpha = alpha_ratio * r",
        "alpha_scale": "lora_alpha = alpha_scale * sqrt(r)",
        "lora_alpha": "lora_alpha as given",
    }[mode]
    rows.append(("lora_alpha", "derived", rule))
    rows.append(
        ("effective_scale", "derived", "lora_alpha / sqrt(r) if use_rslora else lora_alpha / r")
    )
    if space.step_size is not None:
        rows.append(("learning_rate", "derived", "learning_rate = step_size / effective_scale"))
    return rows


def _dist_detail(dist: Any) -> str:
    if hasattr(dist, "choices"):
        return f"choices={list(dist.choices)}"
    step = f", step={dist.step}" if dist.step not in (None, 1) else ""
    return f"[{dist.low:g}, {dist.high:g}]" + (" log" if dist.log else "") + step
