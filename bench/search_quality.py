"""Search quality at equal compute: how good a LoRA config four ways of choosing one find.

    python bench/search_quality.py            # full: both tasks, seed 0 (about 30 min, estimated)
    python bench/search_quality.py --quick    # smaller settings
    python bench/search_quality.py --smoke    # tiny settings (tests/test_bench_search_quality.py)
    python bench/search_quality.py --tasks minilm-bbc --seeds 0,1 --methods random,staged

Methods (TASKS below holds each task's settings):
  default   the tutorial's r=8, lora_alpha=16, lr=2e-4, no rsLoRA: one trial;
  random    Optuna's RandomSampler, no early stopping: exactly the budget B (trials x steps);
  tpe_asha  lora-hpo's default study: TPE + ASHA, given more samples than B needs;
  staged    ``search.strategy: staged``: rank sweep at a fixed scale, then alpha/r and lr.

Each method runs in a fresh process (bench/search_quality_part.py) through ``run_study``. Its
anytime curve comes from Ray Tune's result.json files: all reports in ``reported_at`` order,
each adding the steps its trial trained since its previous report, with the best raw metric so
far (``<metric>_raw``: a diverged trial's unpenalised value). "Best within B" cuts the curve at
B trial-steps. The full run writes bench/out/search_quality.json and search_quality.md and
re-renders bench/RESULTS.md (when bench/out/results.json exists); --smoke and --quick write into
bench/out/<mode>/ unless --out is given. Storage and logs: <out>/search_quality/.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import machine
import yaml

from lora_hpo.checks import can_be
from lora_hpo.loader import load_spec, parse_spec
from lora_hpo.space import derive

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PART = BENCH / "search_quality_part.py"
SPEC_FILE = "lora_hpo_spec.yaml"  # lora_hpo.tuner.SPEC_FILE (tuner imports torch; not here)
METHODS = {
    "default": "tutorial default (r=8, α=16, lr 2e-4)",
    "random": "random search, no early stopping",
    "tpe_asha": "TPE + ASHA (lora-hpo's default)",
    "staged": "staged (rank sweep, then α/r + lr)",
}
SHORT = {"default": "the default", "random": "random", "tpe_asha": "TPE + ASHA", "staged": "staged"}
# The tutorial default. In its spec r is a one-value choice, not a fixed value: Ray's
# OptunaSearch refuses a space with nothing to search.
DEFAULT = {"r": 8, "lora_alpha": 16.0, "use_rslora": False, "learning_rate": 2.0e-4}
DEFAULT_SPACE = DEFAULT | {"r": {"choices": [DEFAULT["r"]]}}
TASKS: dict[str, dict[str, Any]] = {
    "minilm-bbc": {
        "title": "MiniLM-L6 sequence classification on BBC news (5 topics)",
        "base": "quickstart.yaml",  # its data, training, space and ASHA settings, wider r
        "data": {"max_length": 32, "max_train_samples": 1000, "max_eval_samples": 200},
        "training": {"max_steps": 40, "eval_every": 10, "batch_size": 16},
        "space": {"r": {"choices": [4, 8, 16, 32]}},
        "cpu": 1,
        "concurrency": 2,
        "random_trials": 8,  # B = 8 x 40 = 320 trial-steps
        "tpe_samples": 16,  # at least 40 + 15 x 20 = 340 trial-steps (least_trial_steps)
        "scheduler": {"grace_period": 20, "reduction_factor": 2},
        "staged": {"r_min": 4, "r_max": 32, "samples_per_rank": 2, "stage2_samples": 12},
    },
    "smollm2-instruct": {
        "title": "SmolLM2-135M causal LM on BBC news as instructions (answer: the topic word)",
        "base": "instruction-tuning.yaml",  # its space: r 16-64, rsLoRA on/off, all-linear
        # 48 tokens keep the question, the answer and ~25 tokens of the article; an eval of 32
        # examples costs about 2 training steps, so every 10 steps (one ASHA rung at 10)
        "data": {"max_length": 48, "max_train_samples": 400, "max_eval_samples": 32},
        "training": {"max_steps": 20, "eval_every": 10, "batch_size": 4, "eval_batch_size": 16},
        "space": {},
        "cpu": 1,
        "concurrency": 2,
        "random_trials": 4,  # B = 4 x 20 = 80 trial-steps
        "tpe_samples": 8,  # at least 20 + 7 x 10 = 90 trial-steps
        "scheduler": {"grace_period": 10, "reduction_factor": 2},
        "staged": {"r_min": 16, "r_max": 64, "samples_per_rank": 2, "stage2_samples": 2},
    },
}
SMOKE_TRAINING = {"max_steps": 4, "eval_every": 2, "batch_size": 2, "eval_batch_size": 8}
MODES: dict[str, dict[str, dict[str, Any]]] = {  # per mode: overrides of each task's settings
    "full": {},
    "quick": {
        "minilm-bbc": {
            "training": {"max_steps": 20},
            "random_trials": 6,
            "tpe_samples": 12,
            "scheduler": {"grace_period": 10},
            "staged": {"r_max": 16, "stage2_samples": 6},
        },
        "smollm2-instruct": {
            "data": {"max_length": 32},
            "training": {"max_steps": 10, "eval_every": 5},
            "scheduler": {"grace_period": 5},
            "staged": {"r_max": 32},
        },
    },
    "smoke": {
        "minilm-bbc": {
            "data": {"max_train_samples": 64, "max_eval_samples": 32},
            "training": SMOKE_TRAINING,
            "random_trials": 3,
            "tpe_samples": 6,
            "scheduler": {"grace_period": 2},
            "staged": {"r_max": 8, "samples_per_rank": 1, "stage2_samples": 2},
        },
        "smollm2-instruct": {
            "data": {"max_length": 32, "max_train_samples": 32, "max_eval_samples": 8},
            "training": SMOKE_TRAINING,
            "random_trials": 2,
            "tpe_samples": 4,
            "scheduler": {"grace_period": 2},
            "staged": {"r_max": 32, "samples_per_rank": 1, "stage2_samples": 2},
        },
    },
}


# --- settings and specs -------------------------------------------------------------------


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top, nested dicts merged key by key."""
    out: dict[str, Any] = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def task_settings(mode: str, task: str) -> dict[str, Any]:
    """One task's settings in this mode, with its budget B and trial length T."""
    s = merged(TASKS[task], MODES[mode].get(task, {}))
    s["max_steps"] = s["training"]["max_steps"]
    s["budget"] = s["random_trials"] * s["max_steps"]
    return s


def least_trial_steps(s: dict[str, Any], method: str) -> int:
    """The fewest trial-steps a method can run on these settings, however ASHA stops trials.

    ASHA never stops the first trial to reach a rung, so each study (each stage) runs one
    trial to the end and the others at least to the grace period; stage 1 runs two ranks at
    least (the first rank never ends the sweep). TPE + ASHA and staged should reach B."""
    t, grace = s["max_steps"], s["scheduler"]["grace_period"]

    def study(samples: int) -> int:
        return int(t + (samples - 1) * grace)

    if method == "default":
        return int(t)
    if method == "random":
        return int(s["budget"])
    if method == "tpe_asha":
        return study(s["tpe_samples"])
    st = s["staged"]
    ranks = 2 if st["r_max"] > st["r_min"] else 1
    return ranks * study(st["samples_per_rank"]) + study(st["stage2_samples"])


def base_raw(s: dict[str, Any], name: str, seed: int) -> dict[str, Any]:
    """The task's base spec file with its data, training, space and resources applied."""
    raw: dict[str, Any] = yaml.safe_load((REPO / "search_spaces" / s["base"]).read_text())
    raw["name"] = name
    raw["data"] |= s["data"]
    raw["training"] |= s["training"] | {"seed": seed}
    raw["space"] |= s["space"]
    raw["resources"] = {"cpu": s["cpu"]}
    raw.pop("tracking", None)
    return raw


def staged_section(s: dict[str, Any], space: dict[str, Any]) -> dict[str, Any]:
    """The task's staged settings; stage 2's ratio band is the space's alpha/r band."""
    band = space.get("alpha_ratio") or {}
    ratio = {"ratio_low": band["low"], "ratio_high": band["high"]} if "low" in band else {}
    staged: dict[str, Any] = ratio | s["staged"]
    return staged


def method_raw(task: str, method: str, s: dict[str, Any], seed: int) -> dict[str, Any]:
    """The spec (as a dict) of one method on one task; ``seed`` seeds training and sampler."""
    raw = base_raw(s, f"sq-{task}-{method}-s{seed}", seed)
    asha = {"type": "asha", **s["scheduler"]}
    search: dict[str, Any] = {"sampler": "tpe", "seed": seed, "max_concurrent": s["concurrency"]}
    if method == "default":
        for alpha in ("alpha_ratio", "alpha_scale", "lora_alpha"):
            raw["space"].pop(alpha, None)
        raw["space"] |= DEFAULT_SPACE
        search |= {"num_samples": 1, "max_concurrent": 1, "scheduler": {"type": "none"}}
    elif method == "random":
        search |= {"sampler": "random", "num_samples": s["random_trials"]}
        search |= {"scheduler": {"type": "none"}}
    elif method == "tpe_asha":
        search |= {"num_samples": s["tpe_samples"], "scheduler": asha}
    elif method == "staged":
        staged = staged_section(s, raw["space"])
        search |= {"strategy": "staged", "staged": staged, "scheduler": asha}
        search["num_samples"] = max(s["concurrency"], staged["stage2_samples"])  # unused
    else:
        raise ValueError(f"unknown method {method!r}")
    raw["search"] = {k: v for k, v in raw["search"].items() if k in ("metric", "mode")} | search
    return raw


# --- reading a finished study ---------------------------------------------------------------


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


# --- running ----------------------------------------------------------------------------------


def stamp(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def part_env() -> dict[str, str]:
    """Each method starts its own local Ray (never one another user left running here)."""
    return dict(os.environ, RAY_ADDRESS="local", PYTHONUNBUFFERED="1")


def prune_checkpoints(storage: Path) -> None:
    """Drop the trials' adapter checkpoints once read: the bench needs only the reports."""
    for ckpt in storage.glob("*/*/checkpoint_*"):
        shutil.rmtree(ckpt, ignore_errors=True)


def run_method(
    task: str, method: str, seed: int, raw: dict[str, Any], s: dict[str, Any], root: Path
) -> dict[str, Any]:
    """Run one method in a fresh process on a fresh storage root; its curve and figures."""
    folder = root / "work" / task / f"{method}-s{seed}"
    shutil.rmtree(folder, ignore_errors=True)  # reruns are fresh
    folder.mkdir(parents=True)
    storage = folder / "storage"
    job = {"spec": raw, "source": f"bench:{task}:{method}", "storage": str(storage)}
    (folder / "job.json").write_text(json.dumps(job, indent=2))
    log = root / "logs" / f"{task}-{method}-s{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(PART), "--job", "job.json", "--out", "part.json"]
    stamp(f"{task} / {method} / seed {seed}: started (log: {log})")
    before, start = os.getloadavg(), time.time()
    with open(log, "w") as fh:  # cwd: anything a library writes beside it stays in the folder
        done = subprocess.run(cmd, cwd=folder, env=part_env(), stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"search_quality: {task} / {method} failed (exit {done.returncode}); see {log}")
    part = json.loads((folder / "part.json").read_text())
    part |= {"process_wall_s": time.time() - start, "load_before": before}
    part |= {"load_after": os.getloadavg(), "log": str(log)}
    metric = parse_spec(copy.deepcopy(raw)).metric
    reports, trials = read_study(storage, metric)
    curve = anytime_curve(reports, s["mode"], part["start"])
    prune_checkpoints(storage)
    figures = method_figures(curve, trials, s["budget"])
    stamp(
        f"{task} / {method} / seed {seed}: done in {part['study_wall_s']:.0f} s;"
        f" best {metric} within B {fmt(figures['best_within_budget'])},"
        f" {figures['trial_steps_total']} trial-steps in all"
    )
    return {"figures": figures, "part": part, "trials": trials, "curve": curve}


def fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def default_outside(raw: dict[str, Any]) -> list[str]:
    """The tutorial default's values that a spec's searched space cannot reach."""
    space = parse_spec(copy.deepcopy(raw)).space
    alpha = ("alpha_ratio", DEFAULT["lora_alpha"] / DEFAULT["r"])
    if space.alpha_mode != "alpha_ratio":
        alpha = ("lora_alpha", DEFAULT["lora_alpha"])
        if space.alpha_mode == "alpha_scale":
            alpha = ("alpha_scale", DEFAULT["lora_alpha"] / math.sqrt(DEFAULT["r"]))
    wanted = [(name, DEFAULT[name]) for name in ("r", "use_rslora", "learning_rate")] + [alpha]
    return [f"{n} {v:g}" for n, v in wanted if not can_be(getattr(space, n), v)]


def check_specs(tasks: dict[str, dict[str, Any]], methods: list[str], seeds: list[int]) -> None:
    """Parse every spec before anything runs: a bad one stops the bench at once."""
    for task, s in tasks.items():
        for method in methods:
            for seed in seeds:
                parse_spec(method_raw(task, method, s, seed), f"bench:{task}:{method}")


def run_task(
    task: str, s: dict[str, Any], methods: list[str], seeds: list[int], root: Path, save: Any
) -> dict[str, Any]:
    """Every method and seed of one task; ``save`` is called after each (partial results)."""
    spec = parse_spec(method_raw(task, "random", s, seeds[0]))
    s |= {"metric": spec.metric, "mode": spec.mode}
    entry: dict[str, Any] = {"settings": s, "specs": {}, "runs": {m: {} for m in methods}}
    entry["default_outside_space"] = default_outside(method_raw(task, "random", s, seeds[0]))
    for method in methods:
        entry["specs"][method] = method_raw(task, method, s, seeds[0])
    for seed in seeds:
        for method in methods:
            raw = method_raw(task, method, s, seed)
            entry["runs"][method][str(seed)] = run_method(task, method, seed, raw, s, root)
            save(task, entry)
    return entry


# --- rendering ----------------------------------------------------------------------------------


def metric_digits(mode: str) -> int:
    return 3 if mode == "max" else 4


def fmt_config(c: dict[str, Any] | None) -> str:
    if not c:
        return "—"
    rs = "on" if c["use_rslora"] else "off"
    return (
        f"r={c['r']}, α={c['lora_alpha']:.3g} (α/r {c['alpha_ratio']:.3g}), rsLoRA {rs},"
        f" lr {c['learning_rate']:.2e}"
    )


def fmt_param(name: str, value: Any) -> str:
    """One search-space parameter as written in the spec, in words."""
    if isinstance(value, dict) and "choices" in value:
        return f"{name} ∈ {{{', '.join(str(v) for v in value['choices'])}}}"
    if isinstance(value, dict):
        log = " (log)" if value.get("log") else ""
        return f"{name} ∈ [{value['low']:g}, {value['high']:g}]{log}"
    return f"{name} = {value}"


def setup_lines(task: str, entry: dict[str, Any]) -> list[str]:
    s, specs = entry["settings"], entry["specs"]
    raw = specs.get("random") or next(iter(specs.values()))
    d, t = raw["data"], raw["training"]
    lines = [
        f"- Task: {s['title']}; model demo `{raw['model']['demo']}`, data demo"
        f" `{d['demo']}`; seq {d['max_length']}, batch {t['batch_size']}, {s['max_steps']} steps"
        f" per trial, eval every {t['eval_every']} steps on {d['max_eval_samples']} held-out"
        f" examples; {s['concurrency']} trials at once, {s['cpu']} CPU each. Metric:"
        f" {s['metric']} ({s['mode']}).",
        "- Space (random, TPE + ASHA): "
        + "; ".join(fmt_param(k, v) for k, v in specs.get("random", raw)["space"].items())
        + ".",
        f"- Budget B = {s['random_trials']} trials × {s['max_steps']} steps ="
        f" {s['budget']} trial-steps (random search). TPE + ASHA: {s['tpe_samples']} samples,"
        f" ASHA grace {s['scheduler']['grace_period']} steps, reduction factor"
        f" {s['scheduler']['reduction_factor']}. Staged: {staged_words(specs)}. The default:"
        f" one trial, {s['max_steps']} trial-steps.",
        f"- The tutorial default (r={DEFAULT['r']}, α={DEFAULT['lora_alpha']:g}, rsLoRA off, lr"
        f" {DEFAULT['learning_rate']:g}; the task's other settings) {default_place(entry)}.",
    ]
    return lines


def default_place(entry: dict[str, Any]) -> str:
    outside = entry.get("default_outside_space")
    if outside is None:
        return "was not compared with the space"
    if not outside:
        return "lies inside the searched space"
    return "lies outside the searched space in: " + ", ".join(outside)


def staged_words(specs: dict[str, Any]) -> str:
    if "staged" not in specs:
        return "not run"
    st = specs["staged"]["search"]["staged"]
    return (
        f"r from {st['r_min']} doubling to {st['r_max']}, {st['samples_per_rank']} trial(s) per"
        " rank,"
        f" plateau tolerance {st.get('plateau_tolerance', 0.01):g}, then"
        f" {st['stage2_samples']} trials over α/r (α/√r with rsLoRA) in"
        f" [{st.get('ratio_low', 0.5):g}, {st.get('ratio_high', 4.0):g}] and lr; ASHA as above"
    )


def table(entry: dict[str, Any]) -> list[str]:
    s = entry["settings"]
    digits, seeds = metric_digits(s["mode"]), seeds_of(entry)
    rows = [
        f"| method | best {s['metric']} within B | best at the end | trial-steps (within B /"
        " total) | wall s (at B / total) | trials (within B / total) | best config within B |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, runs in entry["runs"].items():
        for seed, run in runs.items():
            f, part = run["figures"], run["part"]
            label = METHODS[method] + (f" (seed {seed})" if len(seeds) > 1 else "")
            steps = f"{f['trial_steps_within_budget']} / {f['trial_steps_total']}"
            if method == "default":
                steps += f" (one trial: {f['trial_steps_total']} of B = {s['budget']})"
            wall = f"{fmt(f['t_at_budget_s'], 0)} / {part['study_wall_s']:.0f}"
            cells = [
                label,
                fmt(f["best_within_budget"], digits),
                fmt(f["best_at_end"], digits),
                steps,
                wall,
                f"{f['trials_within_budget']} / {f['trials_total']}",
                fmt_config(f["best_config_within_budget"]),
            ]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def seeds_of(entry: dict[str, Any]) -> list[str]:
    return sorted({seed for runs in entry["runs"].values() for seed in runs}, key=int)


def ranked(entry: dict[str, Any], seed: str, key: str) -> list[tuple[str, float]]:
    """(method, value) best first, for the methods that have a value at this seed."""
    mode = entry["settings"]["mode"]
    got = [
        (m, runs[seed]["figures"][key])
        for m, runs in entry["runs"].items()
        if seed in runs and runs[seed]["figures"][key] is not None
    ]
    return sorted(got, key=lambda mv: -mv[1] if mode == "max" else mv[1])


def seed_sentence(entry: dict[str, Any], seed: str) -> str:
    """What one seed's numbers show: the order within B, the gap to the default, the ends."""
    s = entry["settings"]
    digits = metric_digits(s["mode"])
    order = ranked(entry, seed, "best_within_budget")
    if not order:
        return f"Seed {seed}: no method reported {s['metric']}."
    top = order[0][1]
    first = [SHORT[m] for m, v in order if v == top]
    lead = f"{first[0]}'s" if len(first) == 1 else f"a tie between {' and '.join(first)}"
    listed = ", ".join(f"{SHORT[m]} {v:.{digits}f}" for m, v in order)
    text = (
        f"Seed {seed}: within B = {s['budget']} trial-steps the best {s['metric']} was {lead}"
        f" ({top:.{digits}f}); in order: {listed}."
    )
    runs = entry["runs"]
    default = runs.get("default", {}).get(seed, {}).get("figures", {})
    if default.get("best_within_budget") is not None and order[0][0] != "default":
        d, steps = default["best_within_budget"], default["trial_steps_total"]
        text += (
            f" That is {abs(top - d):.{digits}f} {'above' if top > d else 'below'} the tutorial"
            f" default's {d:.{digits}f}, which used {steps} trial-steps (one trial)."
        )
    ends = [
        f"{SHORT[m]} {r[seed]['figures']['trial_steps_total']} trial-steps, best"
        f" {fmt(r[seed]['figures']['best_at_end'], digits)}"
        for m, r in runs.items()
        if m in ("tpe_asha", "staged") and seed in r
    ]
    if ends:
        text += " Run to their end: " + "; ".join(ends) + "."
    return text


def staged_sentence(entry: dict[str, Any], seed: str) -> str | None:
    """How the staged study spent its budget: the rank decision and trials per stage within B."""
    run = entry["runs"].get("staged", {}).get(seed)
    if run is None:
        return None
    within = {p["trial"] for p in run["curve"] if p["trial_steps"] <= entry["settings"]["budget"]}
    stage2 = sum(1 for t in within if t.split("/")[0].endswith("-stage2"))
    best = run["figures"]["best_trial_within_budget"]
    where = "stage 2" if best and best.split("/")[0].endswith("-stage2") else "stage 1"
    decision = run["part"].get("decision") or "no decision recorded"
    return (
        f"Staged (seed {seed}): {decision}. Within B it ran {len(within) - stage2} stage-1 and"
        f" {stage2} stage-2 trials; its best within B came from {where}."
    )


def shared_draws(entry: dict[str, Any], seed: str) -> str | None:
    """How many of random search's configs TPE + ASHA also trained (same seed: Optuna's TPE
    draws its first trials at random, from the same generator)."""
    runs = entry["runs"]
    if seed not in runs.get("random", {}) or seed not in runs.get("tpe_asha", {}):
        return None

    def keys(run: dict[str, Any]) -> set[tuple[Any, ...]]:
        return {
            tuple(round(float(v), 9) for v in t["config"].values()) for t in run["trials"].values()
        }

    rnd, tpe = keys(runs["random"][seed]), keys(runs["tpe_asha"][seed])
    return (
        f"Seed {seed}: {len(rnd & tpe)} of random search's {len(rnd)} configs were also among"
        f" TPE + ASHA's {len(tpe)} trials (same sampler seed; TPE starts with random draws)."
    )


def seeds_summary(entry: dict[str, Any]) -> str:
    """Across seeds: the mean best within B per method and how often each was first."""
    seeds, digits = seeds_of(entry), metric_digits(entry["settings"]["mode"])
    if len(seeds) == 1:
        return (
            "One seed: every figure is a single run (rerun with `--seeds 0,1,2` to see the spread)."
        )
    wins = {m: 0 for m in entry["runs"]}
    for seed in seeds:
        order = ranked(entry, seed, "best_within_budget")
        if order:
            wins[order[0][0]] += 1
    means = []
    for m, runs in entry["runs"].items():
        vals = [r["figures"]["best_within_budget"] for r in runs.values()]
        vals = [v for v in vals if v is not None]
        if vals:
            means.append(f"{SHORT[m]} {statistics.mean(vals):.{digits}f} (first {wins[m]}×)")
    return f"Over {len(seeds)} seeds, mean best within B: " + "; ".join(means) + "."


def resolution(entry: dict[str, Any]) -> str | None:
    """One eval example's share of accuracy: differences of a few of them are noise-sized."""
    s, spec = entry["settings"], next(iter(entry["specs"].values()))
    n = spec["data"].get("max_eval_samples")
    if s["metric"] != "eval_accuracy" or not n:
        return None
    return f"One of the {n} eval examples is {1 / n:.3f} of accuracy."


def findings(entry: dict[str, Any]) -> str:
    sentences: list[str | None] = []
    for seed in seeds_of(entry):
        sentences += [seed_sentence(entry, seed), staged_sentence(entry, seed)]
        sentences.append(shared_draws(entry, seed))
    sentences += [resolution(entry), seeds_summary(entry)]
    return " ".join(x for x in sentences if x)


def caveats(data: dict[str, Any]) -> list[str]:
    loads = [
        x
        for entry in data["tasks"].values()
        for runs in entry["runs"].values()
        for run in runs.values()
        for x in (*run["part"]["load_before"], *run["part"]["load_after"])
    ]
    load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "not recorded"
    return [
        f"- Load averages before and after the methods ranged {load} on"
        f" {data['machine']['nproc']} CPUs; wall times carry that noise, trial-steps do not.",
        "- Trial-steps count each trial's last reported step: a trial that ASHA stops may train"
        " a step past its last report before it sees the stop. Wall s runs from the `run_study`"
        " call (Ray's start included) to the last report within B, and to the study's end; the"
        " process's imports are not counted (the JSON has them as process_wall_s).",
        "- Metrics are the raw reported values (`<metric>_raw`), so a diverged trial counts with"
        " what it measured, not with the penalty its searcher got.",
    ]


def render_section(data: dict[str, Any]) -> str:
    """The "## Search quality" section of RESULTS.md: per task a setup, a table and findings."""
    lines = [
        "## Search quality",
        "",
        "Four ways of choosing LoRA hyperparameters at equal compute, measured in trial-steps"
        " (training steps summed over trials). Generated by `bench/search_quality.py`"
        f" (`{data['command']}`, mode {data['mode']}, {data['date']}, git {data['git']['commit']}"
        f"{' with uncommitted changes' if data['git']['dirty'] else ''}).",
    ]
    for task, entry in data["tasks"].items():
        lines += ["", f"### {task}", "", *setup_lines(task, entry), "", *table(entry)]
        lines += ["", findings(entry)]
    lines += ["", "Caveats:", "", *caveats(data)]
    return "\n".join(lines) + "\n"


# --- main ---------------------------------------------------------------------------------------


def csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny settings (the test runs it)")
    size.add_argument("--quick", action="store_true", help="smaller settings")
    ap.add_argument("--tasks", type=csv, default=list(TASKS), help=",".join(TASKS))
    ap.add_argument("--methods", type=csv, default=list(METHODS), help=",".join(METHODS))
    ap.add_argument("--seeds", type=csv, default=["0"], help="e.g. 0,1,2 (default 0)")
    ap.add_argument("--out", type=Path, help="folder for search_quality.json and .md")
    args = ap.parse_args(argv)
    for name, allowed in (("tasks", TASKS), ("methods", METHODS)):
        unknown = [x for x in getattr(args, name) if x not in allowed]
        if unknown:
            ap.error(f"--{name}: unknown {unknown}; choose from {', '.join(allowed)}")
    if not all(x.isdigit() for x in args.seeds):
        ap.error(f"--seeds: whole numbers separated by commas, got {args.seeds}")
    return args


def write_outputs(data: dict[str, Any], out: Path, rerender: bool) -> None:
    """The JSON and the Markdown section; the full default run re-renders bench/RESULTS.md."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_quality.json").write_text(json.dumps(data, indent=2, default=str))
    section = render_section(data)
    (out / "search_quality.md").write_text(section)
    results = out / "results.json"
    if rerender and results.is_file():
        import report

        report.rerender(results, BENCH / "RESULTS.md")
    else:
        print(section)
    print(f"wrote {out / 'search_quality.json'} and {out / 'search_quality.md'}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    out = args.out or (BENCH / "out" if mode == "full" else BENCH / "out" / mode)
    out = out.resolve()  # Ray's storage_path must be absolute
    seeds = [int(x) for x in args.seeds]
    tasks = {t: task_settings(mode, t) for t in args.tasks}
    check_specs(tasks, args.methods, seeds)
    command = " ".join(["python", "bench/search_quality.py", *sys.argv[1:]])
    data: dict[str, Any] = {"mode": mode, **machine.describe(command), "seeds": seeds}
    data["tasks"] = {}

    def save(task: str, entry: dict[str, Any]) -> None:
        data["tasks"][task] = entry
        out.mkdir(parents=True, exist_ok=True)
        (out / "search_quality.json").write_text(json.dumps(data, indent=2, default=str))

    started = time.time()
    for task, s in tasks.items():
        run_task(task, s, args.methods, seeds, out / "search_quality", save)
    data["load_after"], data["wall_s"] = os.getloadavg(), time.time() - started
    stamp(f"all done in {data['wall_s']:.0f} s")
    write_outputs(data, out, rerender=mode == "full" and args.out is None)


if __name__ == "__main__":
    main()
