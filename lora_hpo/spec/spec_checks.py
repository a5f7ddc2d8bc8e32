"""Cross-field rules over a parsed StudySpec: each yields Problems naming the field, the
constraint and the value. The domain warnings are in ``guardrails.py``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from lora_hpo.spec.chat_checks import check_chat
from lora_hpo.spec.hardware_checks import check_hardware
from lora_hpo.spec.pack_checks import check_pack
from lora_hpo.spec.problem_rules import at_least as _at_least
from lora_hpo.spec.registries import TARGET_PRESETS
from lora_hpo.spec.source_checks import check_sources
from lora_hpo.spec.space_params import Choices, Param, Range, bounds, can_be, listed
from lora_hpo.spec.spec_errors import Problem
from lora_hpo.spec.spec_schema import (
    TASK_METRICS,
    MonitorSpec,
    ResourcesSpec,
    SearchSpec,
    SpaceSpec,
    TrackingSpec,
    TrainingSpec,
    default_metric,
)
from lora_hpo.spec.uri_credentials import credential_in

ADAPTERS = ("lora", "adalora")
# The largest values a study may search: far beyond real studies (ranks of 1024 and more on
# full-size models, alpha in the thousands), short of numbers that only a typo gives.
MOST = {
    "r": 65536,
    "lora_alpha": 1e6,
    "alpha_ratio": 1e4,
    "alpha_scale": 1e4,
    "learning_rate": 10.0,
    "step_size": 1e3,
}


def _at_most(param: Param, high: float, path: str) -> Iterator[Problem]:
    """Every value the parameter can take is <= ``high``."""
    top = bounds(param)[1]
    if isinstance(top, (int, float)) and not isinstance(top, bool) and top > high:
        big = isinstance(top, float) or 10**9 < abs(top) < 10**300  # beyond: no float holds it
        shown = f"{top:.4g}" if big else str(top)
        where = path + (".high" if isinstance(param, Range) else "")
        yield Problem(where, f"must be <= {high:g}, but got {shown}")


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


def _upper_bounds(space: SpaceSpec) -> Iterator[Problem]:
    for name, high in MOST.items():
        param = getattr(space, name)
        if param is not None:
            yield from _at_most(param, high, f"space.{name}")


def check_space(space: SpaceSpec) -> Iterator[Problem]:
    yield from _numeric(space.r, "space.r", 1, strict=False)
    yield from _upper_bounds(space)
    alphas = [n for n in ("lora_alpha", "alpha_ratio", "alpha_scale") if getattr(space, n)]
    if len(alphas) != 1:
        got = ", ".join(alphas) or "none"
        yield Problem("space", f"exactly one of lora_alpha, alpha_ratio, alpha_scale, got {got}")
    for name in alphas:
        yield from _numeric(getattr(space, name), f"space.{name}", 0, strict=True)
    lrs = [n for n in ("learning_rate", "step_size") if getattr(space, n) is not None]
    if len(lrs) != 1:
        got = ", ".join(lrs) or "none"
        yield Problem("space", f"exactly one of learning_rate, step_size is required, got {got}")
    for name in lrs:
        yield from _numeric(getattr(space, name), f"space.{name}", 0, strict=True)
    yield from _numeric(space.lora_dropout, "space.lora_dropout", 0, strict=False)
    if bounds(space.lora_dropout)[1] >= 1:
        yield Problem("space.lora_dropout", f"must be < 1, but got {bounds(space.lora_dropout)[1]}")
    for i, v in enumerate(listed(space.target_modules)):
        if isinstance(v, str) and v not in TARGET_PRESETS:
            where = "space.target_modules"
            if isinstance(space.target_modules, Choices):
                where += f".choices[{i}]"
            presets = ", ".join(TARGET_PRESETS)
            yield Problem(where, f"unknown preset {v!r}; presets: {presets} (or a list of names)")
    for v in listed(space.adapter):
        if v not in ADAPTERS:
            yield Problem("space.adapter", f"must be one of {list(ADAPTERS)}, but got {v!r}")


def _check_adalora(space: SpaceSpec, max_steps: int) -> Iterator[Problem]:
    """AdaLoRA's settings hold whichever adapter is searched; the budget is checked against
    the ranks and the steps when adalora can be drawn."""
    ada = space.adalora
    if ada.init_r is not None:
        yield from _at_least(ada.init_r, 1, "space.adalora.init_r")
        if ada.init_r > MOST["r"]:
            yield Problem("space.adalora.init_r", f"must be <= {MOST['r']}, but got {ada.init_r}")
    yield from _at_least(ada.delta_t, 1, "space.adalora.delta_t")
    yield from _at_least(ada.tinit, 0, "space.adalora.tinit")
    yield from _at_least(ada.tfinal, 0, "space.adalora.tfinal")
    for name in ("beta1", "beta2"):
        value = getattr(ada, name)
        if not 0 <= value < 1:
            yield Problem(f"space.adalora.{name}", f"must be in [0, 1), but got {value}")
    if not 0 <= ada.orth_reg_weight <= 1e3:
        yield Problem(
            "space.adalora.orth_reg_weight", f"must be in [0, 1000], but got {ada.orth_reg_weight}"
        )
    if not can_be(space.adapter, "adalora"):
        return
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


def check_training(t: TrainingSpec, s: SearchSpec) -> Iterator[Problem]:
    for name in ("max_steps", "batch_size", "gradient_accumulation"):
        yield from _at_least(getattr(t, name), 1, f"training.{name}")
    if t.eval_every is not None:
        yield from _at_least(t.eval_every, 1, "training.eval_every")
    if t.eval_batch_size is not None:
        yield from _at_least(t.eval_batch_size, 1, "training.eval_batch_size")
    if t.eval_every is not None and t.eval_every > t.max_steps:
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
    sch = s.scheduler  # its settings hold even where the scheduler type does not read them
    yield from _at_least(sch.grace_period, 1, "search.scheduler.grace_period")
    yield from _at_least(sch.reduction_factor, 1, "search.scheduler.reduction_factor", True)
    if sch.type in ("asha", "curve") and sch.grace_period > t.max_steps:
        yield Problem(
            "search.scheduler.grace_period",
            f"grace_period <= training.max_steps must hold, but got {sch.grace_period}"
            f" > {t.max_steps}",
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
    yield from check_staged(s)  # its settings hold even where the strategy is single
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
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_names(name: str, tracking: TrackingSpec) -> Iterator[Problem]:
    """The study name becomes a folder under the storage root and an MLflow experiment: a
    plain name, never a path. A tracking URI in a spec file (committed, shared) holds no
    credential."""
    if not STUDY_NAME.fullmatch(name) or ".." in name:
        shown = name if len(name) <= 60 else name[:57] + "..."
        yield Problem(
            "name",
            "must be letters, digits, '.', '_' and '-' (at most 128, starting with a letter or"
            f" digit, no '..'), as it names a folder and an MLflow experiment, but got {shown!r}",
        )
    found = credential_in(tracking.tracking_uri) if tracking.tracking_uri else ""
    if found:
        yield Problem(
            "tracking.tracking_uri",
            f"must hold no credential, as spec files get committed and shared, but it holds"
            f" {found}; give the URI without it and the credential in MLFLOW_TRACKING_USERNAME"
            " / MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
        )
    for field in ("experiment", "registered_model"):
        value = getattr(tracking, field) or ""
        if "'" in value and '"' in value:  # MLflow's search filters cannot name it
            yield Problem(
                f"tracking.{field}",
                f"must not hold both ' and \" (MLflow cannot search for such a name), but got"
                f" {value[:60]!r}",
            )


CHECK_GROUPS: list[tuple[tuple[str, ...], Callable[..., Iterator[Problem]]]] = [
    (("name", "tracking"), check_names),
    (("task", "model", "data"), check_sources),
    (("task", "data"), check_chat),
    (("training", "search"), check_training),
    (("task", "search", "resources", "tracking", "monitor"), check_search),
    (("space",), check_space),
    (("space", "training"), lambda space, training: _check_adalora(space, training.max_steps)),
    (("model", "training", "resources"), check_hardware),
    (("search", "training", "space"), check_pack),
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
    yield from _at_least(st.ratio_high, 0, "search.staged.ratio_high", strict=True)
    if st.ratio_low > st.ratio_high:
        yield Problem(
            "search.staged",
            f"ratio_low <= ratio_high must hold, but got {st.ratio_low} > {st.ratio_high}",
        )
    yield from _at_least(st.rslora_alpha, 0, "search.staged.rslora_alpha", strict=True)
