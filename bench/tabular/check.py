"""The real-study check of the simulator: on each task, the simulator's two best methods (its
ranking, ``summary.ranked``) each run once as a real ``lora-hpo run``, with the table's task
settings and about the simulator's budget (its mean trial count for that method). Each run's
best trial (``lora-hpo best``, the shared ranking rule) is scored as regret against the
table's oracle, and set beside the simulator's median and IQR at the budget.

    python -m bench.tabular.check [--tasks minilm-bbc,...] [--seed 0] [--out DIR]
    python -m bench.tabular.check --smoke     # tiny settings and 2 trials (tests run it)

One real run per method is one draw, not a distribution: the check says whether the two runs
rank as the simulator's medians do, and whether each lies within the simulator's IQR. It
writes <out>/check.json and <out>/check.md (default bench/out/tabular-check/).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench.machine import describe
from bench.results_md import write_section
from bench.tabular import methods, summary
from bench.tabular.grid import task_settings
from bench.tabular.table import TABLE, Table

RESULTS = Path(__file__).resolve().parent / "results" / "tabular.json"
OUT = Path(__file__).resolve().parents[1] / "out" / "tabular-check"


def top_two(per: dict[str, Any]) -> list[str]:
    """The simulator's two best methods that a spec can express (an ablation of the lora
    sampler is none)."""
    return [v for v in summary.ranked(per) if v.partition("+")[0] not in methods.ABLATIONS][:2]


def method_data(task: str, settings: dict[str, Any], variant: str, seed: int, trials: int) -> Any:
    """The study a method runs on the task, as spec data: its space, sampler, ASHA or not,
    ``trials`` trials in all (staged: stage 1's sweep, at most ``trials`` a rank, then the rest
    in stage 2, at least 2)."""
    from lora_hpo.spec.spec_loader import spec_to_dict

    name, _, stop = variant.partition("+")
    if name == "staged":
        data = spec_to_dict(methods.staged_spec(task, settings, seed))
        per_rank = min(methods.STAGE1_SAMPLES, trials)  # a smoke run's 2: one wave a rank
        sweep = per_rank * len(settings["grid"]["r"])
        data["search"]["staged"] |= {"samples_per_rank": per_rank,
                                     "stage2_samples": max(2, trials - sweep)}  # fmt: skip
    else:
        sampler, dialect = methods.SEARCHERS[name]
        search = {"sampler": sampler, "seed": seed, "num_samples": trials}
        data = spec_to_dict(methods.task_spec(task, settings, dialect, search))
    data["name"] = data["tracking"]["experiment"] = f"check-{task}-{variant.replace('+', '-')}"
    scheduler = methods.stopper(settings, stop) or {"type": "none"}
    scheduler.setdefault("type", "asha")
    data["search"] |= {"scheduler": scheduler, "max_concurrent": 2}
    return data


def run_method(data: dict[str, Any], work: Path) -> dict[str, Any]:
    """``lora-hpo run`` on the spec file, then ``lora-hpo best``, as a user would."""
    cwd = (work / data["name"]).resolve()  # the CLI runs there: no path relative to here
    cwd.mkdir(parents=True, exist_ok=True)
    spec = cwd / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    cli = str(Path(sys.executable).parent / "lora-hpo")
    print(f"[{time.strftime('%H:%M:%S')}] {data['name']}", flush=True)
    start = time.monotonic()
    with open(cwd / "run.log", "w") as log:
        cmd = [cli, "run", str(spec), "--storage-path", str(cwd / "studies")]
        done = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    wall = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"check: {data['name']} failed (exit {done.returncode}); see {cwd / 'run.log'}")
    best = subprocess.run(
        [cli, "best", "--experiment", data["name"], "--top", "10000", "--json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    from lora_hpo.search.study_storage import read_results

    dirs = sorted(d for d in (cwd / "studies").iterdir() if d.is_dir())  # staged: each stage's
    ends = [rows[-1] for d in dirs for rows in read_results(str(d)) if rows]
    steps = sum(int(row["step"]) for row in ends)
    return {"wall_s": wall, "ranked": json.loads(best.stdout), "trials": len(ends), "steps": steps}


def check_task(
    task: str, results: dict[str, Any], args: argparse.Namespace, kept: dict[str, Any]
) -> dict[str, Any]:
    """The task's top two methods (or those ``--methods`` names), best first by the
    simulator's ranking; one already in ``kept`` (an earlier check of the task, run with the
    same seed) is taken from it, not run again."""
    sim = results["tasks"][task]
    earlier = {m["variant"]: m for m in kept.get("methods", [])}
    order = summary.ranked(sim["methods"])
    chosen = [v for v in args.methods.split(",") if v] if args.methods else top_two(sim["methods"])
    rows = [
        earlier[v] if v in earlier else check_method(task, sim, v, args)
        for v in sorted(chosen, key=order.index)
    ]
    for row in rows:
        row["sim_rank"] = order.index(row["variant"]) + 1
    holds, tie = None, False
    if len(rows) == 2 and all(r["regret"] is not None for r in rows):
        first, second = rows
        holds, tie = first["regret"] <= second["regret"], first["regret"] == second["regret"]
    return {"metric": sim["metric"], "budget": sim["budget"], "oracle": sim["oracle"],
            "methods": rows, "ranking_holds": holds, "tie": tie}  # fmt: skip


def check_method(
    task: str, sim: dict[str, Any], variant: str, args: argparse.Namespace
) -> dict[str, Any]:
    """One method's real run on the task, scored against the table and the simulator."""
    m = sim["methods"][variant]
    trials = 2 if args.smoke else round(m["trials_mean"])
    data = method_data(task, task_settings(task, smoke=args.smoke), variant, args.seed, trials)
    out = run_method(data, args.out / "work")
    top = out["ranked"][0] if out["ranked"] else None
    value = None if top is None else float(top["metrics"][sim["metric"]])
    at_b = m["at"]["B"]
    regret = None if value is None else round(Table.load(task, args.table).regret(value), 6)
    return {
        "variant": variant,
        "label": methods.label(variant),
        "trials": out["trials"],
        "trial_steps": out["steps"],
        "wall_s": round(out["wall_s"], 1),
        "best_value": value,
        "best_params": None if top is None else top.get("params"),
        "regret": regret,
        "sim_median": at_b["median"],
        "sim_iqr": [at_b["q25"], at_b["q75"]],
        "date": time.strftime("%Y-%m-%d"),
    }


def render(out: dict[str, Any]) -> str:
    lines = [
        "### The real-study check (`python -m bench.tabular.check`)",
        "",
        f"{out['made']['date']}, commit {out['made']['git']['commit']}. On each task the "
        "simulator's two best methods each ran once as a real `lora-hpo run` (seed "
        f"{out['seed']}, two trials at once, the table's task settings, the simulator's mean "
        "trial count for the method). Regret: the table's oracle minus the run's best trial by "
        "lora-hpo's ranking rule. One run is one draw; the simulator's figures are medians "
        "[IQR] over 30 seeds at the budget B.",
        "",
        *(f"Note: {n}\n" for n in out.get("notes", [])),
        "| task | method (simulator's rank) | trials | trial-steps | real regret | simulator "
        "median [IQR] | within IQR | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, res in out["tasks"].items():
        lines += [
            _row(task, m.get("sim_rank", rank), m) for rank, m in enumerate(res["methods"], 1)
        ]
    lines.append("")
    if any((m["regret"] or 0) < 0 for res in out["tasks"].values() for m in res["methods"]):
        lines += [
            "A negative regret is a real run better than the table's oracle: a real study "
            "samples continuous values, which may fall between or beyond the grid's points "
            "(the simulator snaps each sample to the grid).",
            "",
        ]
    for task, res in out["tasks"].items():
        if len(res["methods"]) != 2:
            continue
        a, b = (m["label"] for m in res["methods"])
        verdict = {True: "holds", False: "does not hold", None: "cannot be judged"}
        lines.append(
            f"- {task}: the simulator ranks {a} above {b}; in the real runs that "
            f"{verdict[res['ranking_holds']]}{' (a tie)' if res['tie'] else ''}."
        )
    return "\n".join(lines) + "\n"


def _row(task: str, rank: int, m: dict[str, Any]) -> str:
    lo, hi = m["sim_iqr"]
    regret = m["regret"]
    inside = "—" if regret is None else "yes" if lo <= regret <= hi else "no"
    shown = "—" if regret is None else f"{regret:.4g}"
    return (
        f"| {task} | {m['label']} ({rank}) | {m['trials']} | {m['trial_steps']} | {shown} | "
        f"{m['sim_median']:.4g} [{lo:.4g}, {hi:.4g}] | {inside} | {m['wall_s']:.0f} |"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.tabular.check")
    ap.add_argument("--tasks", default="", help="default: every task in the simulator results")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="tiny settings, 2 trials per method")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the simulator's JSON")
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--keep", type=Path, help="an earlier check.json: its runs are reused")
    ap.add_argument("--methods", default="", help="these methods instead of the top two")
    args = ap.parse_args(argv)
    results = json.loads(args.results.read_text())
    tasks = [t for t in args.tasks.split(",") if t] or list(results["tasks"])
    command = " ".join([sys.executable, "-m", "bench.tabular.check", *sys.argv[1:]])
    out: dict[str, Any] = {"made": describe(command), "seed": args.seed, "smoke": args.smoke}
    before = json.loads(args.keep.read_text()) if args.keep else {"tasks": {}, "seed": args.seed}
    if before["seed"] != args.seed:
        sys.exit(f"check: --keep {args.keep} ran seed {before['seed']}, not {args.seed}")
    out["tasks"] = dict(before["tasks"])
    out["tasks"] |= {t: check_task(t, results, args, before["tasks"].get(t, {})) for t in tasks}
    out["notes"] = before.get("notes", [])
    write_section(args.out, "check", out, render(out))


if __name__ == "__main__":
    main()
