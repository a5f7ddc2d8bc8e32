"""The MLflow side of tracking: where the store is, and the idempotent writes the tracker's
outbox sends (get-or-create runs, batches of params/metrics/tags, adapters, the champion).

Every write here may be repeated after a crash or an outage without creating a duplicate:
runs are found by their natural key (a tag) before one is created, metrics keep the
timestamp they were queued with (MLflow drops exact repeats), artifacts overwrite.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from lora_hpo.files.file_names import SPEC_FILE, TRIAL_FILE
from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.tracking.champion_version import (
    ADAPTER_FILES,
    ModelFolder,
    adapter_hashes,
    check,
    find_version,
    logged_model,
    sha256,
)
from lora_hpo.tracking.filter_strings import tags_equal

ALIAS = "champion"
ADAPTER_DIR = "adapter"  # the artifact folder of a trial run holding its adapter
ADAPTER_TAG = "lora_hpo.adapter"  # set on a trial run once its adapter is logged
SPEC_NAME = SPEC_FILE
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}  # the UI opens on runs
CLIENT_ENV = {  # a callback must never wait minutes on a dead server
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
_RETRY_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


def configure_client_env() -> None:
    """Short MLflow HTTP retries/timeouts and no URL printing, unless the user set them."""
    for key, value in CLIENT_ENV.items():
        os.environ.setdefault(key, value)


def resolve_tracking_uri(flag: str | None, spec_uri: str | None = None) -> tuple[str, str | None]:
    """(tracking URI, artifact location for new experiments): ``--tracking-uri``, else the
    spec's ``tracking.tracking_uri``, else MLFLOW_TRACKING_URI, else ``sqlite:///<cwd>/mlflow.db``
    with artifacts in ``<cwd>/mlartifacts`` (so ``mlflow ui`` run there shows everything)."""
    uri = flag or spec_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, None
    cwd = Path.cwd().resolve()
    return f"sqlite:///{cwd / 'mlflow.db'}", (cwd / "mlartifacts").as_uri()


def ui_link(uri: str, experiment_id: str | None) -> str:
    """Where to look: an HTTP tracking server's page of the experiment's runs (the UI's own
    default is its GenAI overview, a browser setting that ``workflowType`` overrides), or
    the URI as given."""
    from urllib.parse import urlsplit

    if experiment_id is None or not uri.startswith(("http://", "https://")):
        return uri
    parts = urlsplit(uri)
    host = parts.netloc.rsplit("@", 1)[-1]  # a browser asks for its own credentials
    page = f"#/experiments/{experiment_id}?workflowType=machine_learning"
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}/{page}"


def classify(exc: BaseException) -> str:
    """``down`` (the server cannot be reached, or answers 5xx: wait for it), ``retry`` (another
    MLflow error: try a few times) or ``reject`` (the record itself is bad: drop it)."""
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(exc, (FileNotFoundError, UsageError, ValueError, TypeError, KeyError)):
        return "reject"
    if isinstance(exc, RestException):  # an answer with a JSON error body
        # 5xx (and 429) is the server's trouble, not the record's: wait for it like an outage,
        # never drop the record. (MLflow's client turns most 5xx into "API request to ...
        # failed" after its own retries; a JSON 5xx outside its retry list, e.g. 507, is this.)
        server_side = exc.error_code in _RETRY_CODES or exc.get_http_status_code() >= 500
        return "down" if server_side else "reject"
    if isinstance(exc, MlflowException):
        return "down" if str(exc).startswith("API request to") else "retry"
    return "down" if isinstance(exc, (OSError, ConnectionError, TimeoutError)) else "reject"


def stage_adapter(checkpoint: str, spec_text: str, dst: Path) -> dict[str, str]:
    """Copy the adapter files (not optimizer state) of a checkpoint and the spec into ``dst``;
    return each file's sha256. ``checkpoint`` is a local path or a URI (s3://...)."""
    with Scratch("ckpt") as tmp:
        src = Path(checkpoint)
        if "://" in checkpoint:
            from ray.tune import Checkpoint

            src = Path(Checkpoint(checkpoint).to_directory(tmp))
        if not src.is_dir():
            raise FileNotFoundError(f"checkpoint {checkpoint!r} no longer exists")
        for name in (*ADAPTER_FILES, TRIAL_FILE):
            if (src / name).is_file():
                shutil.copy2(src / name, dst / name)
    if not any((dst / n).is_file() for n in ADAPTER_FILES):
        raise FileNotFoundError(f"checkpoint {checkpoint!r} holds no adapter_model file")
    (dst / SPEC_NAME).write_text(spec_text)
    return {p.name: sha256(p) for p in sorted(dst.iterdir())}


def fs_ref(filesystem: Any, path: str) -> str:
    """A local path, or a URI for a remote pyarrow filesystem (s3://bucket/...)."""
    from pyarrow.fs import LocalFileSystem

    return path if isinstance(filesystem, LocalFileSystem) else f"{filesystem.type_name}://{path}"


class Store:
    """One MlflowClient, used by one thread (the outbox's sender): the single writer."""

    def __init__(self, uri: str, artifact_location: str | None = None) -> None:
        from mlflow import MlflowClient

        configure_client_env()
        self.uri, self.artifact_location = uri, artifact_location
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            return str(found.experiment_id)
        where = self.artifact_location
        return str(self.client.create_experiment(name, where, tags=EXPERIMENT_KIND))

    def _tagged(self, experiment_id: str, match: dict[str, str]) -> list[Any]:
        """Active runs whose tags hold every ``match`` value."""
        where = tags_equal(match)
        return list(self.client.search_runs([experiment_id], where, max_results=50_000))

    def find_runs(self, experiment_id: str, match: dict[str, str]) -> list[str]:
        """The ids of the active runs whose tags hold every ``match`` value."""
        return [str(r.info.run_id) for r in self._tagged(experiment_id, match)]

    def trial_runs(self, experiment_id: str, match: dict[str, str]) -> dict[str, str]:
        """The active runs whose tags hold every ``match`` value: run id -> trial id tag."""
        runs = self._tagged(experiment_id, match)
        return {str(r.info.run_id): r.data.tags.get("lora_hpo.trial_id", "") for r in runs}

    def get_or_create_run(
        self, experiment_id: str, match: dict[str, str], name: str, tags: dict[str, str]
    ) -> str:
        """The active run whose tags hold every ``match`` value, else a new one with them."""
        found = self.find_runs(experiment_id, match)
        if found:
            return found[0]
        run = self.client.create_run(experiment_id, tags={**match, **tags}, run_name=name)
        return str(run.info.run_id)

    def log(self, run_id: str, record: dict[str, Any]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        ts, step = int(record.get("ts", 0)), int(record.get("step", 0))
        metrics = [Metric(k, float(v), ts, step) for k, v in record.get("metrics", {}).items()]
        params = [Param(k, str(v)) for k, v in record.get("params", {}).items()]
        tags = [RunTag(k, str(v)) for k, v in record.get("tags", {}).items()]
        if metrics or params or tags:
            self.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)

    def set_status(self, run_id: str, status: str) -> None:
        """RUNNING (reopen on resume) or a terminal status: FINISHED, FAILED, KILLED."""
        if status == "RUNNING":
            if self.client.get_run(run_id).info.status != "RUNNING":
                self.client.update_run(run_id, status="RUNNING")
        else:
            self.client.set_terminated(run_id, status)

    def log_dataset(self, run_id: str, dataset: dict[str, str] | None) -> None:
        """``dataset`` (``run_lineage.dataset_input``) as the run's training input; MLflow
        keeps one link per (dataset, run), so a repeat adds nothing."""
        if not dataset:
            return
        from mlflow.entities import Dataset, DatasetInput, InputTag

        tags = [InputTag("mlflow.data.context", "training")]
        self.client.log_inputs(run_id, datasets=[DatasetInput(Dataset(**dataset), tags)])

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.client.log_text(run_id, text, name)

    def log_adapter(self, run_id: str, checkpoint: str, spec_text: str) -> dict[str, str]:
        with Scratch("adapter") as tmp:
            hashes = stage_adapter(checkpoint, spec_text, Path(tmp))
            self.client.log_artifacts(run_id, tmp, ADAPTER_DIR)
        return hashes

    def register(
        self,
        name: str,
        run_id: str,
        expected: dict[str, str],
        tags: dict[str, str],
        model: tuple[Path, ModelFolder, dict[str, Any]] | None = None,
    ) -> str:
        """Register the run's champion and move the ``champion`` alias to it, only once the
        registered adapter files download with the expected sha256s. ``model``: (the staged
        checkpoint, the ``ModelFolder`` that makes its MLflow model, what else the model's
        card says); without it, the run's bare ``adapter/`` folder is registered."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            found = self.client.create_registered_model(name)
        current = found.aliases.get(ALIAS)
        if current and self.client.get_model_version(name, current).run_id == run_id:
            return str(current)
        version = find_version(self.client, name, run_id)
        if version is None:
            source = f"runs:/{run_id}/{ADAPTER_DIR}"
            if model is not None:
                source = logged_model(self.client, run_id, *model)
            model_id = source.removeprefix("models:/") if model is not None else None
            made = self.client.create_model_version(
                name, source, run_id, tags, await_creation_for=0, model_id=model_id
            )
            version = str(made.version)
        self.verify(name, version, expected)
        self.client.set_registered_model_alias(name, ALIAS, version)
        return version

    def verify(self, name: str, version: str, expected: dict[str, str]) -> None:
        """The registered version's adapter files download with the expected sha256s.
        (Resolved through this client: MLflow's ``models:/`` download reads the global URI.)"""
        import mlflow

        source = self.client.get_model_version_download_uri(name, version)
        with Scratch("verify") as tmp:
            got = mlflow.artifacts.download_artifacts(source, dst_path=tmp, tracking_uri=self.uri)
            actual = adapter_hashes(Path(got))
        check(f"models:/{name}/{version}", actual, expected)

    def delete(self, run_id: str) -> None:
        self.client.set_tag(run_id, "lora_hpo.lost", "true")
        self.client.delete_run(run_id)
