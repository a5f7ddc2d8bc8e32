"""Render bench/RESULTS.md from a results.json written by bench/run.py, plus the search-quality
section (bench/search_quality.py) when a search_quality.json lies beside the results.json.

python bench/report.py [RESULTS_JSON] [RESULTS_MD]   # re-render without re-running
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import figures

STUDIES = {
    "lora_same": "lora-hpo, peer's setup (same configs, ASHA)",
    "lora_no_asha": "lora-hpo, peer's setup, no early stopping",
    "lora_recommended": "lora-hpo, its recommended (quickstart) setup",
    "peer_ray": "peer: Trainer.hyperparameter_search, Ray",
    "peer_optuna": "peer: Trainer.hyperparameter_search, Optuna",
}


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def figure_table(results: dict[str, Any]) -> str:
    rows = ["| figure | value | aim | met? | definition |", "|---|---|---|---|---|"]
    for name, f in results["figures"].items():
        value = num(f["value"], 1 if name.endswith("_s") else 3)
        if name.startswith("time_to_target") and not all(r["reached"] for r in f["repeats"]):
            value = f"> {value} (target not reached)"
        aim = "—" if f["aim"] is None else f"≤ {num(f['aim'], 2)}"
        rows.append(f"| {name} | {value} | {aim} | {num(f['met'])} | {f['definition']} |")
    return "\n".join(rows)


def breakdown_table(results: dict[str, Any]) -> str:
    head = (
        "| study | wall s | conc. | trials | trial-steps | in-step s | in-trial other s"
        " | outside trials s | overhead s | s per step | best acc. |"
    )
    rows = [head, "|---|" + "---|" * 10]
    for rep, studies in enumerate(results["breakdowns"], 1):
        for name, b in studies.items():
            cells = [
                b["wall_s"],
                b["concurrency"],
                b["trials"],
                b["trial_steps"],
                b["in_step_s"],
                b["in_trial_other_s"],
                b["outside_trials_s"],
                b["overhead_s"],
                b["s_per_step"],
                b["best"],
            ]
            text = [num(c, 1) for c in cells[:-2]] + [num(c, 3) for c in cells[-2:]]
            label = STUDIES[name] + (f" (repeat {rep})" if len(results["breakdowns"]) > 1 else "")
            rows.append(f"| {label} | " + " | ".join(text) + " |")
    return "\n".join(rows)


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
        f" lora-hpo evaluates {s['max_eval_samples']} examples every {s['eval_every']} steps and"
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


def all_loads(r: dict[str, Any]) -> list[float]:
    """Every load average recorded: before and after each part, and the peak during it."""
    loads = []
    for parts in r["parts"]:
        for p in parts.values():
            info = p["part"]
            loads += [*info["load_before"], *info["load_after"]]
            loads += [info["load_during"]["max"]] if "load_during" in info else []
    return loads


def caveats(r: dict[str, Any]) -> list[str]:
    """What limits the figures: shared-machine load, repeats, and what is not counted."""
    loads = all_loads(r)
    b = r["breakdowns"][0]
    same, off = b["lora_same"]["s_per_step"], b["lora_no_asha"]["s_per_step"]
    return [
        f"- The machine was shared: load averages ranged {min(loads):.1f}-{max(loads):.1f}"
        f" across parts on {r['machine']['nproc']} CPUs (the bench itself adds about 2). The"
        f" same per-step work (same configs and settings) ran at {same:.2f} s per step in"
        f" lora-hpo's ASHA study and {off:.2f} s in its no-early-stopping study, so"
        " wall-time figures carry that noise; figures that subtract in-step time (overhead,"
        " budget overhead) carry less of it.",
        f"- Repeats: {r['settings']['repeats']}; with one, a figure is a single measurement.",
        "- lora-hpo's trial-steps are its reported steps: a trial that ASHA stops may train a"
        " step or so past its last report before it sees the stop. The peer's are counted by"
        " its StepTimer callback at every step.",
        "- The peer saves one checkpoint per trial that reaches its last step (the default"
        " save_steps=500 exceeds the trial length, and the Trainer always saves at the last"
        " step); lora-hpo saves the adapter at every report, which its resume and export need."
        " That cost is in lora-hpo's non-step time.",
    ]


def setup_section(r: dict[str, Any]) -> list[str]:
    s = r["settings"]
    return [
        f"- Task: BBC news (5 topics) on all-MiniLM-L6-v2 with LoRA on query/key/value;"
        f" eval split {s['eval_fraction']} (seed 0), eval set capped at {s['max_eval_samples']},"
        f" train capped at {s['max_train_samples']}; sequence length {s['max_length']}, batch"
        f" {s['batch_size']} (eval {s['eval_batch_size']}), {s['max_steps']} steps per trial,"
        f" eval every {s['eval_every']} steps, {s['trials']} trials, {s['concurrency']} at once.",
        "- Space (both tools): r in {4, 8, 16}, alpha/r uniform in [0.5, 4], rsLoRA on/off,"
        " learning rate log-uniform in [1e-5, 2e-3]. The configs are the first draws of"
        f" Optuna's RandomSampler(seed={s['seed']}); lora-hpo's and the Optuna peer's seeded TPE"
        " draw exactly these (TPE's first 10 trials are random), the Ray peer gets them as"
        " `points_to_evaluate`. Each study's trained configs are compared with this list.",
        f"- Early stopping: ASHA, grace {s['grace_period']} steps, reduction factor"
        f" {s['reduction_factor']} (Ray peer: the same in reports, one per eval; Optuna peer:"
        " SuccessiveHalvingPruner with the same numbers, which is ASHA). lora-hpo's recommended"
        f" setup uses quickstart's ASHA (grace {s['recommended_grace_period']}, factor 2).",
        f"- Repeats: {s['repeats']} (values are medians over repeats).",
    ]


def load_rows(r: dict[str, Any]) -> list[str]:
    rows = [
        "| part | repeat | wall s | load before (1/5/15 min) | load after | 1-min load during"
        " (mean / max) |",
        "|---|---|---|---|---|---|",
    ]
    for rep, parts in enumerate(r["parts"], 1):
        for name, p in parts.items():
            info = p["part"]
            during = info.get("load_during")  # sampled every 5 s (absent in older results)
            mid = f"{during['mean']:.2f} / {during['max']:.2f}" if during else "not sampled"
            cells = [fmt_load(info["load_before"]), fmt_load(info["load_after"]), mid]
            rows.append(f"| {name} | {rep} | {info['wall_s']:.1f} | " + " | ".join(cells) + " |")
    return rows


def header(results: dict[str, Any]) -> list[str]:
    m, v = results["machine"], results["versions"]
    dirty = " (with uncommitted changes)" if results["git"]["dirty"] else ""
    minutes = sum(p["part"]["wall_s"] for parts in results["parts"] for p in parts.values()) / 60
    return [
        "# lora-hpo benchmark results",
        "",
        "Generated by `bench/run.py` (re-render: `python bench/report.py`); every figure is a"
        " ratio of two things measured side by side in the same run (the quickstart's are"
        " absolute).",
        "",
        f"- Command: `{results['command']}` (mode: {results['mode']}; the parts took"
        f" {minutes:.0f} minutes in all)",
        f"- Date: {results['date']}; git {results['git']['commit']}{dirty}",
        f"- Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, no GPU;"
        f" load average {fmt_load(results['load_before'])} before,"
        f" {fmt_load(results['load_after'])} after (other jobs shared the machine)",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
    ]


def render(results: dict[str, Any]) -> str:
    sections = [
        ("Figures", [figure_table(results)]),
        ("Notes", notes(results)),
        ("Side by side", [breakdown_table(results)]),
        ("Caveats", caveats(results)),
        ("Setup", setup_section(results)),
        ("Load average per part", load_rows(results)),
    ]
    lines = header(results)
    for title, body in sections:
        lines += ["", f"## {title}", "", *body]
    return "\n".join(lines) + "\n"


def fmt_load(load: list[float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def with_search_quality(md: str, path: Path) -> str:
    """``md`` with the search-quality section appended when ``path`` (the JSON written by
    bench/search_quality.py) exists; unchanged otherwise."""
    if not path.is_file():
        return md
    import search_quality

    return md + "\n" + search_quality.render_section(json.loads(path.read_text()))


def rerender(src: Path, dst: Path) -> None:
    """Recompute the figures from a results.json and write the Markdown (plus the
    search-quality section when search_quality.json lies beside the results.json)."""
    results = json.loads(src.read_text())
    conc = results["concurrency"]  # figures are recomputed from the raw parts
    results["figures"] = figures.compute(results["parts"], conc)
    results["breakdowns"] = figures.breakdowns(results["parts"], conc)
    dst.write_text(with_search_quality(render(results), src.parent / "search_quality.json"))
    print(f"wrote {dst}")


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "out" / "results.json"
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent / "RESULTS.md"
    rerender(src, dst)


if __name__ == "__main__":
    main()
