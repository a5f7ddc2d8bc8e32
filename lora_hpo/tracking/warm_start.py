"""Warm start from earlier studies in the same MLflow store (``search.warm_start: true`` or
``lora-hpo run --warm-start``).

An earlier study matches when its study run has the same base model (``base_model`` and its
revision), metric and mode, and either

- the same dataset fingerprint and run length (``training.max_steps``): its results hold for
  this study, so its best completed configs that this space can express are handed to the
  searcher **with their results** (Optuna trials that are not run again); or
- the same task type (``lora_hpo.task_type``), on other data: its best configs' step size
  becomes the centre of the ``lora`` sampler's **prior**, and, for another sampler, its best
  configs are enqueued to run first.

Matches of the first kind win. The study's own experiment is never a source. What was used is
recorded on the study run (``lora_hpo.warm_start.*`` tags) and shown before the live view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from lora_hpo.spec.search_space import compile_space, derive
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.tracking.filter_strings import tags_equal
from lora_hpo.tracking.run_lineage import lineage_tags

TOP = 3  # earlier configs handed on
MAX_RUNS = 5000  # study runs read from the store (newest first)
COMPARED = ("r", "lora_alpha", "use_rslora", "learning_rate", "lora_dropout", "target_modules")


@dataclass(frozen=True)
class Earlier:
    """One completed trial of an earlier study."""

    experiment: str
    run_id: str
    point: dict[str, Any]  # its params in this study's space ({} when the space cannot hold it)
    value: float
    step_size: float


@dataclass(frozen=True)
class WarmStart:
    mode: Literal["results", "prior", "none"]
    trials: tuple[Earlier, ...] = ()
    error: str = ""  # why the store could not be read (then mode is none)

    @property
    def studies(self) -> list[str]:
        return sorted({t.experiment for t in self.trials})

    @property
    def step_size(self) -> float | None:
        """The geometric mean of the earlier best configs' step sizes."""
        steps = [t.step_size for t in self.trials if t.step_size > 0]
        return math.exp(sum(map(math.log, steps)) / len(steps)) if steps else None

    def tags(self) -> dict[str, str]:
        if self.mode == "none":
            return {"lora_hpo.warm_start": "error" if self.error else "none"}
        return {
            "lora_hpo.warm_start": self.mode,
            "lora_hpo.warm_start.studies": ",".join(self.studies),
            "lora_hpo.warm_start.runs": ",".join(t.run_id for t in self.trials),
            "lora_hpo.warm_start.step_size": f"{self.step_size:.4g}",
        }

    def lines(self, metric: str) -> list[str]:
        if self.error:
            return [f"warm start: the MLflow store could not be read ({self.error}); cold start"]
        if self.mode == "none":
            return ["warm start: no earlier study in this MLflow store matches this one"]
        how = {
            "results": "handed to the searcher with their results (not run again)",
            "prior": f"their step size ({self.step_size:.3g}) centres the prior",
        }[self.mode]
        head = f"warm start from {', '.join(self.studies)}: {len(self.trials)} config(s), {how}"
        rows = [
            f"  {t.experiment} run {t.run_id[:8]}: {metric}={t.value:.4g}, step size "
            f"{t.step_size:.3g}" + (f", {_short(t.point)}" if t.point else "")
            for t in self.trials
        ]
        return [head, *rows]


def _short(point: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items()
    )


def find_warm_start(spec: StudySpec, uri: str) -> WarmStart:
    """The earlier studies in the store at ``uri`` that match ``spec``, and their best trials."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    others = [e for e in client.search_experiments() if e.name != spec.experiment]
    if not others:
        return WarmStart("none")
    mine = lineage_tags(spec)
    same: dict[str, list[Any]] = {"results": [], "prior": []}
    ids = [e.experiment_id for e in others]
    for run in client.search_runs(ids, "tags.`lora_hpo.role` = 'study'", max_results=MAX_RUNS):
        kind = _match(spec, mine, run)
        if kind is not None:
            same[kind].append(run)
    names = {e.experiment_id: e.name for e in others}
    for mode in ("results", "prior"):
        trials = _best_trials(client, spec, same[mode], names, mode == "results")
        if trials:
            return WarmStart(mode, tuple(trials))  # type: ignore[arg-type]
    return WarmStart("none")


def _match(spec: StudySpec, mine: dict[str, str], run: Any) -> str | None:
    tags, params = run.data.tags, run.data.params
    same_model = all(tags.get(k) == mine[k] for k in ("base_model", "base_model_revision"))
    same_metric = (
        tags.get("lora_hpo.metric") == spec.metric and tags.get("lora_hpo.mode") == spec.mode
    )
    if not (same_model and same_metric):
        return None
    same_steps = params.get("training.max_steps") == str(spec.training.max_steps)
    if tags.get("dataset_fingerprint") == mine["dataset_fingerprint"] and same_steps:
        return "results"
    if spec.task_type is not None and tags.get("lora_hpo.task_type") == spec.task_type:
        return "prior"
    return None


def _best_trials(
    client: Any, spec: StudySpec, studies: list[Any], names: dict[str, str], exact: bool
) -> list[Earlier]:
    found: list[Earlier] = []
    for study in studies:
        where = tags_equal({"mlflow.parentRunId": study.info.run_id, "status": "completed"})
        for run in client.search_runs([study.info.experiment_id], where, max_results=MAX_RUNS):
            value = run.data.metrics.get(spec.metric)
            step = _float(run.data.params.get("step_size"))
            if value is None or not math.isfinite(value) or step is None:
                continue
            point = in_space(spec, run.data.params)
            if exact and point is None:
                continue  # this space cannot hold the config: its result says nothing here
            name = names.get(study.info.experiment_id, study.info.experiment_id)
            found.append(Earlier(name, run.info.run_id, point or {}, float(value), step))
    found.sort(key=lambda t: -t.value if spec.mode == "max" else t.value)
    return found[:TOP]


def in_space(spec: StudySpec, params: dict[str, str]) -> dict[str, Any] | None:
    """An earlier trial's logged params as a point of this study's space: every searched
    param within its distribution, and the config it derives the earlier one (fixed params
    included); None when the space cannot express it."""
    point: dict[str, Any] = {}
    for name, dist in compile_space(spec.space).items():
        value = _value(dist, params.get(name))
        if value is None:
            return None
        point[name] = value
    try:
        derived = derive(spec.space, point).as_dict()
    except (KeyError, TypeError, ValueError):
        return None
    return point if all(_same(derived.get(k), params.get(k)) for k in COMPARED) else None


def _value(dist: Any, raw: str | None) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if raw is None:
        return None
    if isinstance(dist, CategoricalDistribution):
        return next((c for c in dist.choices if str(c) == raw), None)
    number = _float(raw)
    if number is None:
        return None
    value = int(number) if isinstance(dist, IntDistribution) else number
    return value if dist._contains(dist.to_internal_repr(value)) else None


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _same(ours: Any, theirs: str | None) -> bool:
    if theirs is None:
        return False
    if isinstance(ours, bool) or not isinstance(ours, (int, float)):
        return str(ours) == theirs
    other = _float(theirs)
    return other is not None and math.isclose(float(ours), other, rel_tol=1e-6)
