"""What a finished (or stopped) study returns: its trials with their status, params and last
report, ranked by the shared rule (``spec.trial_outcome.ranked``), the best one, and counts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_hpo.search.trial_failures import ERROR_FILE, Failure, signature, summarize_failures
from lora_hpo.spec.search_space import derive
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.spec.trial_outcome import ranked, trial_status
from lora_hpo.tracking.mlflow_store import fs_ref


@dataclass
class TrialSummary:
    trial_id: str
    status: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    checkpoint: str | None  # its newest checkpoint: a local path, or a URI (s3://...)
    step_time_s: float = 0.0
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, the study metric)
    config: dict[str, Any] = field(default_factory=dict)  # what the searcher sampled


@dataclass
class StudyResult:
    spec: StudySpec
    path: str  # the study directory (local path or URI)
    trials: list[TrialSummary]  # the ranked trials first, best first; then the rest
    wall_s: float
    best: TrialSummary | None = None
    counts: dict[str, int] = field(default_factory=dict)
    decision: str = ""  # multi-stage strategies: why the last stage ran as it did
    failures: list[Failure] = field(default_factory=list)  # distinct failures, most frequent first
    stopped: str = ""  # why the study stopped early (its first attempts all failed alike)
    earlier: list[TrialSummary] = field(default_factory=list)  # earlier stages' trials
    optuna_study: str | None = None  # the kept Optuna study's file (``optuna_export``)


def rank_trials(spec: StudySpec, trials: list[TrialSummary]) -> list[TrialSummary]:
    """The trials that rank under the shared rule, best first."""
    return ranked(trials, lambda t: (t.trial_id, t.status, t.metrics.get(spec.metric)), spec.mode)


def learning_curve(frame: Any, column: str) -> list[tuple[int, float]]:
    """(step, value) of every report that holds a finite ``column``, from a trial's results
    (Tune's ``metrics_dataframe``; None when Tune has none)."""
    if frame is None or column not in frame or "step" not in frame:
        return []
    points = zip(frame["step"].tolist(), frame[column].tolist(), strict=True)
    return [
        (int(step), float(v)) for step, v in points if isinstance(v, float) and math.isfinite(v)
    ]


def summarize(spec: StudySpec, results: Any, path: str, wall_s: float) -> StudyResult:
    """A StudyResult from Tune's ResultGrid."""
    trials, errors = [], []
    for r in results:
        if r.error:
            errors.append((signature(r.error), f"{r.path}/{ERROR_FILE}"))
        last = dict(r.metrics or {})
        status = trial_status("ERROR" if r.error else "TERMINATED", last, spec.training.max_steps)
        trial_id = str(last.get("trial_id") or Path(r.path).name)
        checkpoint = fs_ref(r.checkpoint.filesystem, r.checkpoint.path) if r.checkpoint else None
        params = derive(spec.space, r.config).as_dict()
        step_time = float(last.get("step_time_s", 0))
        curve = learning_curve(r.metrics_dataframe, f"{spec.metric}_raw")
        trials.append(
            TrialSummary(
                trial_id, status, params, last, checkpoint, step_time, curve, dict(r.config)
            )
        )
    best = rank_trials(spec, trials)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    rest = [t for t in trials if t not in best]
    top = best[0] if best else None
    return StudyResult(
        spec, path, best + rest, wall_s, top, counts, failures=summarize_failures(errors)
    )
