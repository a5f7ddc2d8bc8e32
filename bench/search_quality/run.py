"""Search quality at equal compute: how good a LoRA config four ways of choosing one find.

    python -m bench.search_quality            # full: both tasks, seed 0 (about 30 min, estimated)
    python -m bench.search_quality --quick    # smaller settings
    python -m bench.search_quality --smoke    # tiny settings (tests/bench/test_search_quality.py)
    python -m bench.search_quality --tasks minilm-bbc --seeds 0,1 --methods random,staged

Methods (TASKS below holds each task's settings):
  default   the tutorial's r=8, lora_alpha=16, lr=2e-4, no rsLoRA: one trial;
  random    Optuna's RandomSampler, no early stopping: exactly the budget B (trials x steps);
  tpe_asha  lora-hpo's default study: TPE + ASHA, given more samples than B needs;
  staged    ``search.strategy: staged``: rank sweep at a fixed scale, then alpha/r and lr.

Each method runs in a fresh process (bench/search_quality/part.py) through ``run_study``. Its
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
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import machine, results_md
from bench.search_quality.curves import anytime_curve, method_figures, read_study
from bench.search_quality.render import fmt, render_section
from bench.search_quality.settings import (
    BENCH,
    METHODS,
    REPO,
    TASKS,
    check_specs,
    default_outside,
    method_raw,
    task_settings,
)
from lora_hpo.spec.loader import parse_spec

PART = "bench.search_quality.part"


def stamp(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def part_env() -> dict[str, str]:
    """Each method starts its own local Ray (never one another user left running here)."""
    env = dict(os.environ, RAY_ADDRESS="local", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


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
    cmd = [sys.executable, "-m", PART, "--job", "job.json", "--out", "part.json"]
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
        results_md.compose(out, BENCH / "RESULTS.md")
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
    command = " ".join(["python", "-m", "bench.search_quality", *sys.argv[1:]])
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
