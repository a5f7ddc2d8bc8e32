"""The pictures of a study, drawn from its trials: the rank-plateau curve (metric vs r), scale
sensitivity (metric vs α/r, or α/√r with rsLoRA), metric vs learning rate, the (lr, s) ridge,
parameter importance (Optuna's fANOVA) and the learning curves with ASHA's stop points marked;
PNGs plus an HTML page. The study's own run gets them when the study ends
(``study_tracking``), and ``lora-hpo report`` draws them again from MLflow
(``analysis.study_report``)."""

from __future__ import annotations

import html
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATUS_STYLE = {  # marker, label
    "completed": ("o", "completed"),
    "stopped_early": ("v", "stopped early (ASHA or the curve stopper)"),
    "diverged": ("x", "diverged"),
}
IMPORTANCE_PARAMS = ("r", "alpha_ratio", "learning_rate", "use_rslora", "lora_dropout")


@dataclass
class Trial:
    run_id: str
    status: str
    params: dict[str, Any]
    value: float
    curve: list[tuple[int, float]]


def _scatter(ax: Any, trials: list[Trial], key: str) -> None:
    by_status: dict[str, list[Trial]] = defaultdict(list)
    for t in trials:
        if key in t.params:
            by_status[t.status].append(t)
    for status, group in sorted(by_status.items()):
        marker, label = STATUS_STYLE.get(status, ("s", status))
        xs = [float(t.params[key]) for t in group]
        ax.scatter(xs, [t.value for t in group], marker=marker, label=label, s=40, alpha=0.8)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _best_line(ax: Any, trials: list[Trial], key: str, mode: str) -> None:
    best: dict[float, float] = {}
    for t in trials:
        if t.status != "completed":  # a stopped trial's value is from an earlier step
            continue
        x = float(t.params[key])
        pick = max if mode == "max" else min
        best[x] = pick(best.get(x, t.value), t.value)
    xs = sorted(best)
    ax.plot(xs, [best[x] for x in xs], "-", color="grey", lw=1, label="best completed trial per r")


def plot_rank(trials: list[Trial], metric: str, mode: str, out: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    _best_line(ax, trials, "r", mode)
    _scatter(ax, trials, "r")
    ranks = sorted({int(t.params["r"]) for t in trials})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ranks, [str(r) for r in ranks])
    ax.set(xlabel="LoRA rank r", ylabel=metric, title=f"Rank plateau: {metric} vs r")
    return _save(fig, out / "rank_plateau.png")


SCALE_TICKS = (0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0, 32.0)


def _plain_ticks(ax: Any, ticks: tuple[float, ...]) -> None:
    """Label a log axis at the given values that fall in its range, as plain numbers (a narrow
    range, e.g. s in 0.6-1.7, would otherwise show a single '2^0')."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    lo, hi = ax.get_xlim()
    ax.set_xticks([v for v in ticks if lo <= v <= hi])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_scale(trials: list[Trial], metric: str, out: Path) -> Path:
    """Metric against the effective scale s: α/r, or α/√r for rsLoRA trials."""
    import matplotlib.pyplot as plt

    plot_scale_keys(trials)
    fig, ax = plt.subplots(figsize=(6, 4))
    _scatter(ax, trials, "effective_scale")
    ax.set_xscale("log", base=2)
    _plain_ticks(ax, SCALE_TICKS)
    ax.set(
        xlabel="effective scale s = α/r (α/√r with rsLoRA)",
        ylabel=metric,
        title=f"Scale sensitivity: {metric} vs s",
    )
    return _save(fig, out / "scale.png")


def plot_lr(trials: list[Trial], metric: str, out: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    _scatter(ax, trials, "learning_rate")
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel=metric, title=f"{metric} vs learning rate")
    return _save(fig, out / "learning_rate.png")


def plot_ridge(trials: list[Trial], metric: str, mode: str, out: Path) -> Path:
    """The trials in the (lr, s) plane, coloured by the metric (better is brighter): with Adam
    the update size grows with lr x s, so good configs lie along a diagonal ridge; the dashed
    lines are constant step sizes lr x s through the best trial and a decade either side."""
    import matplotlib.pyplot as plt

    plot_scale_keys(trials)
    ranked_ok = [t for t in trials if math.isfinite(t.value) and "learning_rate" in t.params]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if ranked_ok:
        xs = [float(t.params["learning_rate"]) for t in ranked_ok]
        ys = [float(t.params["effective_scale"]) for t in ranked_ok]
        cmap = "viridis" if mode == "max" else "viridis_r"
        dots = ax.scatter(xs, ys, c=[t.value for t in ranked_ok], cmap=cmap, s=50)
        fig.colorbar(dots, ax=ax, label=metric)
        pick = max if mode == "max" else min
        best = pick(ranked_ok, key=lambda t: t.value)
        step = float(best.params["learning_rate"]) * float(best.params["effective_scale"])
        lo, hi = min(xs) / 2, max(xs) * 2
        for k in (0.1, 1.0, 10.0):
            ax.plot([lo, hi], [k * step / lo, k * step / hi], "k--", lw=0.8, alpha=0.5)
        ax.set_xlim(lo, hi)
        ax.set_ylim(min(ys) / 2, max(ys) * 2)
    ax.set_xscale("log")
    ax.set_yscale("log", base=2)
    ax.grid(alpha=0.3)
    ax.set(
        xlabel="learning rate",
        ylabel="effective scale s",
        title="The lr x s ridge (dashed: constant lr x s)",
    )
    return _save(fig, out / "ridge.png")


def plot_scale_keys(trials: list[Trial]) -> None:
    """Each trial's effective scale s, from its params (α/r, or α/√r with rsLoRA)."""
    for t in trials:
        root = math.sqrt(t.params["r"]) if t.params.get("use_rslora") else t.params["r"]
        t.params.setdefault("effective_scale", t.params["lora_alpha"] / root)


def importances(trials: list[Trial], mode: str) -> dict[str, float]:
    """fANOVA importances over finished trials (an in-memory Optuna study)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    done = [t for t in trials if t.status in ("completed", "diverged")]
    names = [n for n in IMPORTANCE_PARAMS if len({str(t.params.get(n)) for t in done}) > 1]
    if len(done) < 3 or not names:
        return {}
    dists: dict[str, Any] = {}
    for n in names:
        values = [t.params[n] for t in done]
        if all(isinstance(v, float) for v in values) and n != "r":
            dists[n] = FloatDistribution(min(values), max(values), log=min(values) > 0)
        else:
            dists[n] = CategoricalDistribution(sorted(set(values), key=str))
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for t in done:
        params = {n: t.params[n] for n in names}
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=dists, value=t.value)
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))


def plot_importance(trials: list[Trial], mode: str, out: Path) -> Path:
    import matplotlib.pyplot as plt

    imp = importances(trials, mode)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if imp:
        names = list(imp)[::-1]
        ax.barh(names, [imp[n] for n in names], color="tab:blue")
        ax.set(xlabel="importance (fANOVA, sums to 1)", title="Parameter importance")
    else:
        ax.text(0.5, 0.5, "too few finished trials for importance", ha="center", va="center")
        ax.set_axis_off()
    return _save(fig, out / "importance.png")


def plot_curves(trials: list[Trial], metric: str, out: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for t in trials:
        if not t.curve:
            continue
        steps, values = zip(*t.curve, strict=True)
        (line,) = ax.plot(steps, values, lw=1.2, alpha=0.8)
        if t.status in STATUS_STYLE and t.status != "completed":
            marker = STATUS_STYLE[t.status][0]
            ax.plot(steps[-1], values[-1], marker, color=line.get_color(), ms=9, mew=2)
    ax.plot([], [], "v", color="black", label="stopped early")
    ax.plot([], [], "x", color="black", label="diverged")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set(xlabel="training step", ylabel=metric, title=f"Learning curves ({len(trials)} trials)")
    return _save(fig, out / "learning_curves.png")


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_report(name: str, trials: list[Trial], metric: str, mode: str, out: Path) -> list[Path]:
    """Draw every picture of study ``name`` into ``out``, plus ``index.html``; the files."""
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    pngs = [
        plot_rank(trials, metric, mode, out),
        plot_scale(trials, metric, out),
        plot_lr(trials, metric, out),
        plot_ridge(trials, metric, mode, out),
        plot_importance(trials, mode, out),
        plot_curves(trials, metric, out),
    ]
    title = html.escape(f"lora-hpo report: {name} ({len(trials)} trials, {metric})")
    imgs = "\n".join(f'<figure><img src="{p.name}" alt="{p.stem}"></figure>' for p in pngs)
    page = f"<!doctype html><meta charset=utf-8><title>{title}</title><h1>{title}</h1>\n{imgs}\n"
    (out / "index.html").write_text(page)
    return [*pngs, out / "index.html"]
