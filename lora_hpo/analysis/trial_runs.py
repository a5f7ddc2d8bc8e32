"""Reading a study back from MLflow: the client, the experiment, the study's own metric and
mode (from its study run), and its trial runs ranked by the shared rule."""

from __future__ import annotations

from typing import Any

from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_schema import METRIC_MODES
from lora_hpo.spec.trial_outcome import ranked
from lora_hpo.tracking.mlflow_store import configure_client_env, resolve_tracking_uri

TRIAL_RUNS = "tags.`lora_hpo.role` = 'trial'"


def typed(value: str) -> Any:
    """An MLflow param string back as the bool, int or float it was logged from."""
    if value in ("True", "False"):
        return value == "True"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def client_for(tracking_uri: str | None) -> tuple[Any, str]:
    from mlflow import MlflowClient

    configure_client_env()
    uri, _ = resolve_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri), uri


def experiment_id(client: Any, experiment: str, uri: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage == "deleted":
        raise UsageError(f"--experiment: no MLflow experiment {experiment!r} at {uri}")
    return str(found.experiment_id)


def study_metric(
    client: Any, exp_id: str, metric: str | None, experiment: str = ""
) -> tuple[str, str]:
    """(metric, mode): the study's own, from its latest study run, unless ``metric`` is given."""
    studies = client.search_runs(
        [exp_id],
        "tags.`lora_hpo.role` = 'study'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    tags = studies[0].data.tags if studies else {}
    own = tags.get("lora_hpo.metric")
    name = metric or own
    if not name:
        raise UsageError(
            f"--experiment: {experiment!r} holds no lora-hpo study run naming its metric"
            " (give --metric to rank its runs anyway)"
        )
    mode = tags.get("lora_hpo.mode", "min") if name == own else METRIC_MODES.get(name, "min")
    return name, mode


def trial_runs(client: Any, exp_id: str) -> list[Any]:
    """Every trial run of the experiment (all pages)."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([exp_id], TRIAL_RUNS, max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def ranked_trial_runs(client: Any, exp_id: str, metric: str, mode: str) -> tuple[list[Any], int]:
    """(the trial runs that rank, best first; how many trial runs there are in all)."""
    runs = trial_runs(client, exp_id)

    def describe(run: Any) -> tuple[str, str, Any]:
        tags = run.data.tags
        return (
            tags.get("lora_hpo.trial_id", run.info.run_id),
            tags.get("status", ""),
            run.data.metrics.get(metric),
        )

    return ranked(runs, describe, mode), len(runs)
