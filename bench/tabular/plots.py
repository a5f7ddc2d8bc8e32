"""The tabular benchmark's figures: per task, the regret curves of every method (median and
IQR over seeds, without and with ASHA side by side, the tutorial default and random search's
final median as lines), and the heat map of the final metric over (log lr, log s), where s is
alpha/r (alpha/sqrt r with rsLoRA): the ridge along lr x s = const shows as a diagonal."""

from __future__ import annotations

import itertools
import math
import shutil
from pathlib import Path
from typing import Any

from bench.tabular.methods import SEARCHERS
from bench.tabular.table import Table

COLORS = {"random": "tab:gray", "tpe": "tab:blue", "tpe_step": "tab:green", "gp": "tab:purple",
          "staged": "tab:orange", "lora": "tab:red", "lora_prior_only": "tab:pink",
          "lora_no_prior": "tab:brown"}  # fmt: skip


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _curve(ax: Any, grid: list[int], m: dict[str, Any], color: str, label: str) -> None:
    def clean(xs: list[float | None]) -> list[float]:
        return [math.nan if x is None else x for x in xs]

    ax.plot(grid, clean(m["median"]), color=color, label=label, lw=1.6)
    ax.fill_between(grid, clean(m["q25"]), clean(m["q75"]), color=color, alpha=0.15, lw=0)


def regret_figure(task: str, t: dict[str, Any], out: Path) -> Path:
    plt = _pyplot()
    stops = [
        x for x in ("", "asha", "curve") if any(v.partition("+")[2] == x for v in t["methods"])
    ]
    fig, axes = plt.subplots(
        1, len(stops), figsize=(6 * len(stops), 4.5), sharey=True, squeeze=False
    )
    axes = axes[0]
    titles = {"": "no early stopping", "asha": "with ASHA", "curve": "with the curve stopper"}
    for ax, stop in zip(axes, stops, strict=True):
        for name in SEARCHERS:
            variant = name + (f"+{stop}" if stop else "")
            if variant in t["methods"]:
                _curve(
                    ax,
                    t["grid"],
                    t["methods"][variant],
                    COLORS[name],
                    t["methods"][variant]["label"],
                )
        if t["default"]["regret"] is not None:
            ax.axhline(
                t["default"]["regret"], color="tab:red", ls="--", lw=1, label="tutorial default"
            )
        if t["random_final_median_regret"] is not None:
            ax.axhline(t["random_final_median_regret"], color="black", ls=":", lw=1,
                       label="random's final median")  # fmt: skip
        ax.set_title(f"{task}: {titles[stop]}")
        ax.set_xlabel("trial-steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"simple regret ({t['metric']}; median, IQR over seeds)")
    axes[0].set_yscale("symlog", linthresh=max(1e-3, (t["default"]["regret"] or 1) / 100))
    lows = [x for m in t["methods"].values() for x in m["q25"] if x is not None]
    axes[0].set_ylim(bottom=min([0.0, *lows]))
    return _save(plt, fig, out / f"regret-{task}.png")


def heat_cells(table: Table) -> dict[tuple[float, float], float]:
    """(lr, s) -> the best final value over the configs in that cell (r and rsLoRA vary)."""
    cells: dict[tuple[float, float], float] = {}
    for cid, cfg in table.configs.items():
        v = table.final(cid)
        if v is None:
            continue
        key = (cfg.learning_rate, round(cfg.scaling, 4))
        if key not in cells or table.better(v, cells[key]):
            cells[key] = v
    return cells


def _edges(values: list[float]) -> list[float]:
    """Cell edges on a log axis: geometric midpoints, half a step past each end."""
    mids = [math.sqrt(a * b) for a, b in itertools.pairwise(values)]
    first = values[0] ** 2 / mids[0] if mids else values[0] / 1.5
    last = values[-1] ** 2 / mids[-1] if mids else values[-1] * 1.5
    return [first, *mids, last]


def _matrix(table: Table) -> tuple[list[float], list[float], Any]:
    """The lr values, the s values and the (s, lr) matrix of best final values (NaN: none)."""
    import numpy as np

    lrs = sorted({c.learning_rate for c in table.configs.values()})
    ss = sorted({round(c.scaling, 4) for c in table.configs.values()})
    z = np.full((len(ss), len(lrs)), np.nan)
    for (lr, s), v in heat_cells(table).items():
        z[ss.index(s), lrs.index(lr)] = v
    return lrs, ss, z


def _labels(ax: Any, mesh: Any, table: Table, lrs: list[float], ss: list[float], z: Any) -> None:
    import numpy as np

    for i, s in enumerate(ss):
        for j, lr in enumerate(lrs):
            if not np.isnan(z[i, j]):
                shade = float(np.clip(mesh.norm(z[i, j]), 0, 1))
                light = shade > 0.6 if table.mode == "max" else shade < 0.4
                ax.text(lr, s, f"{z[i, j]:.3g}", ha="center", va="center", fontsize=6,
                        color="black" if light else "white")  # fmt: skip


def heatmap_figure(table: Table, out: Path) -> Path:
    import numpy as np

    plt = _pyplot()
    lrs, ss, z = _matrix(table)
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("viridis" if table.mode == "max" else "viridis_r")
    cmap = cmap.with_extremes(bad="lightgray")
    finite = z[~np.isnan(z)]
    lo, hi = (
        np.quantile(finite, [0.1, 1.0]) if table.mode == "max" else np.quantile(finite, [0, 0.9])
    )
    cmap = cmap.with_extremes(under=cmap(0.0), over=cmap(1.0))
    mesh = ax.pcolormesh(_edges(lrs), _edges(ss), np.ma.masked_invalid(z), cmap=cmap,
                         vmin=lo, vmax=hi)  # fmt: skip
    _labels(ax, mesh, table, lrs, ss, z)
    ax.set_xscale("log")
    ax.set_yscale("log")
    best = table.configs[table.oracle()[0]]
    c = best.learning_rate * best.scaling
    xs = np.array(_edges(lrs))[[0, -1]]
    ax.plot(xs, c / xs, color="red", ls="--", lw=1.2)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(_edges(ss)[0], _edges(ss)[-1])
    ax.set_xlabel("learning rate")
    ax.set_ylabel("effective scale s = α/r, or α/√r with rsLoRA")
    metric = "eval_loss" if table.mode == "min" else "eval_accuracy"
    ax.set_title(f"{table.task}: best final {metric} per (lr, s) cell over r and rsLoRA\n"
                 f"red: lr x s = {c:.3g}, the oracle's; grey: every config diverged\n"
                 "colours span the best 90% of cells", fontsize=10)  # fmt: skip
    fig.colorbar(mesh, ax=ax, shrink=0.8, extend="min" if table.mode == "max" else "max")
    return _save(plt, fig, out / f"heatmap-{table.task}.png")


def make_all(result: dict[str, Any], table: Path, out: Path, copy_to: Path | None) -> list[Path]:
    """Every figure into ``out``; copies into ``copy_to`` when given (the committed run)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for task, t in result["tasks"].items():
        paths.append(regret_figure(task, t, out))
        paths.append(heatmap_figure(Table.load(task, table), out))
    if copy_to is not None:
        copy_to.mkdir(parents=True, exist_ok=True)
        for p in paths:
            shutil.copy(p, copy_to / p.name)
    return paths
