"""Replays every searcher on the recorded table over many seeds, each with and without ASHA,
and writes the regret curves and the goals as JSON (then the figures and the Markdown section).

    python -m bench.tabular.simulate [--seeds 30] [--tasks ...] [--methods tpe+asha,random]
        [--table bench/tabular/data/table.csv] [--out bench/out/tabular] [--jobs 2]
        [--figures-to bench/tabular/figures]

The budget axis is trial-steps (the sum over trials of the training steps each ran). Each run
starts no trial once ``BUDGET_TRIALS`` full trials' worth of trial-steps is used.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.tabular import methods, summary
from bench.tabular.table import TABLE, Table, complete_tasks, sidecar

BUDGET_TRIALS = 32  # random search's budget: this many full trials
OUT = Path(__file__).resolve().parents[1] / "out" / "tabular"


@functools.cache
def _table(task: str, path: str) -> Table:
    return Table.load(task, Path(path))


def budget_of(table: Table) -> int:
    return BUDGET_TRIALS * table.max_steps


def grid_of(table: Table) -> list[int]:
    """The common trial-step grid: every eval interval up to the budget."""
    every = int(table.settings["training"]["eval_every"])
    return list(range(every, budget_of(table) + 1, every))


def one(job: tuple[str, str, str, int]) -> dict[str, Any]:
    """One seed of one method on one task: its regret on the grid and a few counts."""
    path, task, variant, seed = job
    table = _table(task, path)
    run = methods.simulate(table, variant, seed, budget_of(table))
    regrets, i, best = [], 0, None
    for b in grid_of(table):
        while i < len(run.trace) and run.trace[i][0] <= b:
            best = run.trace[i][1]
            i += 1
        regrets.append(table.regret(best))
    within = [
        f for f, (used, _) in zip(run.finished, run.trace, strict=True) if used <= budget_of(table)
    ]
    top = run.best(within)
    return {"task": task, "variant": variant, "seed": seed, "regret": regrets,
            "trials": len(within), "best_config": top.config if top else None}  # fmt: skip


def _init() -> None:
    import torch

    torch.set_num_threads(1)


def run_all(path: Path, tasks: list[str], variants: list[str], seeds: int, jobs: int) -> list[Any]:
    todo = [(str(path), t, v, s) for t in tasks for v in variants for s in range(seeds)]
    if jobs <= 1:
        return [one(j) for j in todo]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init) as pool:
        return list(pool.map(one, todo, chunksize=4))


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    tasks = [t for t in args.tasks.split(",") if t] or complete_tasks(args.table)
    variants = [v for v in args.methods.split(",") if v] or methods.variants()
    start = time.monotonic()
    runs = run_all(args.table, tasks, variants, args.seeds, args.jobs)
    side = sidecar(args.table)
    command = " ".join([sys.executable, "-m", "bench.tabular.simulate", *sys.argv[1:]])
    keep = ("rows", "complete", "step_rate", "sessions", "configs")
    out: dict[str, Any] = {
        "made": describe(command),
        "table": {"path": str(args.table)} | {k: side.get(k) for k in keep},
        "settings": {"seeds": args.seeds, "budget_trials": BUDGET_TRIALS, "concurrency": 2,
                     "default_method": methods.DEFAULT_METHOD, "variants": variants},
        "tasks": {},
    }  # fmt: skip
    for task in tasks:
        table = _table(task, str(args.table))
        mine = [r for r in runs if r["task"] == task]
        out["tasks"][task] = summary.task_summary(table, grid_of(table), mine, variants)
        out["tasks"][task]["simulate_wall_s"] = round(time.monotonic() - start, 1)
    out["simulate_wall_s"] = round(time.monotonic() - start, 1)
    if args.keep is not None:  # tasks and methods simulated earlier (same table and seeds)
        before = json.loads(args.keep.read_text())
        for task, old in before["tasks"].items():
            new = out["tasks"].get(task)
            out["tasks"][task] = old if new is None else summary.merge_task(old, new)
        out["simulate_wall_s"] += before.get("simulate_wall_s", 0)
        out["notes"] = before.get("notes", []) + out.get("notes", [])
        out["settings"]["variants"] = sorted(set(variants) | set(before["settings"]["variants"]))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.tabular.simulate")
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--tasks", default="", help="default: every task in the table")
    ap.add_argument("--methods", default="", help="default: " + ",".join(methods.variants()))
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--figures-to", type=Path, default=None, help="also copy the PNGs here")
    ap.add_argument("--keep", type=Path, default=None, help="a JSON whose other tasks to keep")
    args = ap.parse_args(argv)
    result = simulate(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tabular.json").write_text(json.dumps(result, indent=2) + "\n")
    from bench.tabular import plots, render

    figures = plots.make_all(result, args.table, args.out, args.figures_to)
    if args.figures_to is not None:  # the committed copies, linked as bench/RESULTS.md sees them
        figures = [args.figures_to / f.name for f in figures]
    render.write(result, figures, args.out / "tabular.md")
    wall = result["simulate_wall_s"]
    print(f"wrote {args.out / 'tabular.json'}, {args.out / 'tabular.md'} (simulated in {wall} s)")


if __name__ == "__main__":
    main()
