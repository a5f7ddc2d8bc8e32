"""The figures of one task from the simulated runs: per method the median and IQR of simple
regret on the common trial-step grid, regret at a few budgets, the trial-steps each method
needs to reach random search's final median best, the goals, and the best method."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from bench.tabular import methods
from bench.tabular.table import Table

FRACTIONS = {"B/8": 1 / 8, "B/4": 1 / 4, "B/3": 1 / 3, "B/2": 1 / 2, "B": 1.0}
EPS = 1e-9


def _finite(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 6)


def quantiles(matrix: list[list[float]]) -> dict[str, list[float]]:
    """Per grid point, the 25th, 50th and 75th percentile over seeds; inf (no trial ended
    yet) counts as worse than any value."""
    with np.errstate(invalid="ignore"):
        q = np.quantile(np.array(matrix, dtype=float), [0.25, 0.5, 0.75], axis=0)
    q = np.where(np.isnan(q), np.inf, q)
    return {"q25": list(q[0]), "median": list(q[1]), "q75": list(q[2])}


def first_at_or_below(curve: list[float], grid: list[int], target: float) -> int | None:
    """The first budget on the grid where ``curve`` is at or below ``target``."""
    for b, v in zip(grid, curve, strict=True):
        if v <= target + EPS:
            return b
    return None


def at_budget(grid: list[int], frac: float) -> int:
    """The index of the last grid point at or below ``frac`` of the budget."""
    cut = frac * grid[-1]
    return max(i for i, b in enumerate(grid) if b <= cut + EPS) if grid[0] <= cut else 0


def method_summary(runs: list[dict[str, Any]], grid: list[int], target: float) -> dict[str, Any]:
    q = quantiles([r["regret"] for r in runs])
    at = {
        name: {k: _finite(q[k][at_budget(grid, f)]) for k in ("q25", "median", "q75")}
        | {"trial_steps": grid[at_budget(grid, f)]}
        for name, f in FRACTIONS.items()
    }
    finals = np.array([r["regret"][-1] for r in runs])
    configs = Counter(r["best_config"] for r in runs if r["best_config"])
    return {
        "median": [_finite(x) for x in q["median"]],
        "q25": [_finite(x) for x in q["q25"]],
        "q75": [_finite(x) for x in q["q75"]],
        "at": at,
        "steps_to_random_best": first_at_or_below(q["median"], grid, target),
        "anytime_mean": _finite(float(np.mean(np.minimum(q["median"], 1e9)))),
        "oracle_found_share": round(float(np.mean(finals <= EPS)), 3),
        "trials_mean": round(float(np.mean([r["trials"] for r in runs])), 1),
        "seeds": len(runs),
        "best_configs": configs.most_common(3),
    }


def ranked(per: dict[str, dict[str, Any]]) -> list[str]:
    """The methods, best first: median regret at B, then over the whole curve, then the
    trial-steps to random search's final median."""

    def key(v: str) -> tuple[float, float, float]:
        m = per[v]
        final = m["at"]["B"]["median"]
        steps = m["steps_to_random_best"]
        return (
            math.inf if final is None else final,
            math.inf if m["anytime_mean"] is None else m["anytime_mean"],
            math.inf if steps is None else steps,
        )

    return sorted(per, key=key)


def _best(per: dict[str, dict[str, Any]]) -> str:
    return ranked(per)[0]


def goals(
    per: dict[str, dict[str, Any]], grid: list[int], default_regret: float, one_trial: int
) -> dict[str, Any]:
    """(a) lora-hpo's default study reaches random search's final median best within a third
    of random's trial-steps, (a5) within a fifth; (b) it beats the tutorial default at the
    budget; (gap) at equal compute, its median regret against the tutorial default's: the
    tutorial default is one full trial, so the compute of one full trial in each of the study's
    two slots (``one_trial`` x 2), when its first trials end."""
    d = per.get(methods.DEFAULT_METHOD)
    if d is None or "random" not in per:
        return {}
    steps = d["steps_to_random_best"]
    at_b = d["at"]["B"]["median"]
    equal = 2 * one_trial  # two trials at once (the simulator's concurrency)
    at_one = next((v for b, v in zip(grid, d["median"], strict=True) if b >= equal), None)
    below = [b for b, v in zip(grid, d["median"], strict=True) if v is not None]
    beats = [
        b
        for b, v in zip(grid, d["median"], strict=True)
        if v is not None and v < default_regret - EPS
    ]
    return {
        "a": {"met": steps is not None and steps <= grid[-1] / 3, "trial_steps": steps,
              "random_trial_steps": grid[-1], "third": grid[-1] / 3},
        "a5": {"met": steps is not None and steps <= grid[-1] / 5, "trial_steps": steps,
               "fifth": grid[-1] / 5},
        "gap": {"trial_steps": equal, "median_regret": None if at_one is None else _finite(at_one),
                "default_regret": _finite(default_regret)},
        "b": {"met": at_b is not None and at_b < default_regret - EPS,
              "median_regret_at_B": at_b, "default_regret": _finite(default_regret),
              "first_budget_beating_default": beats[0] if beats else None,
              "first_budget_with_a_result": below[0] if below else None},
    }  # fmt: skip


def merge_task(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """One task's figures from two simulations of different methods: the methods of both,
    with the steps to random's final median, the goals and the best method recomputed."""
    per = old["methods"] | new["methods"]
    grid = new["grid"]

    def curve(m: dict[str, Any]) -> list[float]:
        return [math.inf if x is None else x for x in m["median"]]

    target = curve(per["random"])[-1] if "random" in per else math.inf
    for m in per.values():
        m["steps_to_random_best"] = first_at_or_below(curve(m), grid, target)
    default = new["default"]["regret"]
    return new | {
        "default_method": methods.DEFAULT_METHOD,
        "methods": per,
        "random_final_median_regret": _finite(target),
        "goals": goals(per, grid, math.inf if default is None else default, new["max_steps"]),
        "best_method": _best(per),
    }


def task_summary(
    table: Table, grid: list[int], runs: list[dict[str, Any]], variants: list[str]
) -> dict[str, Any]:
    oracle, best = table.oracle()
    default = methods.default_run(table)
    default_regret = table.regret(default.value if default.status == "completed" else None)
    by = {v: [r for r in runs if r["variant"] == v] for v in variants}
    random_final = (
        quantiles([r["regret"] for r in by["random"]])["median"][-1]
        if by.get("random")
        else math.inf
    )
    per = {
        v: method_summary(rs, grid, random_final) | {"label": methods.label(v)}
        for v, rs in by.items()
        if rs
    }
    return {
        "title": table.settings["title"],
        "metric": "eval_loss" if table.mode == "min" else "eval_accuracy",
        "mode": table.mode,
        "max_steps": table.max_steps,
        "asha": table.settings["asha"],
        "configs": len(table.curves),
        "budget": grid[-1],
        "grid": grid,
        "oracle": {"config": oracle, "value": best},
        "default": {"config": default.config, "value": _finite(default.value),
                    "regret": _finite(default_regret), "trial_steps": default.steps},
        "random_final_median_regret": _finite(random_final),
        "methods": per,
        "goals": goals(per, grid, default_regret, table.max_steps),
        "default_method": methods.DEFAULT_METHOD,
        "held_out": bool(table.settings.get("held_out", False)),
        "best_method": _best(per) if per else None,
    }  # fmt: skip
