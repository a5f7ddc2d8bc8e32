"""The overhead bench's section of bench/RESULTS.md (``overhead.md``), rendered from its
results.json; ``bench.results_md`` joins the sections. Re-render without re-running:

    python -m bench.overhead.render [RESULTS_JSON] [RESULTS_MD]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench import results_md
from bench.overhead import figures
from bench.overhead.notes import notes, num

BENCH = Path(__file__).resolve().parents[1]

STUDIES = {
    "lora_same": "lora-hpo, peer's setup (same configs, ASHA)",
    "lora_no_asha": "lora-hpo, peer's setup, no early stopping",
    "lora_recommended": "lora-hpo, its recommended (quickstart) setup",
    "peer_ray": "peer: Trainer.hyperparameter_search, Ray",
    "peer_optuna": "peer: Trainer.hyperparameter_search, Optuna",
}


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
        "Generated by `python -m bench.overhead` (re-render: `python -m bench.overhead.render`);"
        " every figure is a"
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


def rerender(src: Path, dst: Path) -> None:
    """Recompute the figures from a results.json (from its raw parts), rewrite overhead.md
    beside it and join the sections into ``dst``."""
    results = json.loads(src.read_text())
    conc = results["concurrency"]
    results["figures"] = figures.compute(results["parts"], conc)
    results["breakdowns"] = figures.breakdowns(results["parts"], conc)
    (src.parent / "overhead.md").write_text(render(results))
    results_md.compose(src.parent, dst)


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else BENCH / "out" / "results.json"
    rerender(src, Path(sys.argv[2]) if len(sys.argv) > 2 else BENCH / "RESULTS.md")


if __name__ == "__main__":
    main()
