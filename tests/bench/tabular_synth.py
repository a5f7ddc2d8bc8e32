"""A synthetic table in the recorder's format, for the simulator's tests: the full grid of a
task with curves from a ridge in (log lr, log s), so a test needs no recording."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.tabular import grid
from bench.tabular.table import write_rows


def value_at(cfg: grid.Config, step: int, max_steps: int, mode: str) -> float:
    """A ridge along lr x s = 3e-3, a mild rank effect, rising with the steps."""
    off = math.log10(cfg.learning_rate * cfg.scaling / 3e-3)
    quality = math.exp(-(off**2)) * (1 + 0.02 * math.log2(cfg.r))
    progress = 1 - math.exp(-3 * step / max_steps)
    if mode == "max":
        return round(0.2 + 0.7 * quality * progress, 3)
    return round(5.0 - 4.5 * quality * progress, 3)


def write_synthetic(folder: Path, tasks: tuple[str, ...] = ("minilm-bbc",)) -> Path:
    """table.csv and its sidecar under ``folder``; a config with lr x s > 0.1 diverges."""
    folder.mkdir(parents=True, exist_ok=True)
    path, rows, settings = folder / "table.csv", [], {}
    for task in tasks:
        s = grid.task_settings(task)
        settings[task] = s
        mode = "min" if task.startswith("smollm") else "max"
        every, steps = s["training"]["eval_every"], s["max_steps"]
        for cfg in grid.configs(s):
            for step in range(every, steps + 1, every):
                bad = cfg.learning_rate * cfg.scaling > 0.1
                status = "diverged" if bad else ("completed" if step == steps else "running")
                rows.append({"task": task, "config": cfg.id, "r": cfg.r,
                             "alpha_ratio": cfg.alpha_ratio, "lora_alpha": cfg.alpha_ratio * cfg.r,
                             "use_rslora": int(cfg.use_rslora), "learning_rate": cfg.learning_rate,
                             "scaling": cfg.scaling, "step_size": cfg.learning_rate * cfg.scaling,
                             "step": step, "step_time_s": step * (0.3 + 0.01 * cfg.r),
                             "elapsed_s": step * 0.5,
                             "value": math.nan if bad else value_at(cfg, step, steps, mode),
                             "status": status})  # fmt: skip
                if bad:
                    break
    with open(path, "w", encoding="utf-8", newline="") as fh:
        write_rows(fh, rows, header=True)
    side = {"settings": settings, "rows": len(rows), "complete": True, "sessions": [],
            "configs": {t: 160 for t in tasks}, "step_rate": {}}  # fmt: skip
    path.with_suffix(".json").write_text(json.dumps(side))
    return path
