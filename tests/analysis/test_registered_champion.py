"""The champion the tracker registers is an MLflow model (``champion_model.champion_folder``,
injected as the CLI injects it): on the shared tracked study's real server,
``mlflow.pyfunc.load_model("models:/tracked@champion")`` predicts what ``lora-hpo predict``
gives the exported rank-1 bundle, and ``mlflow models serve`` answers ``/invocations``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lora_hpo.analysis.best_configs import export_adapter
from tests.mlflow_server import (
    MlflowServer,
    TrackedStudy,
    free_port,
    local_ray_with_token,
    shared_study,
    wait_for,
)

pytestmark = pytest.mark.slow

MODEL = "models:/tracked@champion"
NEW_TOKENS = 4
SERVE_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def tracked(mlflow_server: MlflowServer, tiny_assets: Path) -> Iterator[TrackedStudy]:
    with local_ray_with_token():
        yield shared_study(mlflow_server, tiny_assets)


@pytest.fixture(scope="module")
def prompts(tiny_assets: Path) -> list[str]:
    rows = (tiny_assets / "copy.jsonl").read_text().splitlines()[:3]
    return [json.loads(line)["prompt"] for line in rows]


@pytest.fixture(scope="module")
def exported(tracked: TrackedStudy, prompts: list[str], tmp_path_factory: Any) -> list[str]:
    """What ``lora-hpo predict`` answers with the exported rank-1 bundle."""
    from lora_hpo.analysis.bundle_predict import predict

    tmp = tmp_path_factory.mktemp("exported")
    out = export_adapter("tracked", tmp / "best", tracking_uri=tracked.uri)
    rows = tmp / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    return [r["prediction"] for r in predict(out, rows, NEW_TOKENS)[0]]


def test_the_registered_champion_is_a_logged_model_of_its_run(tracked: TrackedStudy) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracked.uri)
    version = client.get_model_version_by_alias("tracked", "champion")
    model_id = version.source.removeprefix("models:/")  # MLflow 3's logged model
    assert model_id.startswith("m-")
    run = client.get_run(version.run_id)
    assert model_id in [m.model_id for m in run.outputs.model_outputs]  # the Model column
    model = client.get_logged_model(model_id)
    assert (model.name, model.source_run_id, str(model.status)) == (
        "model",
        run.info.run_id,
        "READY",
    )
    assert version.tags["lora_hpo.trial_id"] == run.data.tags["lora_hpo.trial_id"]  # lineage
    for key in ("base_model", "dataset_fingerprint", "lora_hpo.trial_id"):
        assert model.tags[key] == run.data.tags[key]  # the logged model carries the lineage
    assert model.params == run.data.params


def test_pyfunc_load_model_predicts_what_the_export_does(
    tracked: TrackedStudy, prompts: list[str], exported: list[str], monkeypatch: Any
) -> None:
    import mlflow.pyfunc
    import pandas as pd

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracked.uri)  # models:/ reads the global URI
    model = mlflow.pyfunc.load_model(MODEL)
    assert [c.name for c in model.metadata.get_input_schema().inputs] == ["prompt"]
    got = model.predict(pd.DataFrame({"prompt": prompts}), params={"max_new_tokens": NEW_TOKENS})
    assert list(got) == exported and len(got) == len(prompts)


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        return json.loads(resp.read())


def _ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def test_mlflow_models_serve_answers_invocations(
    tracked: TrackedStudy, prompts: list[str], exported: list[str], tmp_path: Path
) -> None:
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow), "models", "serve", "-m", MODEL, "--env-manager", "local"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracked.uri)
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(  # its own group: the server's workers are its children
            [*cmd, "-p", str(port), "-h", "127.0.0.1"],
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            return _ping(f"{base}/ping")

        waited = wait_for(up, SERVE_TIMEOUT_S, "an answer to /ping")
        body = {
            "dataframe_split": {"columns": ["prompt"], "data": [[p] for p in prompts]},
            "params": {"max_new_tokens": NEW_TOKENS},
        }
        got = _post(f"{base}/invocations", body)
        print(f"\nmlflow models serve: /ping after {waited:.1f} s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group of the process this test started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert got == {"predictions": exported}
