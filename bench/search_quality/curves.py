"""Reading a finished method's studies back (Ray Tune's result.json files) and its anytime
curve: reports in time order, each adding the steps its trial trained since its previous
report, with the best raw metric so far; "best within B" cuts the curve at B trial-steps."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_hpo.spec.files import SPEC_FILE
from lora_hpo.spec.loader import load_spec
from lora_hpo.spec.space import derive


@dataclass(frozen=True)
class Report:
    """One report of one trial, as Ray Tune stored it in the trial's result.json."""

    trial: str  # "<study directory>/<trial id>": a staged study has one directory per stage
    step: int
    value: float  # the raw metric; NaN when the trial reported none
    at: float  # reported_at, epoch seconds


def raw_value(row: dict[str, Any], metric: str) -> float:
    """The unpenalised metric of a report (``<metric>_raw``; the metric itself if absent)."""
    value = row.get(f"{metric}_raw", row.get(metric))
    return float(value) if isinstance(value, int | float) else math.nan


def trial_config(space_spec: Any, sampled: dict[str, Any]) -> dict[str, Any]:
    """r, lora_alpha, alpha/r, rsLoRA and lr of a trial (fixed params from its study's spec)."""
    p = derive(space_spec, sampled)
    return {
        "r": p.r,
        "lora_alpha": p.lora_alpha,
        "alpha_ratio": p.alpha_ratio,
        "use_rslora": p.use_rslora,
        "learning_rate": p.learning_rate,
    }


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_study(storage: Path, metric: str) -> tuple[list[Report], dict[str, dict[str, Any]]]:
    """Every report and every trial (config, last step, status) under a storage root."""
    reports: list[Report] = []
    trials: dict[str, dict[str, Any]] = {}
    for study in sorted(p for p in storage.iterdir() if (p / SPEC_FILE).is_file()):
        space = load_spec(study / SPEC_FILE).space
        for result in sorted(study.glob("*/result.json")):
            rows = read_rows(result)
            if not rows:
                continue
            key = f"{study.name}/{rows[0]['trial_id']}"
            params = result.parent / "params.json"
            sampled = json.loads(params.read_text()) if params.is_file() else rows[0]["config"]
            for row in rows:
                value = raw_value(row, metric)
                reports.append(Report(key, int(row["step"]), value, float(row["reported_at"])))
            trials[key] = {
                "study": study.name,
                "config": trial_config(space, sampled),
                "last_step": max(int(r["step"]) for r in rows),
                "last_value": raw_value(rows[-1], metric),
                "status": rows[-1].get("status"),
            }
    return reports, trials


def better(value: float, best: float | None, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def anytime_curve(reports: Iterable[Report], mode: str, start: float) -> list[dict[str, Any]]:
    """Reports in time order with the trial-steps spent so far and the best value so far.

    A report adds the steps its trial trained since that trial's previous report (the first
    report adds its step), so a trial that ASHA stops costs the steps it reached."""
    reached: dict[str, int] = {}
    spent, best, best_trial = 0, None, None
    curve = []
    for rep in sorted(reports, key=lambda r: (r.at, r.trial, r.step)):
        spent += max(0, rep.step - reached.get(rep.trial, 0))
        reached[rep.trial] = max(rep.step, reached.get(rep.trial, 0))
        if better(rep.value, best, mode):
            best, best_trial = rep.value, rep.trial
        point = {"trial_steps": spent, "t_s": rep.at - start, "trial": rep.trial}
        point |= {"step": rep.step, "value": finite(rep.value), "best": best}
        curve.append(point | {"best_trial": best_trial})
    return curve


def finite(value: float) -> float | None:
    """The value, or None for NaN and infinities (JSON has neither)."""
    return value if math.isfinite(value) else None


def method_figures(
    curve: list[dict[str, Any]], trials: dict[str, dict[str, Any]], budget: int
) -> dict[str, Any]:
    """Best within budget B (the curve cut at B trial-steps), and at the end of the run."""
    within = [p for p in curve if p["trial_steps"] <= budget]
    cut = within[-1] if within else None
    end = curve[-1] if curve else None

    def config(point: dict[str, Any] | None) -> dict[str, Any] | None:
        trial = point and point["best_trial"]
        return trials[trial]["config"] if trial else None

    return {
        "best_within_budget": cut and cut["best"],
        "best_at_end": end and end["best"],
        "trial_steps_within_budget": cut["trial_steps"] if cut else 0,
        "trial_steps_total": end["trial_steps"] if end else 0,
        "t_at_budget_s": cut and cut["t_s"],  # the last report within B, from the study start
        "trials_within_budget": len({p["trial"] for p in within}),
        "trials_total": len(trials),
        "best_trial_within_budget": cut and cut["best_trial"],
        "best_config_within_budget": config(cut),
        "best_config_at_end": config(end),
    }
