"""One lora-hpo study for the bench, through the library API (``run_study``), with every
report recorded by a Ray Tune callback in the driver (see settings.py for the variants).

    python -m bench.overhead.part_lorahpo --variant same|no-asha|recommended \\
        --settings S.json --out O.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch  # noqa: F401  (import torch before ray.init: oneMKL aborts otherwise)
import transformers  # noqa: F401  (imported before the clock starts, as in the peer)
from ray.tune import Callback

from bench.overhead.settings import build_spec
from lora_hpo.search.result import StudyResult
from lora_hpo.search.study import run_study
from lora_hpo.training.quiet import quiet_libraries

REPORT_KEYS = ("step", "step_time_s", "start_s", "pid", "started_at", "reported_at")
TIME_KEYS = ("time_in_eval_s", "time_in_save_s", "time_in_report_s")  # from the last report


class Recorder(Callback):  # type: ignore[misc]
    """Keeps every report the driver receives (the study result keeps only the last)."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []

    def on_trial_result(
        self, iteration: int, trials: Any, trial: Any, result: Any, **info: Any
    ) -> None:
        row: dict[str, Any] = {k: result.get(k) for k in REPORT_KEYS}
        row["trial_id"] = trial.trial_id
        row["eval_accuracy"] = result.get("eval_accuracy_raw", result.get("eval_accuracy"))
        self.reports.append(row)


def trial_rows(result: StudyResult) -> list[dict[str, Any]]:
    rows = []
    for t in result.trials:
        keys = ("r", "alpha_ratio", "use_rslora", "learning_rate")
        row: dict[str, Any] = {"trial_id": t.trial_id, "status": t.status}
        row["params"] = {k: t.params[k] for k in keys}
        row |= {k: t.metrics.get(k) for k in (*REPORT_KEYS, *TIME_KEYS)}
        row["eval_accuracy"] = t.metrics.get("eval_accuracy_raw")
        rows.append(row)
    return sorted(rows, key=lambda r: r["trial_id"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=["same", "no-asha", "recommended"], required=True)
    ap.add_argument("--settings", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    quiet_libraries()
    s = json.loads(Path(args.settings).read_text())
    spec = build_spec(args.variant, s)
    storage = (Path(args.out).parent / f"lora-hpo-{args.variant}").resolve()
    shutil.rmtree(storage, ignore_errors=True)
    recorder = Recorder()
    start = time.time()
    result = run_study(spec, storage_path=str(storage), callbacks=[recorder], tracking=False)
    wall = time.time() - start
    out = {
        "variant": args.variant,
        "start": start,
        "wall_s": wall,
        "fit_wall_s": result.wall_s,
        "concurrency": spec.search.max_concurrent,
        "best": result.best.metrics.get("eval_accuracy_raw") if result.best else None,
        "trials": trial_rows(result),
        "reports": recorder.reports,
    }
    Path(args.out).write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
