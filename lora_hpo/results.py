"""Best configs and adapters, read from MLflow (the system of record, not Ray's files):
``lora-hpo best`` / ``lora-hpo export`` and the notebook API ``best_configs`` /
``export_adapter``. ``models:/NAME@champion`` names the same adapter as ``export --rank 1``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lora_hpo.errors import UsageError
from lora_hpo.mlflow_store import (
    ADAPTER_DIR,
    ADAPTER_TAG,
    configure_client_env,
    resolve_tracking_uri,
)
from lora_hpo.spec import METRIC_MODES
from lora_hpo.table import format_table

TRIALS = "tags.`lora_hpo.role` = 'trial' and tags.`status` != 'failed'"


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


def _client(tracking_uri: str | None) -> tuple[Any, str]:
    from mlflow import MlflowClient

    configure_client_env()
    uri, _ = resolve_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri), uri


def _experiment_id(client: Any, experiment: str, uri: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage == "deleted":
        raise UsageError(f"--experiment: no MLflow experiment {experiment!r} at {uri}")
    return str(found.experiment_id)


def study_metric(
    client: Any, experiment_id: str, metric: str | None, experiment: str = ""
) -> tuple[str, str]:
    """(metric, mode): the study's own, from its latest study run, unless ``metric`` is given."""
    studies = client.search_runs(
        [experiment_id],
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


def _entry(rank: int, run: Any, metric: str) -> dict[str, Any]:
    tags = run.data.tags
    return {
        "rank": rank,
        "run_id": run.info.run_id,
        "trial_id": tags.get("lora_hpo.trial_id"),
        "status": tags.get("status"),
        "metric": metric,
        "value": run.data.metrics[metric],
        "metrics": dict(run.data.metrics),
        "params": {k: typed(v) for k, v in run.data.params.items()},
        "adapter": ADAPTER_TAG in tags,
    }


def best_configs(
    experiment: str, top: int = 5, metric: str | None = None, tracking_uri: str | None = None
) -> list[dict[str, Any]]:
    """The ``top`` trial runs of a study's experiment, best first by the study metric (or
    ``metric``): each with ``run_id``, ``metrics``, typed ``params``, ``status``, ``adapter``."""
    if top < 1:
        raise UsageError(f"--top: must be >= 1, but got {top}")
    client, uri = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment, uri)
    name, mode = study_metric(client, experiment_id, metric, experiment)
    order = f"metrics.`{name}` {'DESC' if mode == 'max' else 'ASC'}"
    runs = client.search_runs([experiment_id], TRIALS, order_by=[order], max_results=1000)
    scored = [r for r in runs if name in r.data.metrics]
    if not scored:
        raise UsageError(
            f"--experiment: {experiment!r} at {uri} has no trial run with metric {name!r}"
            f" ({len(runs)} trial run(s) in all)"
        )
    return [_entry(i, run, name) for i, run in enumerate(scored[:top], 1)]


def format_best(entries: list[dict[str, Any]]) -> str:
    metric = entries[0]["metric"] if entries else "metric"
    header = ["rank", metric, "r", "alpha", "rsLoRA", "lr", "scale", "status", "adapter", "run"]
    rows = []
    for e in entries:
        p = e["params"]
        rows.append(
            [
                e["rank"],
                f"{e['value']:.4f}",
                p.get("r", "-"),
                f"{p.get('lora_alpha', float('nan')):.3g}",
                "yes" if p.get("use_rslora") else "no",
                f"{p.get('learning_rate', float('nan')):.2e}",
                f"{p.get('effective_scale', float('nan')):.3g}",
                e["status"],
                "yes" if e["adapter"] else "no",
                e["run_id"],
            ]
        )
    return format_table(header, rows)


def export_adapter(
    experiment: str, out: str | Path, rank: int = 1, tracking_uri: str | None = None
) -> Path:
    """Write the rank-``rank`` adapter to ``out`` (``PeftModel.from_pretrained(base, out)``
    loads it), with ``lora_hpo_spec.yaml`` and ``params.json`` beside it."""
    import mlflow

    if rank < 1:
        raise UsageError(f"--rank: must be >= 1, but got {rank}")
    entries = best_configs(experiment, top=rank, tracking_uri=tracking_uri)
    if len(entries) < rank:
        raise UsageError(
            f"--rank: experiment {experiment!r} has {len(entries)} ranked trial run(s),"
            f" so there is no rank {rank}"
        )
    entry = entries[rank - 1]
    if not entry["adapter"]:
        raise UsageError(
            f"--rank: run {entry['run_id']} (trial {entry['trial_id']}, rank {rank}) has no"
            " adapter artifact (see tracking.log_adapters); pick another --rank"
        )
    dest = Path(out).expanduser().resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"--out: {str(dest)!r} exists and is not an empty directory")
    dest.mkdir(parents=True, exist_ok=True)
    uri = resolve_tracking_uri(tracking_uri)[0]
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".lora-hpo-export-") as tmp:
        got = mlflow.artifacts.download_artifacts(
            run_id=entry["run_id"], artifact_path=ADAPTER_DIR, dst_path=tmp, tracking_uri=uri
        )
        for path in Path(got).iterdir():
            shutil.move(str(path), dest / path.name)
    about = {k: entry[k] for k in ("run_id", "trial_id", "status", "metric", "value", "params")}
    about |= {"experiment": experiment, "rank": rank, "metrics": entry["metrics"]}
    (dest / "params.json").write_text(json.dumps(about, indent=2, sort_keys=True) + "\n")
    return dest
