"""Shared fixtures. Tests run offline: no hub access, ever."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]

BASE_SPEC: dict[str, Any] = {
    "name": "t",
    "task": "sequence-classification",
    "model": {"demo": "minilm-l6"},
    "data": {"demo": "bbc-news", "eval_fraction": 0.2, "max_length": 32},
    "training": {"max_steps": 20, "eval_every": 10, "batch_size": 8},
    "search": {
        "num_samples": 4,
        "max_concurrent": 2,
        "scheduler": {"type": "asha", "grace_period": 10, "reduction_factor": 2},
    },
    "space": {
        "r": {"choices": [4, 8]},
        "alpha_ratio": {"low": 0.5, "high": 2.0},
        "learning_rate": {"low": 1e-4, "high": 1e-3, "log": True},
    },
}


@pytest.fixture
def base_spec() -> dict[str, Any]:
    return copy.deepcopy(BASE_SPEC)


@pytest.fixture
def write_spec(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(data: Any, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
        return path

    return write


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory: Any) -> Path:
    """A tiny random Llama and a learnable toy task on disk (built once per session)."""
    from tests.tiny_models import write_copy_task, write_tiny_llama

    root = tmp_path_factory.mktemp("tiny")
    write_tiny_llama(root / "model")
    write_copy_task(root / "copy.jsonl")
    return root


def tiny_study(root: Path, **overrides: Any) -> dict[str, Any]:
    """A study spec (as YAML data) over the tiny Llama: each trial trains in about a second."""
    data: dict[str, Any] = {
        "name": "tiny",
        "task": "causal-lm",
        "model": {"path": str(root / "model")},
        "data": {
            "files": [str(root / "copy.jsonl")],
            "prompt_field": "prompt",
            "completion_field": "completion",
            "eval_fraction": 0.2,
            "max_length": 24,
        },
        "training": {"max_steps": 20, "eval_every": 5, "batch_size": 8},
        "search": {
            "num_samples": 4,
            "max_concurrent": 2,
            "scheduler": {"type": "asha", "grace_period": 5, "reduction_factor": 2},
        },
        "resources": {"cpu": 1},
        "space": {
            "r": {"choices": [4, 8]},
            "alpha_ratio": {"low": 0.5, "high": 2.0},
            "learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
        },
    }
    for key, value in overrides.items():
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return data


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: Any) -> Any:
    """A real ``mlflow server`` (SQLite + proxied artifacts) on a free loopback port, shared by
    the session; SIGTERM at teardown. Tests may stop and start it (same port, same database)."""
    from tests.mlflow_server import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.started_s = server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shipped() -> Any:
    """The RayJob that k8s/ ships, on Ray pods that share no disk (``tests/pods.py``,
    ``tests/k8s/shipped.py``), with moto's S3 server and an ``mlflow server`` beside them;
    started once per session (the pods as each test asks for them)."""
    import sys
    import tempfile
    import time

    from tests.k8s.shipped import mlflow_server_args, shipped_job
    from tests.pods import Harness
    from tests.tiny_models import write_copy_task, write_tiny_llama

    start = time.monotonic()
    harness = Harness(Path(tempfile.mkdtemp(prefix="lora-hpo-pods-", dir="/var/tmp")))
    try:
        write_tiny_llama(harness.image / "model")
        write_copy_task(harness.image / "copy.jsonl")
        harness.start(mlflow_server_args())
        job = shipped_job(harness)
        job.up(workers=0)
        took = time.monotonic() - start
        print(f"two-pod harness: services and head up in {took:.1f} s", file=sys.__stderr__)
        yield job
    finally:
        harness.close()


@pytest.fixture(autouse=True, scope="module")
def _no_ray_leaks_between_modules() -> Any:
    """A module that leaves Ray running (e.g. an in-process ``lora-hpo run``) must not make the
    next module's ``ray.init`` fail."""
    yield
    import sys

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
