"""The recorded table: its CSV format (columns, reading, writing, which trials are complete),
and ``Table``, one task's view for the simulator: each config's learning curve, the oracle, the
tutorial default, and the snap of any sampled config to its nearest grid point."""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench.tabular.grid import (
    DATA,
    DEFAULT_CONFIG,
    TASKS,
    Config,
    config_id,
    configs,
    task_settings,
)

COLUMNS = (
    "task",
    "config",
    "r",
    "alpha_ratio",
    "lora_alpha",
    "use_rslora",
    "learning_rate",
    "scaling",
    "step_size",
    "step",
    "step_time_s",
    "elapsed_s",
    "value",
    "eval_loss",
    "eval_accuracy",
    "train_loss",
    "adapter_norm_mean",
    "status",
)
ENDS = ("completed", "diverged", "failed")  # a trial's last row has one of these
WORST = {"min": 1e9, "max": 0.0}  # what the searcher learns for a NaN value (as lora-hpo does)
TABLE = DATA / "table.csv"


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def write_rows(fh: IO[str], rows: Iterable[dict[str, Any]], header: bool) -> None:
    w = csv.writer(fh, lineterminator="\n")
    if header:
        w.writerow(COLUMNS)
    for row in rows:
        w.writerow([_cell(row.get(c)) for c in COLUMNS])


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows as dicts of strings; a line cut off mid-write (too few fields) is skipped."""
    with open(path, encoding="utf-8", newline="") as fh:
        return [r for r in csv.DictReader(fh) if None not in r.values() and len(r) == len(COLUMNS)]


def complete_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the rows of trials whose last row is there (status completed, diverged, failed)."""
    done = {(r["task"], r["config"]) for r in rows if r["status"] in ENDS}
    return [r for r in rows if (r["task"], r["config"]) in done]


def step_rates(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per task, the median training steps/s of its completed trials (one torch thread)."""
    out = {}
    for task in sorted({r["task"] for r in rows}):
        rates = [
            int(r["step"]) / float(r["step_time_s"])
            for r in rows
            if r["task"] == task and r["status"] == "completed" and float(r["step_time_s"]) > 0
        ]
        if rates:
            out[task] = round(statistics.median(rates), 3)
    return out


def sidecar(path: Path) -> dict[str, Any]:
    """The table's JSON sidecar, or (a recording still under way) the grid's own settings."""
    side = path.with_suffix(".json")
    if side.is_file():
        return json.loads(side.read_text())  # type: ignore[no-any-return]
    return {"settings": {t: task_settings(t) for t in TASKS}, "sessions": []}


def complete_tasks(path: Path) -> list[str]:
    """The tasks whose whole grid is in the table."""
    rows = complete_rows(read_rows(path))
    settings = sidecar(path)["settings"]
    out = []
    for task, s in settings.items():
        have = {r["config"] for r in rows if r["task"] == task}
        if have and have >= {c.id for c in configs(s)}:
            out.append(task)
    return out


def _float(text: str) -> float:
    return float(text) if text not in ("", None) else math.nan


@dataclass(frozen=True)
class Point:
    """One eval of one trial: the step, the cumulative step time, the metric and the status."""

    step: int
    time: float
    value: float  # the raw metric (NaN when it was not finite)
    status: str


def _nearest(value: float, grid: list[float]) -> float:
    return min(grid, key=lambda g: abs(math.log(value) - math.log(g)))


class Table:
    """One task's recorded curves."""

    def __init__(self, rows: list[dict[str, Any]], task: str, settings: dict[str, Any]) -> None:
        self.task, self.settings = task, settings
        self.mode = "min" if task.startswith("smollm") else "max"
        self.max_steps = int(settings["max_steps"])
        self.curves: dict[str, list[Point]] = {}
        self.configs: dict[str, Config] = {}
        for r in sorted(rows, key=lambda r: int(r["step"])):
            if r["task"] != task:
                continue
            cfg = Config(int(r["r"]), float(r["alpha_ratio"]), r["use_rslora"] == "1",
                         float(r["learning_rate"]))  # fmt: skip
            self.configs[cfg.id] = cfg
            point = Point(int(r["step"]), _float(r["step_time_s"]), _float(r["value"]), r["status"])
            self.curves.setdefault(cfg.id, []).append(point)
        g = settings["grid"]
        self.grid = {k: sorted(float(x) for x in g[k]) for k in ("r", "alpha_ratio", "lr")}
        self.rslora = sorted(bool(x) for x in g["use_rslora"])

    @classmethod
    def load(cls, task: str, path: Path = TABLE) -> Table:
        """One task's view of the table; its settings from the sidecar (the grid's when a
        recording was cut off before it wrote one). Only the task's complete trials count."""
        return cls(complete_rows(read_rows(path)), task, sidecar(path)["settings"][task])

    def better(self, a: float, b: float) -> bool:
        return a > b if self.mode == "max" else a < b

    def final(self, config: str) -> float | None:
        """The value at the last step of a trial that completed (None otherwise)."""
        last = self.curves[config][-1]
        ok = last.status == "completed" and math.isfinite(last.value)
        return last.value if ok else None

    def oracle(self) -> tuple[str, float]:
        """The grid point with the best final value: the best fully trained adapter."""
        finals = {c: v for c in self.curves if (v := self.final(c)) is not None}
        best = (max if self.mode == "max" else min)(finals, key=lambda c: finals[c])
        return best, finals[best]

    def default(self) -> str:
        """The tutorial default's grid point (r=8, alpha=16, lr 2e-4, no rsLoRA)."""
        return DEFAULT_CONFIG.id

    def regret(self, value: float | None) -> float:
        """How far ``value`` is from the oracle (positive is worse); inf for no value."""
        if value is None or not math.isfinite(value):
            return math.inf
        best = self.oracle()[1]
        return best - value if self.mode == "max" else value - best

    def snap(self, r: int, lora_alpha: float, use_rslora: bool, lr: float) -> str:
        """The nearest grid point: r, alpha/r and lr nearest in log space (clipped to the
        grid), rsLoRA as given when the grid has it."""
        rr = int(_nearest(float(r), self.grid["r"]))
        ratio = _nearest(lora_alpha / r, self.grid["alpha_ratio"])
        rs = use_rslora if use_rslora in self.rslora else self.rslora[0]
        return config_id(rr, ratio, rs, _nearest(lr, self.grid["lr"]))
