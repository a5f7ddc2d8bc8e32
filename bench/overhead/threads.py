"""Would a lone trial at a study's tail gain from the idle slot's threads? One quickstart trial
(``lora_hpo.training.trial.run_trial``, in this process, no Ray) on 1 thread and on N,
alternating, ``--repeats`` times each: its in-step rate (``step_time_s``) and its eval time
(``time_in_eval_s``). The ratio bounds what threads for a lone trial (one of #15's P1 levers)
could save: the tail slot-seconds times (1 - 1/speed-up).

    python -m bench.overhead.threads               # 1 vs 2 threads, 3 repeats: about 2 min
    python -m bench.overhead.threads --smoke       # 4 steps, 1 repeat (tests run it)

It writes <out>/threads.json and <out>/threads.md (default bench/out/threads/).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from bench import machine
from bench.overhead.settings import BENCH, QUICKSTART
from bench.results_md import write_section


def trial(threads: int, steps: int, smoke: bool) -> dict[str, float]:
    """One quickstart trial of ``steps`` steps (eval at the last) on ``threads`` threads."""
    from lora_hpo.spec.loader import load_spec
    from lora_hpo.training.trial import run_trial

    sets = [f"resources.cpu={threads}", f"training.max_steps={steps}"]
    sets += [f"training.eval_every={steps}", f"search.scheduler.grace_period={steps}"]
    if smoke:
        sets += ["data.max_train_samples=64", "data.max_eval_samples=32"]
    last = run_trial(load_spec(QUICKSTART, sets), {"r": 8, "alpha_ratio": 1.0,
                     "learning_rate": 2e-3}, lambda m, c: None)  # fmt: skip
    return {
        "threads": threads,
        "steps_per_s": int(last["step"]) / float(last["step_time_s"]),
        "eval_s": float(last["time_in_eval_s"]),
    }


def summary(runs: list[dict[str, float]]) -> dict[int, dict[str, float]]:
    """Medians per thread count, and each one's speed-up over the lowest count."""
    counts = sorted({int(r["threads"]) for r in runs})
    by = {t: [r for r in runs if r["threads"] == t] for t in counts}
    med = {
        t: {k: statistics.median(r[k] for r in rs) for k in ("steps_per_s", "eval_s")}
        for t, rs in by.items()
    }
    base = med[min(med)]
    for m in med.values():
        m["step_speedup"] = m["steps_per_s"] / base["steps_per_s"]
        m["eval_speedup"] = base["eval_s"] / m["eval_s"]
    return med


def render(results: dict[str, Any]) -> str:
    lines = [
        "## Threads for a lone trial (`python -m bench.overhead.threads`)",
        "",
        f"{machine.provenance(results)}. One quickstart "
        f"trial ({results['steps']} steps, eval of the quickstart's eval set at the last) in one "
        f"process, by thread count; medians of {results['repeats']}.",
        "",
        "| threads | steps/s | speed-up | eval (s) | eval speed-up |",
        "|---|---|---|---|---|",
    ]
    for t, m in results["summary"].items():
        lines.append(
            f"| {t} | {m['steps_per_s']:.2f} | {m['step_speedup']:.2f}× | {m['eval_s']:.2f} | "
            f"{m['eval_speedup']:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="4 steps, 1 repeat")
    ap.add_argument("--repeats", type=int, help="runs per thread count (default 3; 1 with --smoke)")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--out", type=Path, default=BENCH / "out" / "threads")
    args = ap.parse_args()
    from lora_hpo.training.quiet import quiet_libraries

    quiet_libraries()
    repeats = args.repeats or (1 if args.smoke else 3)
    steps = 4 if args.smoke else 20
    counts = sorted({1, args.threads})
    trial(counts[0], steps, args.smoke)  # warm-up: the first trial loads the model and data
    runs = [trial(t, steps, args.smoke) for _ in range(repeats) for t in counts]
    results = machine.describe(" ".join(["python", "-m", "bench.overhead.threads", *sys.argv[1:]]))
    results |= {"steps": steps, "repeats": repeats, "runs": runs, "summary": summary(runs)}
    write_section(args.out, "threads", results, render(results))


if __name__ == "__main__":
    main()
