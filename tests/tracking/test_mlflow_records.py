"""What the tracker records besides params and curves, on a real ``mlflow server``: the
experiment's kind (the UI opens on training runs), the study's data as every run's input, the
checksum check that refuses a tampered champion, and a diverged trial (tagged, no stand-in
metric, never ranked)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import tiny_study
from tests.mlflow_server import MlflowServer, TrackedStudy, local_ray_with_token, shared_study
from tests.tracking.test_mlflow_tracker import runs_of, steps


def test_curve_leaves_out_a_stand_in_for_a_non_finite_metric() -> None:
    from lora_hpo.tracking.run_lineage import curve

    diverged = {"eval_loss": 1e9, "eval_loss_raw": math.nan, "train_loss": 2.0, "step": 5}
    assert curve(diverged) == {"train_loss": 2.0}
    healthy = {"eval_loss": 1.5, "eval_loss_raw": 1.5, "train_loss": 2.0}
    assert curve(healthy) == healthy


def test_only_a_diverged_trial_has_the_diverged_tags() -> None:
    from lora_hpo.tracking.run_lineage import outcome_tags

    last = {"step": 5, "status": "diverged", "diverged_reason": "non-finite eval_loss"}
    assert outcome_tags("diverged", last) == {
        "status": "diverged",
        "lora_hpo.diverged": "true",
        "lora_hpo.diverged_reason": "non-finite eval_loss",
        "lora_hpo.diverged_step": "5",
    }
    assert outcome_tags("completed", {"step": 20}) == {"status": "completed"}


@pytest.fixture(scope="module")
def tracked(mlflow_server: MlflowServer, tiny_assets: Path) -> Iterator[TrackedStudy]:
    with local_ray_with_token():
        yield shared_study(mlflow_server, tiny_assets)


@pytest.mark.slow
def test_the_experiment_opens_on_training_runs(tracked: TrackedStudy) -> None:
    experiment = MlflowClient(tracked.uri).get_experiment_by_name("tracked")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.slow
def test_the_printed_link_opens_the_training_runs(tracked: TrackedStudy) -> None:
    from lora_hpo.tracking.mlflow_store import ui_link

    exp_id = MlflowClient(tracked.uri).get_experiment_by_name(tracked.spec.experiment)
    host = tracked.uri.split("://", 1)[1].rsplit("@", 1)[-1]  # no credentials in a link
    link = f"http://{host}/#/experiments/{exp_id.experiment_id}?workflowType=machine_learning"
    assert f"MLflow: experiment 'tracked' at {link}" in tracked.tracker.summary()
    assert ui_link("sqlite:///mlflow.db", "1") == "sqlite:///mlflow.db"  # no UI to link


@pytest.mark.slow
def test_the_data_is_an_input_of_the_study_run_and_each_trial_run(tracked: TrackedStudy) -> None:
    _, study, trials = runs_of(tracked.uri, "tracked")
    assert len(trials) == tracked.spec.search.num_samples
    for run in [study, *trials]:
        (found,) = run.inputs.dataset_inputs
        data = found.dataset
        assert (data.name, data.source_type) == ("copy.jsonl", "local")
        assert data.digest == run.data.tags["dataset_fingerprint"]
        assert str(tracked.spec.data.all_files()[0]) in data.source
        assert {t.key: t.value for t in found.tags} == {"mlflow.data.context": "training"}


def _tampering(staged: Path, out: Path, run: dict[str, Any]) -> None:
    """The champion's model, with one byte of its adapter changed after it was made."""
    from lora_hpo.analysis.champion_model import champion_folder

    champion_folder(staged, out, run)
    weights = next(out.rglob("adapter_model.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))


@pytest.mark.slow
def test_a_tampered_champion_is_refused_and_a_good_one_made_once(
    tracked: TrackedStudy, tmp_path: Path
) -> None:
    from lora_hpo.analysis.champion_model import champion_folder
    from lora_hpo.tracking.champion_version import logged_model
    from lora_hpo.tracking.mlflow_store import Store, sha256

    store = Store(tracked.uri)
    champion = store.client.get_model_version_by_alias("tracked", "champion")
    staged = Path(store.client.download_artifacts(champion.run_id, "adapter", str(tmp_path)))
    expected = {p.name: sha256(p) for p in staged.iterdir()}
    experiment = store.experiment_id(f"tamper-{uuid.uuid4().hex[:6]}")
    run_id = store.get_or_create_run(experiment, {"k": "tamper"}, "tamper", {})
    name = f"tamper-{uuid.uuid4().hex[:6]}"
    about = {"experiment": "tracked"}
    with pytest.raises(ValueError, match=r"differ from the checkpoint: \['adapter_model"):
        store.register(name, run_id, expected, {}, (staged, _tampering, about))
    assert "champion" not in store.client.get_registered_model(name).aliases
    other = store.get_or_create_run(experiment, {"k": "good"}, "good", {})
    first = logged_model(store.client, other, staged, champion_folder, about)
    assert logged_model(store.client, other, staged, champion_folder, about) == first  # found
    version = store.register(name, other, expected, {}, (staged, champion_folder, about))
    assert store.client.get_model_version(name, version).source == first


@pytest.mark.slow
def test_a_diverged_trial_is_tagged_and_never_ranked(
    tracked: TrackedStudy, tiny_assets: Path, tmp_path: Path
) -> None:
    from lora_hpo.analysis.best_configs import best_configs
    from lora_hpo.search.study_runner import run_study
    from lora_hpo.tracking.study_tracking import StudyTracking

    fixed = {"search.scheduler": {"type": "none"}, "search.sampler": "random"}
    data = tiny_study(tiny_assets, name="diverging", **fixed, **{"training.max_steps": 10})
    data["space"]["learning_rate"] = {"choices": [10.0, 3e-3]}  # seeded: both are drawn
    spec = parse_spec(data)
    result = run_study(spec, storage_path=str(tmp_path), tracking=StudyTracking(tracked.uri))
    statuses = {t.trial_id: t.status for t in result.trials}
    assert {"diverged", "completed"} <= set(statuses.values()), statuses
    client, _, trials = runs_of(tracked.uri, "diverging")
    for run in trials:
        tags, tid = run.data.tags, run.data.tags["lora_hpo.trial_id"]
        assert tags["status"] == statuses[tid]
        if statuses[tid] != "diverged":
            assert "lora_hpo.diverged" not in tags and steps(client, run) == [5, 10]
            continue
        assert tags["lora_hpo.diverged"] == "true" and tags["lora_hpo.diverged_reason"]
        assert int(tags["lora_hpo.diverged_step"]) < 10
    ranked = [e["trial_id"] for e in best_configs("diverging", 10, tracking_uri=tracked.uri)]
    assert sorted(ranked) == sorted(t for t, s in statuses.items() if s == "completed")


@pytest.mark.slow
def test_a_nan_loss_logs_no_stand_in_metric(
    tracked: TrackedStudy, tiny_assets: Path, tmp_path: Path
) -> None:
    """The report a trial makes when its loss turns NaN (``trial_report``: the searcher gets
    1e9), through the tracker to the server: tags, and no eval_loss at all. (The tiny model
    does not reach NaN within the learning rates a spec allows, so the report is made here.)"""
    from ray.tune.experiment import Trial

    from lora_hpo.spec.search_space import derive
    from lora_hpo.tracking.mlflow_tracker import MLflowTracker
    from lora_hpo.training.adapter_monitor import DivergenceWatch
    from lora_hpo.training.trial_report import trial_report

    spec = parse_spec(tiny_study(tiny_assets, name=f"nan-{uuid.uuid4().hex[:6]}"))
    config = {"r": 4, "alpha_ratio": 1.0, "learning_rate": 1e-3}
    trial = Trial("trainable", config=config, trial_id="nan00001", stub=True)
    nan = {"eval_loss": math.nan, "adapter_norm_max": 0.1}
    watch = DivergenceWatch(spec.monitor)
    report = trial_report(
        spec, derive(spec.space, config), watch, step=5, train_loss=math.nan, evaluated=nan,
        extra={},
    )  # fmt: skip
    assert (report["status"], report["eval_loss"]) == ("diverged", 1e9)  # Tune's stand-in
    tracker = MLflowTracker(spec, tracked.uri, state_dir=str(tmp_path))
    tracker.on_trial_start(0, [trial], trial)
    tracker.on_trial_result(0, [trial], trial, report)
    trial.update_last_result(report)
    tracker.on_trial_complete(0, [trial], trial)
    tracker.on_experiment_end([trial])
    client, _, (run,) = runs_of(tracked.uri, spec.experiment)
    assert run.data.tags["lora_hpo.diverged_reason"] == "train_loss is nan"
    assert run.data.tags["lora_hpo.diverged_step"] == "5"
    assert "eval_loss" not in run.data.metrics and "eval_loss_raw" not in run.data.metrics
    assert client.get_metric_history(run.info.run_id, "eval_loss") == []
