"""Records the tabular benchmark: every grid point of every task trained for real by
``run_trial`` in a pool of long-lived worker processes (one torch thread each), one row per
(task, config, eval step) appended as each trial ends, so an interrupted recording resumes
where it stopped. Writes the table (CSV) and a JSON sidecar with the settings, versions, the
machine's step rate and the start and end of every recording session.

    python -m bench.tabular.record [--smoke] [--tasks minilm-bbc,smollm2-instruct]
        [--out bench/tabular/data] [--workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.tabular import grid
from bench.tabular.table import COLUMNS, complete_rows, read_rows, step_rates, write_rows

_SPECS: dict[tuple[str, bool], Any] = {}


def table_path(out: Path, smoke: bool) -> Path:
    return out / ("table-smoke.csv" if smoke else "table.csv")


def _init_worker() -> None:
    """One torch thread per worker; quiet libraries."""
    from lora_hpo.training.quiet_logs import quiet_libraries

    quiet_libraries()
    import torch

    torch.set_num_threads(1)


def _row(task: str, cfg: grid.Config, m: dict[str, Any], elapsed: float) -> dict[str, Any]:
    """One table row from one report of ``run_trial``."""
    metric = "eval_loss" if task.startswith("smollm") else "eval_accuracy"
    return {
        "task": task,
        "config": cfg.id,
        "r": cfg.r,
        "alpha_ratio": cfg.alpha_ratio,
        "lora_alpha": m.get("lora_alpha", cfg.alpha_ratio * cfg.r),
        "use_rslora": int(cfg.use_rslora),
        "learning_rate": cfg.learning_rate,
        "scaling": m.get("effective_scale", cfg.scaling),
        "step_size": cfg.learning_rate * cfg.scaling,
        "step": int(m["step"]),
        "step_time_s": m.get("step_time_s", 0.0),
        "elapsed_s": elapsed,
        "value": m.get(f"{metric}_raw", m.get(metric)),
        "eval_loss": m.get("eval_loss"),
        "eval_accuracy": m.get("eval_accuracy"),
        "train_loss": m.get("train_loss"),
        "adapter_norm_mean": m.get("adapter_norm_mean"),
        "status": m.get("status", "running"),
    }


def trial_rows(task: str, smoke: bool, config: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Train one grid point (in a worker); its rows, and an error message if it failed."""
    from lora_hpo.training.trainer_trial import run_trial

    key = (task, smoke)
    if key not in _SPECS:
        _SPECS[key] = grid.trial_spec(task, grid.task_settings(task, smoke))
    cfg = grid.Config(**config)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()

    def report(metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        rows.append(_row(task, cfg, metrics, time.perf_counter() - start))

    try:
        run_trial(_SPECS[key], cfg.sampled(), report)
    except Exception as exc:  # recorded as a failed trial; the recording goes on
        failed = _row(task, cfg, {"step": 0, "status": "failed"}, time.perf_counter() - start)
        return [*rows, failed], repr(exc)
    return rows, ""


def pending(tasks: list[str], smoke: bool, done: set[tuple[str, str]]) -> list[tuple[str, Any]]:
    """The (task, config) pairs still to record, in order."""
    todo = []
    for task in tasks:
        for cfg in grid.configs(grid.task_settings(task, smoke)):
            if (task, cfg.id) not in done:
                todo.append((task, cfg))
    return todo


def append(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append one trial's rows in one write, flushed to disk."""
    new = not path.exists()
    with open(path, "a", encoding="utf-8", newline="") as fh:
        write_rows(fh, rows, header=new)
        fh.flush()
        os.fsync(fh.fileno())


def _sidecar(path: Path, tasks: list[str], smoke: bool) -> dict[str, Any]:
    side = path.with_suffix(".json")
    data: dict[str, Any] = json.loads(side.read_text()) if side.is_file() else {"sessions": []}
    data["settings"] = {t: grid.task_settings(t, smoke) for t in grid.TASKS}
    data["columns"] = list(COLUMNS)
    data["default"] = grid.DEFAULT
    data["tasks_requested"] = sorted(set(data.get("tasks_requested", [])) | set(tasks))
    return data


def _provisional(path: Path, data: dict[str, Any], session: dict[str, Any], n: int) -> None:
    """The sidecar with this session so far (its end still null), so that a recording cut off
    leaves the record of how far it got."""
    now = session | {"end": None, "configs_recorded": n}
    side = data | {"sessions": [*data["sessions"], now]}
    path.with_suffix(".json").write_text(json.dumps(side, indent=2, default=str) + "\n")


def _finish(path: Path, data: dict[str, Any], session: dict[str, Any], smoke: bool) -> None:
    """Rewrite the table sorted and the sidecar with this session and the totals."""
    rows = complete_rows(read_rows(path))
    rows.sort(key=lambda r: (r["task"], r["config"], int(r["step"])))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        write_rows(fh, rows, header=True)
    os.replace(tmp, path)
    session["end"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    session["load_after"] = os.getloadavg()
    data["sessions"].append(session)
    data["rows"] = len(rows)
    data["configs"] = {
        t: len({r["config"] for r in rows if r["task"] == t}) for t in data["tasks_requested"]
    }
    want = {t: len(grid.configs(grid.task_settings(t, smoke))) for t in data["tasks_requested"]}
    data["complete"] = data["configs"] == want
    data["step_rate"] = step_rates(rows)
    data["wall_s_total"] = sum(s["wall_s"] for s in data["sessions"])
    path.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str) + "\n")


def _progress(done: int, total: int, started: float, rows: list[dict[str, Any]]) -> str:
    last = rows[-1] if rows else {}
    rate = (time.monotonic() - started) / done
    eta = rate * (total - done) / 60
    return (
        f"[{done}/{total}] {last.get('task')} {last.get('config')} step {last.get('step')}"
        f" {last.get('status')} value {last.get('value')}  ({rate:.1f} s/config, ETA {eta:.0f} min)"
    )


def record(tasks: list[str], smoke: bool, out: Path, workers: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = table_path(out, smoke)
    kept = complete_rows(read_rows(path)) if path.is_file() else []
    if path.is_file():  # drop rows of a trial cut off mid-write; they are recorded again
        path.unlink()
        append(path, kept)
    todo = pending(tasks, smoke, {(r["task"], r["config"]) for r in kept})
    data = _sidecar(path, tasks, smoke)
    session = describe(" ".join([sys.executable, "-m", "bench.tabular.record", *sys.argv[1:]]))
    session |= {"start": session.pop("date"), "workers": workers, "configs_to_record": len(todo)}
    print(f"recording {len(todo)} configs into {path} ({len(kept)} rows kept)", flush=True)
    started = time.monotonic()
    session["wall_s"] = 0.0
    _provisional(path, data, session, 0)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
        futures: dict[Future[Any], tuple[str, Any]] = {
            pool.submit(trial_rows, task, smoke, dataclasses.asdict(cfg)): (task, cfg)
            for task, cfg in todo
        }
        for n, fut in enumerate(as_completed(futures), 1):
            rows, error = fut.result()
            append(path, rows)
            if error:
                print(f"FAILED {futures[fut][0]} {futures[fut][1].id}: {error}", flush=True)
            print(_progress(n, len(todo), started, rows), flush=True)
            session["wall_s"] = time.monotonic() - started
            _provisional(path, data, session, n)
    session["wall_s"] = time.monotonic() - started
    session["configs_recorded"] = len(todo)
    _finish(path, data, session, smoke)
    print(f"wrote {path} and {path.with_suffix('.json')}", flush=True)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.tabular.record")
    ap.add_argument("--smoke", action="store_true", help="tiny settings and a 4-point grid")
    ap.add_argument("--tasks", default=",".join(grid.TASKS))
    ap.add_argument("--out", type=Path, default=grid.DATA)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in grid.TASKS]
    if unknown:
        ap.error(f"unknown tasks {unknown}; known: {sorted(grid.TASKS)}")
    record(tasks, args.smoke, args.out, args.workers)


if __name__ == "__main__":
    main()
