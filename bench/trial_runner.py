"""Trial-runner figures: steps/s per demo model, first vs cached trial start, and memory over
10 consecutive trials in one process. Prints a table and writes bench/out/trial_runner.json.

    python -m bench.trial_runner [--trials 10] [--smollm-steps 10]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import psutil

from lora_hpo.spec.loader import load_spec
from lora_hpo.spec.schema import StudySpec
from lora_hpo.training.quiet import quiet_libraries
from lora_hpo.training.trial import run_trial

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"


def minilm_spec(steps: int) -> StudySpec:
    return load_spec(
        REPO / "search_spaces" / "quickstart.yaml",
        [
            f"training.max_steps={steps}",
            f"training.eval_every={steps}",
            f"search.scheduler.grace_period={steps}",
        ],
    )


def smollm_spec(steps: int) -> StudySpec:
    return load_spec(
        REPO / "search_spaces" / "instruction-tuning.yaml",
        [
            f"training.max_steps={steps}",
            f"training.eval_every={steps}",
            "training.batch_size=8",
            f"search.scheduler.grace_period={steps}",
            "data.max_length=64",
            "data.max_eval_samples=32",
            "data.max_train_samples=400",
            "resources.gpu=0",
            "resources.cpu=2",
            "space.r=16",
            "space.target_modules=attention",
        ],
    )


def trial(spec: StudySpec, params: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    last = run_trial(spec, params, lambda m, c: None)
    wall = time.perf_counter() - start
    steps = int(last["step"])
    rss = psutil.Process().memory_info().rss / 2**20
    return {
        "wall_s": wall,
        "start_s": last["start_s"],
        "steps_per_s": steps / last["step_time_s"],
        "rss_mib": rss,
        "metric": last.get(spec.metric),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--minilm-steps", type=int, default=20)
    ap.add_argument("--smollm-steps", type=int, default=10)
    args = ap.parse_args()
    quiet_libraries()
    import torch

    results: dict[str, Any] = {"cpus": os.cpu_count(), "torch_threads": None}
    spec = minilm_spec(args.minilm_steps)
    params = {"r": 8, "alpha_ratio": 1.0, "learning_rate": 2e-3}
    runs = [trial(spec, params) for _ in range(args.trials)]
    results["torch_threads"] = torch.get_num_threads()
    results["minilm"] = runs
    sspec = smollm_spec(args.smollm_steps)
    sparams = {"alpha_ratio": 1.0, "learning_rate": 2e-4, "use_rslora": False}
    results["smollm2"] = [trial(sspec, sparams) for _ in range(2)]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "trial_runner.json").write_text(json.dumps(results, indent=2))
    for name in ("minilm", "smollm2"):
        rows = results[name]
        print(f"{name}: steps/s {[round(r['steps_per_s'], 2) for r in rows]}")
        print(
            f"{name}: start_s first {rows[0]['start_s']:.2f}, cached "
            f"{[round(r['start_s'], 2) for r in rows[1:]]}"
        )
        print(f"{name}: rss MiB {[round(r['rss_mib']) for r in rows]}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
