"""P1, the framework overhead of a study as its users run it: the ``lora-hpo run`` command on
the quickstart, and on a longer study (the quickstart with 200-step trials), each run
``--repeats`` times (median) in a fresh process from a fresh working directory.

    P1 = study wall / (sum of in-step training time over trials / concurrency)

The study wall is what the command prints ("N trials in X s": from the tuner's start to its
end); the command wall (timed from outside: imports, preflight, Ray's start, MLflow) is given
beside it. Each trial's in-step time is its last report's ``step_time_s``. Where P1 misses
its aim, the per-phase columns say where the rest went:

    start    each trial's time from its start to its first step (model and data load)
    between  its time inside the trainable outside steps, split into evaluation, checkpoint
             save and report (a report waits until the driver has taken it)
    gaps     study wall minus the trials' time in the trainable, split by when a slot idles:
             lead (before every slot had its first trial: worker start-up and imports;
             split again, per first trial of each worker process, into the time before the
             process existed and the process's boot: Ray's worker, Tune and our imports),
             between trials (Tune's scheduling, the searcher, actor reuse) and tail (no trial
             left to start: a slot idles until the study ends)

A trial given an idle slot's threads (``lora_hpo.search.threads``) counts its steps in
slot-seconds (``step_slot_time_s``); P1 counting their wall time is given beside it.

    python -m bench.overhead.p1              # both studies, 3 repeats: about 25 min on 2 cores
    python -m bench.overhead.p1 --smoke      # tiny settings, 1 repeat (tests run it)

It writes <out>/p1.json and <out>/p1.md (default bench/out/p1/); load is sampled throughout,
and each run (but with --smoke) waits up to 4 minutes for the 1-minute load average to fall
below 0.5.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench import machine
from bench.overhead.p1_table import AIMS, IN_TRIAL, median_run, phases, render
from bench.overhead.run import part_env, sample_load, wait_quiet
from bench.overhead.settings import BENCH, QUICKSTART
from bench.results_md import write_section

STUDIES: dict[str, dict[str, list[str]]] = {
    "full": {
        "quickstart": [],
        "long": [
            "training.max_steps=200",
            "search.num_samples=4",
            "search.scheduler.grace_period=50",
        ],
    },
    "smoke": {
        "quickstart": [
            "training.max_steps=4",
            "search.num_samples=2",
            "search.scheduler.type=none",
            "data.max_train_samples=64",
            "data.max_eval_samples=16",
        ],
        "long": [
            "training.max_steps=8",
            "search.num_samples=2",
            "search.scheduler.type=none",
            "data.max_train_samples=64",
            "data.max_eval_samples=16",
        ],
    },
}
SUMMARY = re.compile(r"study '[^']+': (\d+) trials in (\d+(?:\.\d+)?) s")


def run_study(
    name: str, sets: list[str], work: Path, repeat: int, quiet: bool = True
) -> dict[str, Any]:
    """One ``lora-hpo run`` in a fresh process and working directory; its phases."""
    cwd = work / f"{name}-{repeat}"
    shutil.rmtree(cwd, ignore_errors=True)
    cwd.mkdir(parents=True)
    storage = cwd / "studies"
    cli = str(Path(sys.executable).parent / "lora-hpo")
    cmd = [cli, "run", str(QUICKSTART), "--storage-path", str(storage)]
    cmd += [arg for kv in sets for arg in ("--set", kv)]
    if quiet:
        wait_quiet()
    before = os.getloadavg()
    print(f"[{time.strftime('%H:%M:%S')}] {name} (repeat {repeat + 1})", flush=True)
    log = cwd / "run.log"
    start = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=part_env(), stdout=fh, stderr=subprocess.STDOUT)
        loads = sample_load(proc)
    command_s = time.monotonic() - start
    text = log.read_text()
    found = SUMMARY.search(text)
    if proc.returncode != 0 or found is None:
        sys.exit(f"p1: {name} failed (exit {proc.returncode}); see {log}\n{text[-2000:]}")
    return {
        "command": cmd,
        "command_s": command_s,
        **trial_figures(storage / "quickstart", float(found.group(2))),
        "load_before": before,
        "load_during": {"mean": statistics.mean(loads), "max": max(loads)},
    }


def trial_figures(study_dir: Path, study_s: float) -> dict[str, Any]:
    """The study's sums over its trials' last reports, and its idle slot time."""
    from lora_hpo.search.storage import read_results

    rows = [r for r in read_results(str(study_dir)) if r]
    trials = [r[-1] for r in rows]
    search = yaml.safe_load(QUICKSTART.read_text())["search"]
    conc, metric = int(search["max_concurrent"]), search["metric"]
    values = [float(t.get(f"{metric}_raw", math.nan)) for t in trials]
    values = [v for v in values if not math.isnan(v)]
    spans = [(float(r[0]["started_at"]), float(r[-1]["reported_at"])) for r in rows]
    end = max(e for _, e in spans)
    return {
        "study_s": study_s,
        "trials": len(trials),
        "steps": sum(int(t["step"]) for t in trials),
        "step_s": sum(float(t.get("step_time_s", 0.0)) for t in trials),
        "step_slot_s": sum(
            float(t.get("step_slot_time_s", t.get("step_time_s", 0.0))) for t in trials
        ),
        "start_s": sum(float(t.get("start_s", 0.0)) for t in trials),
        "trainable_s": sum(float(t.get("time_total_s", 0.0)) for t in trials),
        **{k: sum(float(t.get(k, 0.0)) for t in trials) for k in IN_TRIAL},
        "best": (max if search["mode"] == "max" else min)(values, default=math.nan),
        "stopped": sum(1 for t in trials if t.get("status") == "running"),  # ASHA stopped it
        "idle_s": idle_split(spans, (end - study_s, end), conc),
        **lead_split(rows, end - study_s, conc),
    }


def lead_split(
    rows: list[list[dict[str, Any]]], study_start: float, concurrency: int
) -> dict[str, Any]:
    """The lead's two parts, summed over the first ``concurrency`` worker processes' first
    trials: the wait before the process started (Tune's start, the actor's placement) and its
    boot inside the study (from the later of the process start and the study's start to the
    trainable's entry: Ray's worker, Tune's wrapper, our imports). A worker that Ray started
    before the study (a local Ray's prestarted, preloading workers) booted partly before it:
    that part is ``boot_before_study_s``, outside the study wall. Empty for reports that lack
    ``process_started_at``."""
    firsts: dict[tuple[int, float], dict[str, Any]] = {}  # (pid, process start) -> first trial
    for r in rows:
        if "process_started_at" not in r[0]:
            return {}
        key = (int(r[0].get("pid", 0)), float(r[0]["process_started_at"]))
        if key not in firsts or r[0]["started_at"] < firsts[key]["started_at"]:
            firsts[key] = r[0]
    first = sorted(firsts, key=lambda k: firsts[k]["started_at"])[:concurrency]
    entered = {k: float(firsts[k]["started_at"]) for k in first}
    return {
        "lead_before_worker_s": sum(max(0.0, p - study_start) for _, p in first),
        "lead_worker_boot_s": sum(entered[k] - max(k[1], study_start) for k in first),
        "boot_before_study_s": sum(max(0.0, min(entered[k], study_start) - k[1]) for k in first),
        "workers": len(firsts),
    }


def idle_split(
    spans: list[tuple[float, float]], window: tuple[float, float], concurrency: int
) -> dict[str, float]:
    """Idle slot-seconds in ``window`` (slots with no trial in its trainable), by when: before
    the ``concurrency``-th trial's start (lead), after the last trial's start (tail), or in
    between. ``spans`` are the trials' (start, end) times."""
    starts = sorted(s for s, _ in spans)
    lead_end = starts[min(concurrency, len(starts)) - 1]
    cuts = sorted({*window, *(t for span in spans for t in span), lead_end, starts[-1]})
    idle = {"lead": 0.0, "between": 0.0, "tail": 0.0}
    for a, b in itertools.pairwise(cuts):
        if a < window[0] or b > window[1]:
            continue
        busy = sum(1 for s, e in spans if s <= a and e >= b)
        phase = "lead" if b <= lead_end else "tail" if a >= starts[-1] else "between"
        idle[phase] += max(0, concurrency - busy) * (b - a)
    return idle


def refigure(path: Path, out: Path) -> None:
    """The trial figures of ``path``'s runs again, from the study folders they left, with
    this tree's arithmetic (the commit is recorded as ``refigured_at``)."""
    results = json.loads(path.read_text())
    for name, study in results["studies"].items():
        for k, run in enumerate(study["runs"]):
            folder = path.parent / "work" / f"{name}-{k}" / "studies" / "quickstart"
            run |= trial_figures(folder, float(run["study_s"]))
        study["median"] = median_run(study["runs"], results["concurrency"])
    results["refigured_at"] = machine.git_state()
    write_section(out, "p1", results, render(results))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--render", type=Path, help="write p1.md again from this p1.json; no runs")
    ap.add_argument(
        "--refigure",
        type=Path,
        help="recompute this p1.json's trial figures from the study folders its runs left "
        "(<its folder>/work); no runs",
    )
    ap.add_argument("--smoke", action="store_true", help="tiny settings, 1 repeat")
    ap.add_argument("--repeats", type=int, help="runs per study (default 3; 1 with --smoke)")
    ap.add_argument("--only", choices=sorted(AIMS), help="run one study")
    ap.add_argument("--out", type=Path, default=BENCH / "out" / "p1")
    args = ap.parse_args()
    if args.render is not None:
        (args.render.parent / "p1.md").write_text(render(json.loads(args.render.read_text())))
        return
    if args.refigure is not None:
        refigure(args.refigure, args.out)
        return
    mode = "smoke" if args.smoke else "full"
    repeats = args.repeats or (1 if args.smoke else 3)
    work = args.out.resolve() / "work"  # the studies run from their own working directories
    work.mkdir(parents=True, exist_ok=True)
    results = machine.describe(" ".join(["python", "-m", "bench.overhead.p1", *sys.argv[1:]]))
    search = yaml.safe_load(QUICKSTART.read_text())["search"]
    conc, metric = int(search["max_concurrent"]), search["metric"]
    results |= {"mode": mode, "repeats": repeats, "concurrency": conc, "studies": {}}
    for name, sets in STUDIES[mode].items():
        if args.only and name != args.only:
            continue
        runs = [run_study(name, sets, work, k, quiet=not args.smoke) for k in range(repeats)]
        study = {"sets": sets, "runs": runs, "median": median_run(runs, conc), "metric": metric}
        results["studies"][name] = study
        print(f"  {name}: P1 {[round(phases(r, conc)['p1'], 3) for r in runs]}", flush=True)
    results["load_after"] = os.getloadavg()
    write_section(args.out, "p1", results, render(results))


if __name__ == "__main__":
    main()
