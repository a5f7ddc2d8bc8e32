"""The study kept as an Optuna study: ``optuna.db`` (SQLite) in the study directory, so that
``optuna.load_study(study_name=NAME, storage="sqlite:///DIR/optuna.db")`` and
``optuna-dashboard sqlite:///DIR/optuna.db`` open it.

It is written whole from Tune's results each time a run of the study ends (``run``, and each
``resume``), so a resumed study's file holds every trial once, with its latest state: the
searcher's own Optuna study lives in Tune's experiment state, which is what ``resume``
restores. Tune's outcomes map to Optuna's states: completed is COMPLETE, stopped early (ASHA,
the curve stopper) is PRUNED, diverged or failed is FAIL. Each trial keeps its learning curve
as intermediate values, and its Tune trial id, status and resolved config as user attrs.
A study on a URI (``s3://...``) has the file written locally, then uploaded beside it."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.search.study_result import StudyResult, TrialSummary
from lora_hpo.spec.search_space import compile_space

OPTUNA_DB = "optuna.db"


def optuna_url(directory: str) -> str:
    """The storage URL of the kept study of a local study directory."""
    return f"sqlite:///{Path(directory).resolve() / OPTUNA_DB}"


def keep_optuna_study(result: StudyResult) -> str | None:
    """Write the study's ``optuna.db``; where it is (a path or URI), or None for a study with
    nothing searched (Tune's generator ran it, and Optuna has no space to show)."""
    distributions = compile_space(result.spec.space)
    if not distributions or not result.trials:
        return None
    if "://" not in result.path:
        Path(result.path).mkdir(parents=True, exist_ok=True)
        return str(_write(result, distributions, Path(result.path) / OPTUNA_DB))
    from lora_hpo.files.storage_filesystem import storage_filesystem

    with Scratch("optuna") as tmp:
        local = _write(result, distributions, Path(tmp) / OPTUNA_DB)
        filesystem, where = storage_filesystem(f"{result.path.rstrip('/')}/{OPTUNA_DB}")
        with filesystem.open_output_stream(where) as out:
            out.write(local.read_bytes())
    return f"{result.path.rstrip('/')}/{OPTUNA_DB}"


def _write(result: StudyResult, distributions: dict[str, Any], path: Path) -> Path:
    """The file at ``path``, built beside it and renamed into place."""
    import optuna

    spec = result.spec
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staged.unlink(missing_ok=True)
    try:
        study = optuna.create_study(
            study_name=spec.name,
            storage=f"sqlite:///{staged}",
            direction="maximize" if spec.mode == "max" else "minimize",
        )
        study.set_metric_names([spec.metric])
        study.set_user_attr("lora_hpo.study_dir", result.path)
        trials = [_trial(spec.metric, t, distributions) for t in result.trials]
        study.add_trials([t for t in trials if t is not None])
        staged.replace(path)
    finally:
        staged.unlink(missing_ok=True)
    return path


def _trial(metric: str, trial: TrialSummary, distributions: dict[str, Any]) -> Any:
    """The Optuna trial of a Tune trial; None for one still pending or running."""
    from optuna.trial import TrialState, create_trial

    states = {
        "completed": TrialState.COMPLETE,
        "stopped_early": TrialState.PRUNED,
        "diverged": TrialState.FAIL,
        "failed": TrialState.FAIL,
    }
    state = states.get(trial.status)
    if state is None:
        return None
    value: Any = trial.metrics.get(f"{metric}_raw", trial.metrics.get(metric))
    if state == TrialState.COMPLETE and not _finite(value):
        state = TrialState.FAIL  # Optuna takes no COMPLETE trial without a value
    return create_trial(
        state=state,
        value=float(value) if state == TrialState.COMPLETE else None,
        params={k: trial.config[k] for k in distributions if k in trial.config},
        distributions={k: d for k, d in distributions.items() if k in trial.config},
        intermediate_values={step: v for step, v in trial.curve},
        user_attrs={"trial_id": trial.trial_id, "status": trial.status, "config": trial.params},
    )


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
