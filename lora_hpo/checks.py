"""Cross-field rules (errors) and domain guardrails (warnings) over a parsed StudySpec."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from pathlib import PurePath
from typing import Any

from lora_hpo.errors import Problem
from lora_hpo.registry import DEMO_DATA, DEMO_MODELS, RANK_BANDS, TARGET_PRESETS
from lora_hpo.spec import (
    TASK_METRICS,
    Choices,
    DataSpec,
    Fixed,
    ModelSpec,
    MonitorSpec,
    Param,
    Range,
    ResourcesSpec,
    SearchSpec,
    SpaceSpec,
    StudySpec,
    TrackingSpec,
    TrainingSpec,
    default_metric,
)

FILE_FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
ADAPTERS = ("lora", "adalora")


def bounds(param: Param) -> tuple[Any, Any]:
    """The smallest and largest value a parameter can take."""
    if isinstance(param, Fixed):
        return param.value, param.value
    if isinstance(param, Range):
        return param.low, param.high
    return min(param.values), max(param.values)


def can_be(param: Param, value: Any) -> bool:
    if isinstance(param, Fixed):
        return bool(param.value == value)
    if isinstance(param, Choices):
        return value in param.values
    return bool(param.low <= value <= param.high)


def _one_of(section: Any, names: tuple[str, ...], path: str) -> Iterator[Problem]:
    given = [n for n in names if getattr(section, n) is not None]
    if len(given) != 1:
        got = ", ".join(f"{n}={getattr(section, n)!r}" for n in given) or "none"
        yield Problem(path, f"exactly one of {', '.join(names)} is required, but got {got}")


def _at_least(value: float, low: float, path: str, strict: bool = False) -> Iterator[Problem]:
    if value < low or (strict and value == low):
        yield Problem(path, f"must be {'>' if strict else '>='} {low}, but got {value}")


def _numeric(param: Param, path: str, low: float, strict: bool) -> Iterator[Problem]:
    """Range shape rules, plus every reachable value >= low (or > low when strict)."""
    sign = ">" if strict else ">="
    if isinstance(param, Range):
        if param.low > param.high:
            yield Problem(
                path, f"low <= high must hold, but got low={param.low}, high={param.high}"
            )
        if param.log and param.low <= 0:
            yield Problem(f"{path}.low", f"a log range needs low > 0, but got low={param.low}")
        if param.step is not None and param.step <= 0:
            yield Problem(f"{path}.step", f"must be > 0, but got {param.step}")
        if param.step is not None and param.log:
            yield Problem(path, "log and step cannot be combined (Optuna forbids it)")
        if param.low < low or (strict and param.low == low):
            yield Problem(f"{path}.low", f"must be {sign} {low}, but got {param.low}")
    elif isinstance(param, Choices):
        for i, v in enumerate(param.values):
            if v < low or (strict and v == low):
                yield Problem(f"{path}.choices[{i}]", f"must be {sign} {low}, but got {v}")
    elif param.value < low or (strict and param.value == low):
        yield Problem(path, f"must be {sign} {low}, but got {param.value}")


def _values(param: Param) -> tuple[Any, ...]:
    return (param.value,) if isinstance(param, Fixed) else getattr(param, "values", ())


def check_space(space: SpaceSpec) -> Iterator[Problem]:
    yield from _numeric(space.r, "space.r", 1, strict=False)
    alphas = [n for n in ("lora_alpha", "alpha_ratio", "alpha_scale") if getattr(space, n)]
    if len(alphas) != 1:
        got = ", ".join(alphas) or "none"
        yield Problem("space", f"exactly one of lora_alpha, alpha_ratio, alpha_scale, got {got}")
    for name in alphas:
        yield from _numeric(getattr(space, name), f"space.{name}", 0, strict=True)
    yield from _numeric(space.learning_rate, "space.learning_rate", 0, strict=True)
    yield from _numeric(space.lora_dropout, "space.lora_dropout", 0, strict=False)
    if bounds(space.lora_dropout)[1] >= 1:
        yield Problem("space.lora_dropout", f"must be < 1, but got {bounds(space.lora_dropout)[1]}")
    for i, v in enumerate(_values(space.target_modules)):
        if isinstance(v, str) and v not in TARGET_PRESETS:
            where = "space.target_modules"
            if isinstance(space.target_modules, Choices):
                where += f".choices[{i}]"
            presets = ", ".join(TARGET_PRESETS)
            yield Problem(where, f"unknown preset {v!r}; presets: {presets} (or a list of names)")
    for v in _values(space.adapter):
        if v not in ADAPTERS:
            yield Problem("space.adapter", f"must be one of {list(ADAPTERS)}, but got {v!r}")


def _check_adalora(space: SpaceSpec, max_steps: int) -> Iterator[Problem]:
    if not can_be(space.adapter, "adalora"):
        return
    ada = space.adalora
    if ada.init_r is not None and ada.init_r < bounds(space.r)[1]:
        yield Problem(
            "space.adalora.init_r",
            f"must be >= the largest target r ({bounds(space.r)[1]}), but got {ada.init_r}",
        )
    if ada.tinit + ada.tfinal >= max_steps:
        yield Problem(
            "space.adalora",
            f"tinit + tfinal < training.max_steps must hold, but got {ada.tinit} + {ada.tfinal}"
            f" >= {max_steps}",
        )
    yield from _at_least(ada.delta_t, 1, "space.adalora.delta_t")


def check_sources(task: str, m: ModelSpec, d: DataSpec) -> Iterator[Problem]:
    yield from _one_of(m, ("demo", "hub", "path"), "model")
    if m.demo is not None:
        if m.demo not in DEMO_MODELS:
            yield Problem("model.demo", f"must be one of {sorted(DEMO_MODELS)}, but got {m.demo!r}")
        elif task not in DEMO_MODELS[m.demo].tasks:
            tasks = list(DEMO_MODELS[m.demo].tasks)
            yield Problem("model.demo", f"{m.demo!r} supports tasks {tasks}, not {task!r}")
    yield from _one_of(d, ("demo", "hub", "files"), "data")
    if d.demo is not None:
        if d.demo not in DEMO_DATA:
            yield Problem("data.demo", f"must be one of {sorted(DEMO_DATA)}, but got {d.demo!r}")
        elif DEMO_DATA[d.demo].task != task:
            yield Problem("data.demo", f"{d.demo!r} is for {DEMO_DATA[d.demo].task}, not {task}")
    for i, f in enumerate(d.files or ()):
        if d.format is None and PurePath(f).suffix.lower() not in FILE_FORMATS:
            yield Problem(
                f"data.files[{i}]",
                f"extension must be one of {sorted(FILE_FORMATS)} (or set data.format), got {f!r}",
            )
    if d.eval_split is not None and d.eval_fraction is not None:
        yield Problem("data", "give eval_split or eval_fraction, not both")
    if d.eval_fraction is not None and not 0 < d.eval_fraction < 1:
        yield Problem("data.eval_fraction", f"must be in (0, 1), but got {d.eval_fraction}")
    if (d.prompt_field is None) != (d.completion_field is None):
        yield Problem("data", "prompt_field and completion_field go together; give both or neither")
    if d.prompt_field is not None and task != "causal-lm":
        yield Problem("data.prompt_field", f"is for task causal-lm, not {task}")
    yield from _at_least(d.max_length, 8, "data.max_length")
    for name in ("max_train_samples", "max_eval_samples"):
        if getattr(d, name) is not None:
            yield from _at_least(getattr(d, name), 1, f"data.{name}")


def check_training(t: TrainingSpec, s: SearchSpec) -> Iterator[Problem]:
    for name in ("max_steps", "eval_every", "batch_size", "gradient_accumulation"):
        yield from _at_least(getattr(t, name), 1, f"training.{name}")
    if t.eval_batch_size is not None:
        yield from _at_least(t.eval_batch_size, 1, "training.eval_batch_size")
    if t.eval_every > t.max_steps:
        yield Problem(
            "training.eval_every",
            f"eval_every <= max_steps must hold, but got {t.eval_every} > {t.max_steps}",
        )
    if not 0 <= t.warmup_ratio < 1:
        yield Problem("training.warmup_ratio", f"must be in [0, 1), but got {t.warmup_ratio}")
    yield from _at_least(t.weight_decay, 0, "training.weight_decay")
    if t.head_learning_rate is not None:
        yield from _at_least(t.head_learning_rate, 0, "training.head_learning_rate", strict=True)
    yield from _at_least(t.max_grad_norm, 0, "training.max_grad_norm", strict=True)
    sch = s.scheduler
    if sch.type == "asha":
        yield from _at_least(sch.grace_period, 1, "search.scheduler.grace_period")
        yield from _at_least(sch.reduction_factor, 1, "search.scheduler.reduction_factor", True)
        if sch.grace_period > t.max_steps:
            yield Problem(
                "search.scheduler.grace_period",
                f"grace_period <= training.max_steps must hold, but got {sch.grace_period}"
                f" > {t.max_steps}",
            )
        elif t.eval_every >= 1 and sch.grace_period % t.eval_every:
            yield Problem(
                "search.scheduler.grace_period",
                f"must be a multiple of training.eval_every ({t.eval_every}) so that a report"
                f" reaches it, but got {sch.grace_period}",
            )


def check_search(
    task: str, s: SearchSpec, r: ResourcesSpec, tracking: TrackingSpec, monitor: MonitorSpec
) -> Iterator[Problem]:
    yield from _at_least(s.num_samples, 1, "search.num_samples")
    yield from _at_least(s.max_concurrent, 1, "search.max_concurrent")
    if s.max_concurrent > s.num_samples:
        yield Problem(
            "search.max_concurrent",
            f"max_concurrent <= num_samples must hold, but got {s.max_concurrent}"
            f" > {s.num_samples}",
        )
    yield from _at_least(s.max_failures, 0, "search.max_failures")
    if s.strategy == "staged":
        yield from check_staged(s)
    metrics = TASK_METRICS[task]
    metric = default_metric(task, s)
    if s.metric is not None and s.metric not in metrics:
        yield Problem(
            "search.metric",
            f"for task {task} must be one of {sorted(metrics)}, but got {s.metric!r}",
        )
    elif s.mode is not None and s.mode != metrics[metric]:
        yield Problem(
            "search.mode",
            f"{metric} is better when {'lower' if metrics[metric] == 'min' else 'higher'};"
            f" mode must be {metrics[metric]!r}, but got {s.mode!r}",
        )
    yield from _at_least(r.cpu, 0, "resources.cpu", strict=True)
    yield from _at_least(r.gpu, 0, "resources.gpu")
    if r.gpu > 1 and not float(r.gpu).is_integer():
        yield Problem("resources.gpu", f"must be in (0, 1] or a whole number, but got {r.gpu}")
    yield from _at_least(tracking.top_k, 1, "tracking.top_k")
    yield from _at_least(monitor.norm_growth, 1, "monitor.norm_growth", strict=True)
    yield from _at_least(monitor.loss_blowup, 1, "monitor.loss_blowup", strict=True)
    yield from _at_least(monitor.relative_norm, 0, "monitor.relative_norm", strict=True)


# Each rule group with the top-level sections it reads: a group runs only when all of its
# sections parsed cleanly, so one typo does not hide the other files' or sections' problems.
CHECK_GROUPS: list[tuple[tuple[str, ...], Callable[..., Iterator[Problem]]]] = [
    (("task", "model", "data"), check_sources),
    (("training", "search"), check_training),
    (("task", "search", "resources", "tracking", "monitor"), check_search),
    (("space",), check_space),
    (("space", "training"), lambda space, training: _check_adalora(space, training.max_steps)),
]


def check_sections(sections: dict[str, Any]) -> list[Problem]:
    """Cross-field problems over whichever sections parsed (name -> parsed value)."""
    problems: list[Problem] = []
    for names, check in CHECK_GROUPS:
        if all(n in sections for n in names):
            problems.extend(check(*(sections[n] for n in names)))
    return problems


def _power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def check_staged(s: SearchSpec) -> Iterator[Problem]:
    st = s.staged
    for name in ("r_min", "r_max"):
        if not _power_of_two(getattr(st, name)):
            yield Problem(
                f"search.staged.{name}", f"must be a power of two, but got {getattr(st, name)}"
            )
    if st.r_min > st.r_max:
        yield Problem("search.staged", f"r_min <= r_max must hold, but got {st.r_min} > {st.r_max}")
    if not 0 <= st.plateau_tolerance < 1:
        yield Problem(
            "search.staged.plateau_tolerance", f"must be in [0, 1), but got {st.plateau_tolerance}"
        )
    yield from _at_least(st.samples_per_rank, 1, "search.staged.samples_per_rank")
    yield from _at_least(st.stage2_samples, 1, "search.staged.stage2_samples")
    yield from _at_least(st.ratio_low, 0, "search.staged.ratio_low", strict=True)
    if st.ratio_low > st.ratio_high:
        yield Problem(
            "search.staged",
            f"ratio_low <= ratio_high must hold, but got {st.ratio_low} > {st.ratio_high}",
        )
    yield from _at_least(st.rslora_alpha, 0, "search.staged.rslora_alpha", strict=True)


def check_spec(spec: StudySpec) -> list[Problem]:
    """Every cross-field problem in the spec (empty when valid)."""
    return check_sections({f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)})


def max_alpha_ratio(space: SpaceSpec) -> float:
    """The largest α/r the space can reach."""
    r_lo, _ = bounds(space.r)
    if space.alpha_ratio is not None:
        return float(bounds(space.alpha_ratio)[1])
    if space.alpha_scale is not None:
        return float(bounds(space.alpha_scale)[1]) / math.sqrt(r_lo)
    if space.lora_alpha is not None:
        return float(bounds(space.lora_alpha)[1]) / float(r_lo)
    return 0.0


def guardrail_warnings(spec: StudySpec) -> list[str]:
    """Domain-rule warnings: legal, but known to go wrong (ARCHITECTURE.md, Guardrails)."""
    space, out = spec.space, []
    r_lo, r_hi = bounds(space.r)
    if can_be(space.use_rslora, True) and r_lo < 8:
        out.append(
            f"space: rsLoRA with r < 8 is reachable (r down to {r_lo});"
            " rsLoRA misbehaves at small r"
        )
    lr_hi = bounds(space.learning_rate)[1]
    if max_alpha_ratio(space) >= 4 and lr_hi > 3e-4:
        out.append(
            f"space: alpha/r >= 4 (up to {max_alpha_ratio(space):g}) is reachable together with"
            f" learning_rate > 3e-4 (up to {lr_hi:g}); the adapter norm tends to blow up"
        )
    if spec.task_type is not None:
        lo, hi = RANK_BANDS[spec.task_type]
        if r_lo < lo or r_hi > hi:
            out.append(
                f"space.r: range {r_lo}..{r_hi} reaches outside the {spec.task_type}"
                f" band {lo}..{hi}"
            )
    return out
