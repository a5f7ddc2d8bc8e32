"""Best configs and adapters, read from MLflow (the system of record, not Ray's files):
``lora-hpo best`` / ``lora-hpo export`` and the notebook API ``best_configs`` /
``export_adapter``. ``models:/NAME@champion`` names the same adapter as ``export --rank 1``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from lora_hpo.analysis.export_bundle import complete, lineage_of
from lora_hpo.analysis.trial_runs import (
    client_for,
    experiment_id,
    ranked_trial_runs,
    study_metric,
    typed,
)
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.tracking.mlflow_store import ADAPTER_DIR, ADAPTER_TAG, resolve_tracking_uri


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
        "lineage": lineage_of(tags),
    }


def best_configs(
    experiment: str, top: int = 5, metric: str | None = None, tracking_uri: str | None = None
) -> list[dict[str, Any]]:
    """The ``top`` trial runs of a study's experiment, best first by the study metric (or
    ``metric``): each with ``run_id``, ``metrics``, typed ``params``, ``status``, ``adapter``."""
    if top < 1:
        raise UsageError(f"--top: must be >= 1, but got {top}")
    client, uri = client_for(tracking_uri)
    exp_id = experiment_id(client, experiment, uri)
    name, mode = study_metric(client, exp_id, metric, experiment)
    runs, total = ranked_trial_runs(client, exp_id, name, mode)
    if not runs:
        raise UsageError(
            f"--experiment: {experiment!r} at {uri} has no ranked trial run with metric"
            f" {name!r} (completed or stopped early, not diverged; {total} trial run(s) in all)"
        )
    return [_entry(i, run, name) for i, run in enumerate(runs[:top], 1)]


def _entry_to_export(experiment: str, rank: int, tracking_uri: str | None) -> dict[str, Any]:
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
    return entry


def _destination(out: str | Path) -> Path:
    dest = Path(out).expanduser().resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"--out: {str(dest)!r} exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest


def export_adapter(
    experiment: str, out: str | Path, rank: int = 1, tracking_uri: str | None = None
) -> Path:
    """Write the rank-``rank`` adapter's bundle to ``out``: the adapter
    (``PeftModel.from_pretrained(base, out)`` loads it), the tokenizer, ``labels.json``, the
    spec, the export record and a model card (see ``export_bundle.py``). Built beside ``out`` and
    renamed into place, so a failed export leaves nothing half-written."""
    import mlflow

    entry = _entry_to_export(experiment, rank, tracking_uri)
    dest = _destination(out)
    uri = resolve_tracking_uri(tracking_uri)[0]
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".lora-hpo-export-") as tmp:
        got = Path(
            mlflow.artifacts.download_artifacts(
                run_id=entry["run_id"], artifact_path=ADAPTER_DIR, dst_path=tmp, tracking_uri=uri
            )
        )
        keys = ("run_id", "trial_id", "status", "metric", "value", "params", "lineage")
        about = {k: entry[k] for k in keys} | {"experiment": experiment, "rank": rank}
        complete(got, about | {"metrics": entry["metrics"]})
        if dest.exists():
            dest.rmdir()
        os.replace(got, dest)
    return dest
