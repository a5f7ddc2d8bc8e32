"""The bench's figures, computed from the parts' result files (one set per repeat).

Every figure is a ratio of two quantities measured side by side in the same run, except the
quickstart's wall time and accuracy, which are absolute. With several repeats a figure's value
is the median of its per-repeat values.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

AIMS = {  # figure -> (aim, a one-line definition)
    "overhead": (1.10, "lora-hpo study wall / (in-step training time / concurrency)"),
    "trial_start": (0.10, "start_s of 2nd+ trials in a worker / start_s of the worker's 1st"),
    "asha_steps": (0.35, "trial-steps with ASHA / without early stopping (same configs, seed)"),
    "time_to_target_vs_ray": (0.50, "lora-hpo time to the peer's best / peer (Ray) wall"),
    "time_to_target_vs_optuna": (0.50, "lora-hpo time to the peer's best / peer (Optuna) wall"),
    "budget_overhead_vs_ray": (0.30, "(wall - in-step/concurrency): lora-hpo / peer (Ray)"),
    "budget_overhead_vs_optuna": (0.30, "(wall - in-step/concurrency): lora-hpo / peer (Optuna)"),
    "quickstart_wall_s": (180.0, "`lora-hpo run search_spaces/quickstart.yaml`, seconds"),
    "quickstart_best_accuracy": (None, "best eval accuracy of that quickstart run"),
}
BEST_TOLERANCE = 0.01  # "an equal best metric": within 1% (relative)


def config_key(params: dict[str, Any]) -> tuple[Any, ...]:
    """A config, rounded so that the same draw compares equal across tools."""
    return (
        int(params["r"]),
        round(float(params["alpha_ratio"]), 6),
        bool(params["use_rslora"]),
        float(f"{float(params['learning_rate']):.9g}"),
    )


def same_configs(*lists: list[dict[str, Any]]) -> bool:
    keys = [sorted(config_key(p) for p in params) for params in lists]
    return all(k == keys[0] for k in keys[1:])


def is_peer(result: dict[str, Any]) -> bool:
    return "backend" in result


def trial_params(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [t["params"] for t in result["trials"] if t.get("params")]


def spans(result: dict[str, Any]) -> list[tuple[float, float]]:
    """(first step, last event) wall-clock times of each trial."""
    if is_peer(result):
        return [(t["first_step_at"], t["updated_at"]) for t in result["trials"] if t["steps"]]
    return [(t["started_at"] + t["start_s"], t["reported_at"]) for t in result["trials"]]


def breakdown(result: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """Where the study's worker-slot seconds (wall x concurrency) went."""
    in_step = sum(t["step_time_s"] for t in result["trials"])
    busy = sum(end - start for start, end in spans(result))
    slots = result["wall_s"] * concurrency
    steps_key = "steps" if is_peer(result) else "step"
    out = {
        "wall_s": result["wall_s"],
        "concurrency": concurrency,
        "trials": len(result["trials"]),
        "trial_steps": sum(int(t[steps_key]) for t in result["trials"]),
        "in_step_s": in_step,
        "in_trial_other_s": busy - in_step,  # eval, checkpoints, reports, logging
        "outside_trials_s": slots - busy,  # start-up, model loads, scheduling, idle slots
        "overhead_s": result["wall_s"] - in_step / concurrency,
        "s_per_step": in_step / max(1, sum(int(t[steps_key]) for t in result["trials"])),
        "best": result["best"],
    }
    if is_peer(result):
        out["eval_s"] = sum(t["eval_s"] for t in result["trials"])
    else:
        out["setup_s"] = result["wall_s"] - result["fit_wall_s"]  # Ray start, before fit()
        out["start_s"] = sum(t["start_s"] for t in result["trials"])
    return out | phases(result, out)


PHASES = {  # a study's wall, split: seconds per slot (slot-seconds / concurrency)
    "set_up": "set-up: until the first trial's code runs (imports, Ray, data, model)",
    "trial_start": "trial start: from a trial's code to its first step (model load, PEFT)",
    "training": "training: inside the steps",
    "eval": "evaluation",
    "checkpoint_report": "checkpoints, reports and logging between steps",
    "scheduling_idle": "scheduling, worker start and idle slots: the rest",
}


def phases(result: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``{"phases": {name: seconds per slot}}`` summing to the wall, from each trial's start
    (lora-hpo: the trainable's entry; the peer: its ``model_init``), first step, eval time and
    last event; empty for a result recorded before these times were (an older JSON)."""
    trials = result["trials"]
    needs = "init_at" if is_peer(result) else "time_in_eval_s"  # recorded from 2026-12-06 on
    if not trials or any(needs not in t for t in trials):
        return {}
    conc = b["concurrency"]
    if is_peer(result):
        ran = [t for t in trials if t["steps"]]
        begun = [t["init_at"] for t in ran]
        start = sum(t["first_step_at"] - t["init_at"] for t in ran)
        evaluation = b["eval_s"]
    else:
        begun = [t["started_at"] for t in trials]
        start = b["start_s"]
        evaluation = sum(t["time_in_eval_s"] or 0.0 for t in trials)
    split = {
        "set_up": min(begun) - result["start"],
        "trial_start": start / conc,
        "training": b["in_step_s"] / conc,
        "eval": evaluation / conc,
        "checkpoint_report": (b["in_trial_other_s"] - evaluation) / conc,
    }
    split["scheduling_idle"] = b["wall_s"] - sum(split.values())
    return {"phases": split}


def overhead(parts: dict[str, Any], conc: dict[str, int]) -> dict[str, Any]:
    b = breakdown(parts["lora_same"], conc["lora_same"])
    return {"value": b["wall_s"] / (b["in_step_s"] / b["concurrency"]), "study": "lora_same"}


def trial_start(parts: dict[str, Any]) -> dict[str, Any]:
    """Pooled over the lora-hpo studies: each worker's first trial vs its later ones."""
    first, later = [], []
    for name in ("lora_same", "lora_no_asha", "lora_recommended"):
        workers: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for t in parts[name]["trials"]:
            workers[t["pid"]].append(t)
        for trials in workers.values():
            trials.sort(key=lambda t: t["started_at"])
            first.append(trials[0]["start_s"])
            later += [t["start_s"] for t in trials[1:]]
    if not later:
        return {"value": math.nan, "first_s": first, "later_s": later}
    value = statistics.median(later) / statistics.median(first)
    return {
        "value": value,
        "first_median_s": statistics.median(first),
        "later_median_s": statistics.median(later),
        "first_n": len(first),
        "later_n": len(later),
    }


def asha(parts: dict[str, Any]) -> dict[str, Any]:
    on, off = parts["lora_same"], parts["lora_no_asha"]
    steps_on = sum(int(t["step"]) for t in on["trials"])
    steps_off = sum(int(t["step"]) for t in off["trials"])
    equal_best = abs(on["best"] - off["best"]) <= BEST_TOLERANCE * off["best"]
    return {
        "value": steps_on / steps_off,
        "steps_asha": steps_on,
        "steps_none": steps_off,
        "best_asha": on["best"],
        "best_none": off["best"],
        "equal_best": equal_best,
        "same_configs": same_configs(trial_params(on), trial_params(off)),
    }


def time_to_target(parts: dict[str, Any], peer: str) -> dict[str, Any]:
    """When lora-hpo's best-so-far first reaches the peer's final best (report timestamps)."""
    ours, theirs = parts["lora_recommended"], parts[peer]
    target = theirs["best"]
    reached = None
    for rep in sorted(ours["reports"], key=lambda r: r["reported_at"]):
        if rep["eval_accuracy"] is not None and rep["eval_accuracy"] >= target:
            reached = rep["reported_at"] - ours["start"]
            break
    elapsed = reached if reached is not None else ours["wall_s"]  # not reached: a lower bound
    return {
        "value": elapsed / theirs["wall_s"],
        "reached": reached is not None,
        "target": target,
        "lora_hpo_s": elapsed,
        "lora_hpo_best": ours["best"],
        "peer_wall_s": theirs["wall_s"],
    }


def budget_overhead(parts: dict[str, Any], peer: str, conc: dict[str, int]) -> dict[str, Any]:
    ours = breakdown(parts["lora_same"], conc["lora_same"])
    theirs = breakdown(parts[peer], conc[peer])
    return {
        "value": ours["overhead_s"] / theirs["overhead_s"],
        "lora_hpo_overhead_s": ours["overhead_s"],
        "peer_overhead_s": theirs["overhead_s"],
        "same_configs": same_configs(trial_params(parts["lora_same"]), trial_params(parts[peer])),
    }


def one_repeat(parts: dict[str, Any], conc: dict[str, int]) -> dict[str, dict[str, Any]]:
    quick = parts["quickstart"]
    return {
        "overhead": overhead(parts, conc),
        "trial_start": trial_start(parts),
        "asha_steps": asha(parts),
        "time_to_target_vs_ray": time_to_target(parts, "peer_ray"),
        "time_to_target_vs_optuna": time_to_target(parts, "peer_optuna"),
        "budget_overhead_vs_ray": budget_overhead(parts, "peer_ray", conc),
        "budget_overhead_vs_optuna": budget_overhead(parts, "peer_optuna", conc),
        "quickstart_wall_s": {"value": quick["wall_s"], "trials": quick["trials"]},
        "quickstart_best_accuracy": {"value": quick["best"]},
    }


def met(name: str, value: float, details: list[dict[str, Any]]) -> bool | None:
    aim = AIMS[name][0]
    if aim is None or not math.isfinite(value):
        return None if aim is None else False
    ok = value <= aim
    if name == "asha_steps":
        ok = ok and all(d["equal_best"] for d in details)
    if name.startswith("time_to_target"):
        ok = ok and all(d["reached"] for d in details)
    return ok


def compute(repeats: list[dict[str, Any]], conc: dict[str, int]) -> dict[str, Any]:
    """Figures over repeats: the median value, the aim, met?, and each repeat's details."""
    per_repeat = [one_repeat(parts, conc) for parts in repeats]
    out = {}
    for name, (aim, definition) in AIMS.items():
        details = [r[name] for r in per_repeat]
        value = statistics.median(float(d["value"]) for d in details)
        out[name] = {
            "value": value,
            "aim": aim,
            "met": met(name, value, details),
            "definition": definition,
            "repeats": details,
        }
    return out


def breakdowns(repeats: list[dict[str, Any]], conc: dict[str, int]) -> list[dict[str, Any]]:
    """Per repeat, per study: the measured breakdown (for the side-by-side table)."""
    names = ("lora_same", "lora_no_asha", "lora_recommended", "peer_ray", "peer_optuna")
    return [{name: breakdown(parts[name], conc[name]) for name in names} for parts in repeats]
