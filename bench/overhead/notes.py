"""The overhead bench's notes: what each figure's numbers show, in words, with the time
breakdown behind it (in steps, between steps inside trials, outside trials)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def num(value: Any, digits: int = 3) -> str:
    """A figure as text ("—" when missing)."""
    import math

    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def shares(b: dict[str, Any]) -> str:
    slots = b["wall_s"] * b["concurrency"]
    parts = [
        ("inside training steps", b["in_step_s"]),
        ("inside trials between steps", b["in_trial_other_s"]),
        ("outside trials", b["outside_trials_s"]),
    ]
    text = ", ".join(f"{100 * v / slots:.0f}% {label}" for label, v in parts)
    extra = f"; evaluation alone {b['eval_s']:.1f} s" if "eval_s" in b else ""
    return f"{slots:.0f} worker-slot seconds (wall x {b['concurrency']}): {text}{extra}"


def step_ratio(b: dict[str, Any]) -> float:
    """The figure's own ratio for any study: wall / (in-step time / concurrency)."""
    return float(b["wall_s"] / (b["in_step_s"] / b["concurrency"]))


def note_overhead(r: dict[str, Any]) -> str:
    bd, s = r["breakdowns"][0], r["settings"]
    b = bd["lora_same"]
    as_work = (b["wall_s"] - b["in_trial_other_s"] / b["concurrency"]) / (
        b["in_step_s"] / b["concurrency"]
    )
    return (
        f"In-step time counts training steps only. {shares(b)}. Between steps inside a trial"
        f" lora-hpo evaluates {s['max_eval_samples']} examples at ASHA's rungs and each"
        f" trial's last step (the peer: every {s['eval_every']} steps) and"
        f" saves the adapter as a checkpoint with each report; counting that time as work, the"
        f" ratio would be {as_work:.2f}. Outside trials: Ray's start ({b['setup_s']:.1f} s"
        f" before fit), worker start-up, each worker's first model load and tokenisation"
        f" (start_s summed over trials: {b['start_s']:.1f} s), scheduling, and slots left idle"
        f" while the last trials finish. The same ratio for the peers: Ray"
        f" {step_ratio(bd['peer_ray']):.2f}, Optuna {step_ratio(bd['peer_optuna']):.2f}."
    )


def note_trial_start(r: dict[str, Any]) -> str:
    d = r["figures"]["trial_start"]["repeats"][0]
    if not d.get("later_n"):
        return "No worker ran more than one trial, so there is no second trial to compare."
    return (
        f"Median start_s: {d['first_median_s']:.2f} s for a worker's first trial (base model"
        f" load and tokenisation, n={d['first_n']}), {d['later_median_s']:.2f} s for later"
        f" trials in the same worker (cached model, fresh adapter, n={d['later_n']})."
    )


def note_asha(r: dict[str, Any]) -> str:
    d, s = r["figures"]["asha_steps"]["repeats"][0], r["settings"]
    same = "the same configs" if d["same_configs"] else "DIFFERENT configs (check the seeds)"
    return (
        f"With ASHA (grace {s['grace_period']} steps, reduction factor"
        f" {s['reduction_factor']}, max {s['max_steps']}) the trials ran {d['steps_asha']}"
        f" trial-steps, without it {d['steps_none']}; both studies trained {same}. Best accuracy"
        f" {d['best_asha']:.3f} with ASHA, {d['best_none']:.3f} without (equal within 1%:"
        f" {num(d['equal_best'])}). ASHA stops a trial at a rung only when it ranks below the top"
        f" 1/{s['reduction_factor']} of the results already recorded there, so the first trials"
        " (which meet an empty rung) run to the end; with few trials that is a large share."
    )


def note_target(r: dict[str, Any], peer: str) -> str:
    d = r["figures"][f"time_to_target_vs_{peer}"]["repeats"][0]
    got = (
        f"reached it {d['lora_hpo_s']:.1f} s after its start"
        if d["reached"]
        else f"did not reach it (its best: {d['lora_hpo_best']:.3f}) in {d['lora_hpo_s']:.1f} s"
    )
    ours, theirs = r["breakdowns"][0]["lora_recommended"], r["breakdowns"][0][f"peer_{peer}"]
    scaled = d["value"] * theirs["s_per_step"] / ours["s_per_step"]
    return (
        f"Target: the {peer} peer's final best accuracy {d['target']:.3f}, after"
        f" {d['peer_wall_s']:.1f} s. lora-hpo with its recommended setup (quickstart's space,"
        f" head learning rate and ASHA settings, on the same task settings) {got}. Steps ran"
        f" at {ours['s_per_step']:.2f} s in that study and {theirs['s_per_step']:.2f} s in the"
        f" peer's (machine load differed); scaled by that ratio the figure would be"
        f" {scaled:.3f} (a rough correction: only in-step time scales with load)."
    )


def between_share(b: dict[str, Any]) -> float:
    """Percent of non-step worker-slot time spent inside trials between steps."""
    return float(100 * b["in_trial_other_s"] / (b["in_trial_other_s"] + b["outside_trials_s"]))


def note_budget(r: dict[str, Any], peer: str) -> str:
    d = r["figures"][f"budget_overhead_vs_{peer}"]["repeats"][0]
    ours, theirs = r["breakdowns"][0]["lora_same"], r["breakdowns"][0][f"peer_{peer}"]
    text = (
        f"Non-step wall time: lora-hpo {d['lora_hpo_overhead_s']:.1f} s, peer"
        f" {d['peer_overhead_s']:.1f} s; same configs: {num(d['same_configs'])}. lora-hpo:"
        f" {shares(ours)}. Peer: {shares(theirs)}. Trial-steps: lora-hpo {ours['trial_steps']},"
        f" peer {theirs['trial_steps']} (asynchronous early stopping depends on the order in"
        " which reports arrive, so the same settings can stop different trials); non-step"
        f" seconds per trial-step: lora-hpo {ours['overhead_s'] / ours['trial_steps']:.2f},"
        f" peer {theirs['overhead_s'] / theirs['trial_steps']:.2f}. Time inside trials between"
        f" steps (mostly evaluation: the peer's alone took {theirs['eval_s']:.0f} of its"
        f" {theirs['in_trial_other_s']:.0f} s) is {between_share(ours):.0f}% of lora-hpo's"
        f" non-step slot time and {between_share(theirs):.0f}% of the peer's; it is the same work"
        " for both tools, so this ratio cannot go far below 1 unless evaluation gets cheaper."
    )
    if peer == "optuna":
        text += (
            " The Optuna backend runs one trial at a time in the driver, on both cores:"
            " `n_jobs=2` runs two threads over one shared Trainer, and in development (transformers"
            " 5.23) the threads overwrote each other's model, arguments and callback state."
            " Starting no processes, it has little non-step time; its cost is in the steps:"
            f" {theirs['s_per_step']:.2f} s per step on 2 threads, one trial at a time, against"
            f" lora-hpo's {ours['s_per_step']:.2f} s per step on 1 thread, two trials at once"
            f" (trial-steps per wall second: peer {theirs['trial_steps'] / theirs['wall_s']:.2f},"
            f" lora-hpo {ours['trial_steps'] / ours['wall_s']:.2f})."
        )
    return text


def notes(results: dict[str, Any]) -> list[str]:
    writers: dict[str, Callable[[dict[str, Any]], str]] = {
        "overhead": note_overhead,
        "trial_start": note_trial_start,
        "asha_steps": note_asha,
        "time_to_target_vs_ray": lambda r: note_target(r, "ray"),
        "time_to_target_vs_optuna": lambda r: note_target(r, "optuna"),
        "budget_overhead_vs_ray": lambda r: note_budget(r, "ray"),
        "budget_overhead_vs_optuna": lambda r: note_budget(r, "optuna"),
    }
    out = []
    for name, write in writers.items():
        missed = results["figures"][name]["met"] is False
        out.append(f"- **{name}**{' (aim missed)' if missed else ''}: {write(results)}")
    return out
