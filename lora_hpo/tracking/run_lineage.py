"""What tracked runs record, computed cheaply on the driver: lineage (base model id and
revision or a content hash, a dataset fingerprint, library versions), the study run's search
settings, a report's curves, and the redaction net that keeps secrets out of MLflow.

No torch, ray or mlflow import: versions come from package metadata, hashes from file bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from lora_hpo.files.content_hash import files_hash, folder_hash
from lora_hpo.spec.spec_schema import StudySpec

LIBRARIES = ("peft", "transformers", "torch", "ray", "mlflow", "lora-hpo")
CURVES = ("train_loss", "adapter_norm_mean", "adapter_norm_max", "adapter_norm_rel_max")
_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH|COOKIE|SESSION_?KEY",
    re.IGNORECASE,
)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not-installed"


def version_tags() -> dict[str, str]:
    """``lora_hpo.version.<package>`` for the libraries a result depends on."""
    return {f"lora_hpo.version.{p}": version_of(p) for p in LIBRARIES}


def base_model_tags(spec: StudySpec) -> dict[str, str]:
    """``base_model`` (demo name, hub id or path) and ``base_model_revision``: the pinned hub
    revision, the demo package's version, or a content hash of a local model directory."""
    m = spec.model
    if m.demo is not None:
        from lora_hpo.spec.registries import DEMO_MODELS

        package = DEMO_MODELS[m.demo].package if m.demo in DEMO_MODELS else m.demo
        return {"base_model": f"demo:{m.demo}", "base_model_revision": version_of(package)}
    if m.hub is not None:
        return {"base_model": m.hub, "base_model_revision": m.revision or "unpinned"}
    path = Path(str(m.path))
    revision = folder_hash(path) if path.is_dir() else "missing"
    return {"base_model": str(path), "base_model_revision": f"sha256:{revision}"}


def data_fingerprint(spec: StudySpec) -> str:
    """A hash of how the data is selected and processed, and of the local files' bytes."""
    d = spec.data
    blob = json.dumps(
        [dataclasses.asdict(d), spec.task, spec.training.seed, base_model_tags(spec)],
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(blob.encode())
    if d.files:
        present = [Path(f) for f in d.all_files() if Path(f).is_file()]
        digest.update(files_hash(present).encode())
    if d.demo is not None:
        from lora_hpo.spec.registries import DEMO_DATA

        if d.demo in DEMO_DATA:
            digest.update(version_of(DEMO_DATA[d.demo].package).encode())
    return digest.hexdigest()[:16]


def lineage_tags(spec: StudySpec) -> dict[str, str]:
    """All lineage tags of a trial run, as computed on the driver."""
    source = spec.data.demo or spec.data.hub or ",".join(spec.data.all_files())
    return {
        **base_model_tags(spec),
        "dataset": str(source),
        "dataset_fingerprint": data_fingerprint(spec),
        **version_tags(),
    }


def dataset_input(spec: StudySpec, fingerprint: str) -> dict[str, str]:
    """The study's data as an MLflow dataset input: its name (``demo:<name>``, the hub id or
    the file names), its source (the demo, the hub id and config, or the files) and the
    driver's ``dataset_fingerprint`` as its digest (a trial run's digest is the fingerprint
    its trial reports, as its tag is); the context is ``training``."""
    d, source = spec.data, dict[str, Any]()
    if d.demo is not None:
        name, kind, source = f"demo:{d.demo}", "code", {"demo": d.demo}
    elif d.hub is not None:
        name, kind = d.hub, "hugging_face"
        source = {"path": d.hub} | ({"config_name": d.hub_config} if d.hub_config else {})
    else:
        files = d.all_files()
        name, kind, source = ",".join(Path(f).name for f in files), "local", {"uri": files}
    text = json.dumps(source, sort_keys=True)
    return {"name": name, "digest": fingerprint, "source_type": kind, "source": text}


class Redactor:
    """Replaces secret values (from environment variables whose name looks secret, e.g.
    HF_TOKEN, AWS_SECRET_ACCESS_KEY, MLFLOW_TRACKING_PASSWORD) and URL user-info with ***."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        values = {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 8}
        self.secrets = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return _USERINFO.sub(r"\g<scheme>***@", text)

    def mapping(self, values: Mapping[str, object]) -> dict[str, str]:
        return {k: self(str(v)) for k, v in values.items()}


def curve(result: Mapping[str, Any]) -> dict[str, float]:
    """The step-indexed metrics of one report: eval metrics, train loss, adapter norms. A
    metric whose ``<name>_raw`` is NaN or inf is left out, and so is that raw value: the
    reported value only stands in for it (the worst value, for the searcher)."""
    numbers = {
        k: float(v)
        for k, v in result.items()
        if (k.startswith("eval_") or k in CURVES)
        and isinstance(v, (int, float))
        and not isinstance(v, bool)
    }
    stand_ins = {k.removesuffix("_raw") for k, v in numbers.items() if k.endswith("_raw")}
    stand_ins = {k for k in stand_ins if not math.isfinite(numbers[f"{k}_raw"])}
    return {k: v for k, v in numbers.items() if k.removesuffix("_raw") not in stand_ins}


def outcome_tags(status: str, result: Mapping[str, Any] | None) -> dict[str, str]:
    """A closed trial run's tags: ``status``, and for a diverged trial ``lora_hpo.diverged``
    with the watch's reason and the step it stopped at (its run holds no stand-in metric)."""
    tags = {"status": status}
    if status == "diverged":
        last = result or {}
        tags["lora_hpo.diverged"] = "true"
        tags["lora_hpo.diverged_reason"] = str(last.get("diverged_reason") or "unknown")[:4000]
        tags["lora_hpo.diverged_step"] = str(last.get("step", ""))
    return tags


def _flatten(data: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        out.update(_flatten(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def study_tags(spec: StudySpec) -> dict[str, str]:
    """The tags every study-level run carries: the spec's hash, the metric and its mode, and
    the task type where the spec gives one (warm starts match on it)."""
    from lora_hpo.spec.spec_loader import spec_hash

    tags = {
        "lora_hpo.spec_hash": spec_hash(spec),
        "lora_hpo.metric": spec.metric,
        "lora_hpo.mode": spec.mode,
    }
    return tags | ({"lora_hpo.task_type": spec.task_type} if spec.task_type else {})


def study_params(spec: StudySpec) -> dict[str, Any]:
    """The study run's params: the search and training settings, the metric and its mode."""
    from lora_hpo.spec.spec_loader import spec_to_dict

    data = spec_to_dict(spec)
    flat = _flatten(data["search"], "search.") | _flatten(data["training"], "training.")
    return flat | {"metric": spec.metric, "mode": spec.mode, "task": spec.task}
