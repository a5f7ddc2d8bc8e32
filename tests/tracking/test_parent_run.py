"""A staged study in MLflow, through the CLI on a real server: one parent run, each stage's
study run nested under it, the decision on the parent, and ``resume`` reusing the parent."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lora_hpo.search.strategies.staged_study import StagedState
from tests.cli_process import lora_hpo
from tests.conftest import tiny_study

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return lora_hpo(None, *args, timeout=600)


def _runs(uri: str, experiment: str) -> tuple[Any, dict[str, list[Any]]]:
    """(client, runs by lora_hpo.role) of an experiment."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    by_role: dict[str, list[Any]] = {}
    for run in client.search_runs([experiment_id], max_results=1000):
        by_role.setdefault(run.data.tags.get("lora_hpo.role", ""), []).append(run)
    return client, by_role


def test_stages_nest_under_one_parent_run(
    tiny_assets: Path, tmp_path: Path, mlflow_server: Any
) -> None:
    data = tiny_study(tiny_assets, **{"training.max_steps": 10, "search.max_concurrent": 1})
    data["name"] = "staged-tiny"
    data["search"].update(
        metric="eval_loss",
        mode="min",
        strategy="staged",
        staged={"r_min": 4, "r_max": 16, "samples_per_rank": 1, "stage2_samples": 2},
    )
    spec_file, storage = tmp_path / "staged.yaml", tmp_path / "results"
    spec_file.write_text(yaml.safe_dump(data))
    where = ["--storage-path", str(storage), "--tracking-uri", mlflow_server.uri]
    out = _cli("run", str(spec_file), *where).stdout
    state = StagedState.load(storage / "staged-tiny" / "lora_hpo_staged.json")
    assert state.done and state.decision in out

    client, runs = _runs(mlflow_server.uri, "staged-tiny")
    (parent,) = runs["staged"]
    assert parent.info.status == "FINISHED" and parent.info.run_name == "staged-tiny"
    assert parent.data.tags["lora_hpo.decision"] == state.decision
    assert parent.data.tags["lora_hpo.plateau_rank"] == str(state.plateau_rank)
    assert parent.info.run_id in out  # the summary names the parent run
    sweep = client.get_metric_history(parent.info.run_id, "stage1_eval_loss")
    assert {m.step: m.value for m in sweep} == pytest.approx(state.scores)
    assert parent.data.metrics["stage2_best_eval_loss"] == pytest.approx(state.stage2_best)
    stages = {r.info.run_name: r for r in runs["study"]}
    ranks = [f"staged-tiny-stage1-r{r}" for r in sorted(state.scores)]
    assert set(stages) == {*ranks, "staged-tiny-stage2"}
    for run in stages.values():
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED"
    study_ids = {r.info.run_id for r in stages.values()}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs["trial"]} == study_ids
    assert len(runs["trial"]) == len(ranks) + 2  # one sample per rank, two in stage 2
    # the champion is the best trial of all stages (the shared rule), not stage 2's best
    best = min(
        (r for r in runs["trial"] if r.data.tags.get("status") in ("completed", "stopped_early")),
        key=lambda r: (r.data.metrics["eval_loss"], r.data.tags["status"] != "completed"),
    )
    champion = client.get_model_version_by_alias("staged-tiny", "champion")
    assert champion.run_id == best.info.run_id
    assert parent.data.tags["lora_hpo.champion_run_id"] == best.info.run_id
    assert "champion of all stages" in out and best.info.run_id in out
    reports = client.list_artifacts(parent.info.run_id, "report")
    assert any(a.path.endswith(".png") for a in reports)

    _cli("resume", "staged-tiny", *where)  # every stage is finished: nothing new
    _, again = _runs(mlflow_server.uri, "staged-tiny")
    assert [r.info.run_id for r in again["staged"]] == [parent.info.run_id]
    assert len(again["study"]) == len(stages) and len(again["trial"]) == len(runs["trial"])
    assert again["staged"][0].info.status == "FINISHED"
