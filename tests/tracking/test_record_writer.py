"""The tracking writer against a real ``mlflow server``: each op once, and the resume case
where the state file on storage lagged the killed driver that created a run."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from mlflow import MlflowClient

from lora_hpo.tracking.record_writer import Writer

pytestmark = pytest.mark.slow  # the session's mlflow server takes ~10 s to start


def _writer(uri: str, experiment: str) -> Writer:
    state: dict[str, Any] = {"study_key": uuid.uuid4().hex, "study": experiment, "trials": {}}
    state |= {"experiment_id": None, "parent_run_id": None}
    return Writer(uri, None, state, threading.RLock(), (experiment, experiment), "name: x\n")


def test_a_resume_deletes_the_runs_of_trials_that_tune_does_not_have(mlflow_server: Any) -> None:
    writer = _writer(mlflow_server.uri, f"writer-lose-{uuid.uuid4().hex[:6]}")
    writer({"op": "open_study", "params": {}, "tags": {"lora_hpo.role": "study"}})
    for tid in ("a", "b", "c"):
        writer.state["trials"][tid] = {"run_id": None, "step": -1, "closed": False}
        writer({"op": "open_trial", "trial": tid, "params": {"r": 8}, "tags": {}})
    runs = {tid: e["run_id"] for tid, e in writer.state["trials"].items()}
    # the resumed driver: the state file it loaded never named "c"; Tune restored "a" only,
    # and "b" is a trial the state names (its own "lose" op handles it when Tune lost it)
    del writer.state["trials"]["c"]
    writer({"op": "lose_unknown", "keep": ["a"]})
    client = MlflowClient(mlflow_server.uri)
    assert client.get_run(runs["a"]).info.lifecycle_stage == "active"
    assert client.get_run(runs["b"]).info.lifecycle_stage == "active"
    lost = client.get_run(runs["c"])
    assert lost.info.lifecycle_stage == "deleted" and lost.data.tags["lora_hpo.lost"] == "true"
    writer({"op": "lose_unknown", "keep": ["a"]})  # repeated: nothing more to delete
    found = client.search_runs([writer.state["experiment_id"]], "tags.`lora_hpo.role` = 'trial'")
    assert sorted(r.data.tags["lora_hpo.trial_id"] for r in found) == ["a", "b"]


def test_the_data_input_is_logged_once_however_often_the_op_repeats(mlflow_server: Any) -> None:
    experiment = f"writer-data-{uuid.uuid4().hex[:6]}"
    writer = _writer(mlflow_server.uri, experiment)
    writer.dataset = {"name": "a.jsonl", "digest": "0123abcd", "source_type": "local"}
    writer.dataset["source"] = '{"uri": ["/data/a.jsonl"]}'
    for _ in range(2):  # an op is repeated after an outage or a crash
        writer({"op": "open_study", "params": {}, "tags": {"lora_hpo.role": "study"}})
    run = MlflowClient(mlflow_server.uri).get_run(writer.state["parent_run_id"])
    (found,) = run.inputs.dataset_inputs
    assert (found.dataset.name, found.dataset.digest) == ("a.jsonl", "0123abcd")
    kind = MlflowClient(mlflow_server.uri).get_experiment_by_name(experiment).tags
    assert kind["mlflow.experimentKind"] == "custom_model_development"
