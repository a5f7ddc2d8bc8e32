"""The searchers the simulator compares, each as lora-hpo would run it on the table's grid:
the spaces (learning rate or step size), the sampler, ASHA or not, and the staged strategy
driven through lora-hpo's own ``run_staged`` with a simulated stage runner.

Every space covers the grid with equal prior mass per grid value: a log range reaches half a
grid step past the grid's end values, so snapping to the nearest value gives each the same
share. The step-size space gives step_size = lr x s a log range as wide as the lr space's,
centred (geometrically) on the grid's range of lr x s; ``derive`` computes lr = step_size / s,
and lr snaps to the grid (lr beyond the grid's range lands on its end value). A step-size range
over the grid's whole range of lr x s (four decades for three of lr) sent about half the
samples past the lr grid's ends, onto its end values; on MiniLM (30 seeds) its median regret
at the budget was 0.015 against this range's 0.01 without ASHA, and the same 0.015 with it.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from bench.tabular.engine import Finished, Run, StudyPlan, run_study
from bench.tabular.grid import task_raw
from lora_hpo.search.lora_prior import lora_prior
from lora_hpo.search.strategies.staged_study import run_staged
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.spec.spec_schema import StudySpec

SEARCHERS = {  # name -> (sampler, learning-rate dialect)
    "random": ("random", "lr"),
    "tpe": ("tpe", "lr"),
    "tpe_step": ("tpe", "step"),
    "gp": ("gp", "lr"),
    "staged": ("tpe", "lr"),
    "lora": ("lora", "lr"),  # lora-hpo's default: prior, incumbent and random draws
    "lora_prior_only": ("lora", "lr"),  # ablation: prior and random draws, no incumbent
    "lora_no_prior": ("lora", "lr"),  # ablation: incumbent and random draws, no prior
}
ABLATIONS: dict[str, dict[str, Any]] = {  # the lora sampler's options, and whether it has a prior
    "lora_prior_only": {"incumbent": False},
    "lora_no_prior": {"incumbent": True},
}
LABELS = {
    "random": "random",
    "tpe": "TPE",
    "tpe_step": "TPE on step size",
    "gp": "GP",
    "staged": "staged",
    "lora": "lora (prior + incumbent)",
    "lora_prior_only": "lora, prior only",
    "lora_no_prior": "lora, no prior",
}
DEFAULT_METHOD = "lora+curve"  # the shipped default: the lora sampler, stopping on the curve
STAGE1_SAMPLES = 3  # staged: trials per rank in the rank sweep


STOPPERS = {"": "", "asha": " + ASHA", "curve": " + curve stop"}  # variant suffix -> label


def variants() -> list[str]:
    """Every searcher with and without ASHA; lora (and its prior-only ablation) and random
    also with the curve stopper."""
    out = [f"{m}{suffix}" for m in SEARCHERS for suffix in ("", "+asha")]
    return [*out, "lora+curve", "lora_prior_only+curve", "random+curve"]


def label(variant: str) -> str:
    name, _, stop = variant.partition("+")
    return LABELS[name] + STOPPERS[stop]


def stopper(settings: dict[str, Any], suffix: str) -> dict[str, Any] | None:
    """The early stopping of a variant: the task's ASHA, the curve stopper from ASHA's grace
    period, or none."""
    if suffix == "asha":
        return dict(settings["asha"])
    if suffix == "curve":
        return {"type": "curve", "grace_period": settings["asha"]["grace_period"]}
    return None


def _widened(values: list[float]) -> tuple[float, float]:
    """A log range that gives each grid value the same share of its nearest-value cells."""
    v = sorted(values)
    half = math.sqrt(v[1] / v[0]) if len(v) > 1 else 1.0
    return v[0] / half, v[-1] * half


def _param(values: list[float], log: bool = True) -> Any:
    if len(set(values)) == 1:
        return values[0]
    low, high = _widened(values)
    return {"low": low, "high": high, "log": log}


def space_data(grid: dict[str, list[Any]], dialect: str) -> dict[str, Any]:
    """The searched space (as spec data) over the grid, in the lr or the step-size dialect."""
    r = sorted(int(x) for x in grid["r"])
    rs = sorted(bool(x) for x in grid["use_rslora"])
    ratios = [float(x) for x in grid["alpha_ratio"]]
    space: dict[str, Any] = {
        "r": {"choices": r} if len(r) > 1 else r[0],
        "alpha_ratio": _param(ratios),
        "use_rslora": {"choices": rs} if len(rs) > 1 else rs[0],
    }
    lrs = [float(x) for x in grid["lr"]]
    if dialect == "lr":
        return space | {"learning_rate": _param(lrs)}
    lr_lo, lr_hi = _widened(lrs)
    s_lo, s_hi = _widened(ratios)
    s_hi *= math.sqrt(max(r)) if True in rs else 1.0
    s_lo *= math.sqrt(min(r)) if False not in rs else 1.0
    centre, half = math.sqrt(lr_lo * s_lo * lr_hi * s_hi), math.sqrt(lr_hi / lr_lo)
    return space | {"step_size": {"low": centre / half, "high": centre * half, "log": True}}


def task_spec(task: str, settings: dict[str, Any], dialect: str, search: dict[str, Any]) -> Any:
    raw = task_raw(task, settings, space_data(settings["grid"], dialect))
    raw["search"] |= search
    return parse_spec(raw, f"tabular:{task}")


def staged_spec(task: str, settings: dict[str, Any], seed: int) -> StudySpec:
    """The task's staged spec: rank sweep over the grid's ranks, stage 2's band the grid's
    alpha/r range (widened as every space is)."""
    g = settings["grid"]
    low, high = _widened([float(x) for x in g["alpha_ratio"]])
    ranks = sorted(int(x) for x in g["r"])
    staged: dict[str, Any] = {"r_min": ranks[0], "r_max": ranks[-1], "ratio_low": low}
    staged |= {"ratio_high": high, "samples_per_rank": STAGE1_SAMPLES}
    search = {"strategy": "staged", "staged": staged, "sampler": "tpe", "seed": seed}
    return task_spec(task, settings, "lr", search)  # type: ignore[no-any-return]


def run_staged_sim(run: Run, spec: StudySpec, asha: dict[str, Any] | None) -> None:
    """The staged strategy's own decisions (``run_staged``); each stage a simulated study.
    Stage 1 runs its ``samples_per_rank`` trials per rank; stage 2 runs until the budget."""

    def stage(stage_spec: StudySpec) -> float | None:
        last = stage_spec.name.endswith("-stage2")
        plan = StudyPlan(
            space=stage_spec.space,
            sampler=stage_spec.search.sampler,
            seed=stage_spec.search.seed,
            asha=asha,
            trials=None if last else stage_spec.search.num_samples,
            concurrency=stage_spec.search.max_concurrent,
        )
        best = run_study(run, plan, completed_only=not last)  # as lora_hpo's stage_score
        return None if best is None else best.value

    with tempfile.TemporaryDirectory(prefix="tabular-staged-") as tmp:
        run_staged(spec, stage, Path(tmp) / "staged.json", say=lambda _: None)


def simulate(table: Any, variant: str, seed: int, budget: int) -> Run:
    """One seed of one method on one task's table."""
    name, _, suffix = variant.partition("+")
    asha = stopper(table.settings, suffix)
    run = Run(table, budget)
    if name == "staged":
        run_staged_sim(run, staged_spec(table.task, table.settings, seed), asha)
        return run
    sampler, dialect = SEARCHERS[name]
    spec: StudySpec = task_spec(table.task, table.settings, dialect, {})
    prior = lora_prior(spec) if sampler == "lora" and name != "lora_no_prior" else None
    options = ABLATIONS.get(name, {})
    run_study(run, StudyPlan(spec.space, sampler, seed, asha, prior=prior, options=options))
    return run


def default_run(table: Any) -> Finished:
    """The tutorial default: its one trial, trained to the end."""
    config = table.default()
    last = table.curves[config][-1]
    return Finished("default", config, last.status, last.value, last.step)
