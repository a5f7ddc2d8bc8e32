"""The champion's registered version: an MLflow model (MLflow 3's LoggedModel, linked to the
champion trial's run as its output, so the run's Model column and ``models:/NAME@champion``
name it) when the tracker was given a ``ModelFolder``, else the run's bare ``adapter/`` folder.

The folder is made by the caller (the CLI passes ``lora_hpo.analysis.champion_model``'s): the
tracking layer only stages the checkpoint, uploads what it is given and checks the adapter
files that arrive against the checkpoint's sha256s before the alias moves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.tracking.filter_strings import equals

ModelFolder = Callable[[Path, Path, dict[str, Any]], None]
"""``make(staged, out, run)``: write the MLflow model (an ``MLmodel`` folder) of the ``staged``
checkpoint folder (adapter files, spec, trial record) to the new folder ``out``; ``run`` is the
champion trial's run: ``run_id``, ``experiment``, ``params``, ``metrics``, ``tags``."""

MODEL_NAME = "model"  # the logged model's name, as the run's Model column shows it
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin", "adapter_config.json")
LINEAGE = ("base_model", "base_model_revision", "dataset", "dataset_fingerprint", "status")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def adapter_hashes(root: Path) -> dict[str, str]:
    """The sha256s of the folder under ``root`` that holds the adapter (``root`` itself for a
    bare adapter folder, ``artifacts/bundle`` inside an MLflow model); {} when none does."""
    found = [p.parent for name in ADAPTER_FILES for p in sorted(root.rglob(name))]
    if not found:
        return {}
    folder = min(found, key=lambda p: len(p.parts))
    return {p.name: sha256(p) for p in folder.iterdir() if p.is_file()}


def check(where: str, actual: dict[str, str], expected: dict[str, str]) -> None:
    """Every staged file arrived with its sha256, and no adapter file the checkpoint lacks."""
    names = expected.keys() | {n for n in actual if n in ADAPTER_FILES}
    wrong = sorted(n for n in names if expected.get(n) != actual.get(n))
    if wrong:
        raise ValueError(f"{where}: uploaded files differ from the checkpoint: {wrong}")


def logged_model(
    client: Any, run_id: str, staged: Path, make: ModelFolder, about: dict[str, Any]
) -> str:
    """The champion run's logged model (made, uploaded and marked READY once; a retry after a
    crash finds it); its ``models:/<model_id>`` URI."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    run = client.get_run(run_id)
    experiment_id = run.info.experiment_id
    where = f"{equals('source_run_id', run_id)} AND {equals('name', MODEL_NAME)}"
    found = client.search_logged_models([experiment_id], filter_string=where)
    ready = [m for m in found if m.status == LoggedModelStatus.READY]
    if ready:
        return f"models:/{ready[0].model_id}"
    params, run_tags = dict(run.data.params), dict(run.data.tags)
    info = {"run_id": run_id, "params": params, "metrics": dict(run.data.metrics)}
    info |= {"tags": run_tags, **about}
    tags = {k: v for k, v in run_tags.items() if k in LINEAGE or k.startswith("lora_hpo.")}
    # the logged model's page shows the trial's config and lineage too
    model = client.create_logged_model(experiment_id, MODEL_NAME, run_id, tags, params, "peft-lora")
    with Scratch("model") as tmp:
        out = Path(tmp) / MODEL_NAME
        try:
            make(staged, out, info)
        except Exception as exc:  # the maker's fault (a tokenizer, pyfunc): no outage to wait on
            client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
            what = f"{type(exc).__name__}: {exc}"
            raise ValueError(f"could not make the champion's MLflow model: {what}") from exc
        meta = Model.load(str(out))  # MLflow 3 records which logged model a folder is
        meta.model_id, meta.model_uuid, meta.run_id = model.model_id, model.model_id, run_id
        meta.artifact_path = model.artifact_location
        meta.save(str(out / "MLmodel"))
        client.log_model_artifacts(model.model_id, str(out))
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return f"models:/{model.model_id}"


def find_version(client: Any, name: str, run_id: str) -> str | None:
    """The version of ``name`` already registered from ``run_id`` (a repeated record)."""
    mine = client.search_model_versions(f"{equals('name', name)} and {equals('run_id', run_id)}")
    return str(mine[0].version) if mine else None
