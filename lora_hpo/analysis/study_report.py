"""``lora-hpo report``: the pictures of a study (``tracking.study_plots``), drawn from its MLflow
record: every trial run's params, status and learning curve."""

from __future__ import annotations

from pathlib import Path

from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.tracking.study_plots import Trial, draw_report


def load_trials(experiment: str, tracking_uri: str | None) -> tuple[str, str, list[Trial]]:
    """(metric, mode, trials) from the study's MLflow experiment."""
    from lora_hpo.analysis.trial_runs import (
        client_for,
        experiment_id,
        study_metric,
        trial_runs,
        typed,
    )

    client, uri = client_for(tracking_uri)
    exp_id = experiment_id(client, experiment, uri)
    metric, mode = study_metric(client, exp_id, None)
    runs = trial_runs(client, exp_id)
    trials = []
    for run in runs:
        if metric not in run.data.metrics:
            continue
        history = client.get_metric_history(run.info.run_id, metric)
        curve = sorted((int(m.step), float(m.value)) for m in history)
        params = {k: typed(v) for k, v in run.data.params.items()}
        status = run.data.tags.get("status", "completed")
        trials.append(Trial(run.info.run_id, status, params, run.data.metrics[metric], curve))
    if not trials:
        raise UsageError(f"--experiment: {experiment!r} has no trial run with {metric!r}")
    return metric, mode, trials


def build_report(experiment: str, out: Path, tracking_uri: str | None = None) -> list[Path]:
    """Draw every picture for ``experiment`` into ``out`` plus ``index.html``; return the files."""
    metric, mode, trials = load_trials(experiment, tracking_uri)
    return draw_report(experiment, trials, metric, mode, out)
