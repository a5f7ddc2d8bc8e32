"""The end-of-study summary: top configs (the shared ranking), counts by status, where the best
adapter is; as text, or as one JSON document (``document``)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from lora_hpo.cli.text_table import format_table

if TYPE_CHECKING:
    from lora_hpo.search.study_result import StudyResult, TrialSummary

STATUS_ORDER = ("completed", "stopped_early", "diverged", "failed", "running", "pending")
HEADER = ("rank", "step", "r", "alpha", "rsLoRA", "lr", "scale", "trainable", "status")


def _row(rank: int, t: TrialSummary, metric: str) -> list[Any]:
    p, m = t.params, t.metrics
    value = m.get(f"{metric}_raw", m[metric])
    return [
        rank,
        f"{value:.4f}",
        m.get("step", "-"),
        p["r"],
        f"{p['lora_alpha']:.3g}",
        "yes" if p["use_rslora"] else "no",
        f"{p['learning_rate']:.2e}",
        f"{p['effective_scale']:.3g}",
        f"{int(m.get('trainable_params', 0)):,}",
        t.status,
    ]


def render(result: StudyResult, top: int = 5) -> str:
    from lora_hpo.search.study_result import rank_trials

    spec = result.spec
    header = [HEADER[0], spec.metric, *HEADER[1:]]
    rows = [_row(i, t, spec.metric) for i, t in enumerate(rank_trials(spec, result.trials), 1)]
    counts = ", ".join(f"{result.counts[s]} {s}" for s in STATUS_ORDER if s in result.counts)
    head = f"study {spec.name!r}: {len(result.trials)} trials in {result.wall_s:.0f} s ({counts})"
    if result.stopped:
        head = f"study {spec.name!r}: stopped after {result.wall_s:.0f} s"
    lines = [
        head,
        "",
        format_table(header, rows[:top]) if rows else "no trial reported a result",
        "",
    ]
    if result.failures:
        lines.append("failures:")
        lines += [f"  {f.line()}" for f in result.failures]
    if result.stopped:
        name = spec.name.split("-stage")[0] if "-stage" in spec.name else spec.name
        lines.append(f"{result.stopped}; fix the cause, then: lora-hpo resume {name}")
    if result.decision:
        lines.append(f"staged: {result.decision}")
    if result.best is not None and result.best.checkpoint:
        lines.append(f"best adapter: {result.best.checkpoint}")
    lines.append(f"study directory: {result.path}")
    if result.optuna_study:
        where = result.optuna_study
        opened = f"sqlite:///{where}" if "://" not in where else f"{where} (download it first)"
        lines.append(f"Optuna study: optuna-dashboard {opened}")
    return "\n".join(lines)


def document(result: StudyResult, tracking: Any = None) -> dict[str, Any]:
    """``render``'s facts and ``tracking``'s (a ``StudyTracking``: MLflow, the champion) as one
    JSON document for ``lora-hpo run --json``: every trial, ranked ones first with their rank."""
    from lora_hpo.search.study_result import rank_trials

    spec = result.spec
    ranks = {id(t): i for i, t in enumerate(rank_trials(spec, result.trials), 1)}
    best = result.best
    return {
        "study": spec.name,
        "metric": spec.metric,
        "mode": spec.mode,
        "wall_s": result.wall_s,
        "counts": dict(result.counts),
        "trials": [_trial(t, spec.metric, ranks.get(id(t))) for t in result.trials],
        "best": None if best is None else _trial(best, spec.metric, 1),
        "failures": [dataclasses.asdict(f) for f in result.failures],
        "stopped": result.stopped or None,
        "decision": result.decision or None,
        "earlier_trials": [_trial(t, spec.metric, None) for t in result.earlier],
        "study_dir": result.path,
        "optuna_study": result.optuna_study,
        "mlflow": _mlflow(tracking),
    }


def _trial(t: TrialSummary, metric: str, rank: int | None) -> dict[str, Any]:
    m = t.metrics
    numbers = {k: v for k, v in m.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return {
        "rank": rank,
        "trial_id": t.trial_id,
        "status": t.status,
        "metric": metric,
        "value": m.get(f"{metric}_raw", m.get(metric)),
        "step": m.get("step"),
        "params": t.params,
        "metrics": numbers,
        "checkpoint": t.checkpoint,
    }


def _mlflow(tracking: Any) -> dict[str, Any] | None:
    """Where the records are: the experiment, the (redacted) URI, the study's run, the
    champion (of all stages, for a staged study) and the report; None when nothing tracked."""
    trackers = getattr(tracking, "trackers", None) or []
    parent = getattr(tracking, "parent", None)
    where = parent if parent is not None else (trackers[-1] if trackers else None)
    if where is None:
        return None
    champion = getattr(parent, "champion", None) or (
        trackers[-1].state.get("champion") if trackers else None
    )
    if champion:
        champion = {"model_uri": f"models:/{champion['name']}@champion", **champion}
    return {
        "experiment": where.spec.experiment,
        "tracking_uri": where.redact(where.uri),
        "run_id": tracking.run_id,
        "champion": champion or None,
        "report": tracking.report_line or None,
    }
