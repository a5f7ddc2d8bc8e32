"""MLflow tracking: the outbox and state file on their own, then against a real ``mlflow
server``: the run layout, lineage, secrets, a 30 s server outage, a killed driver resumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch  # noqa: F401  (torch before ray)
import yaml

from lora_hpo.files.file_names import TRACKER_STATE as STATE_FILE
from lora_hpo.files.file_names import TRIAL_FILE
from lora_hpo.spec.eval_schedule import eval_steps
from lora_hpo.spec.spec_loader import parse_spec, spec_hash
from lora_hpo.tracking.mlflow_store import Store, classify, resolve_tracking_uri
from lora_hpo.tracking.record_outbox import Outbox
from lora_hpo.tracking.run_lineage import Redactor, curve, version_of
from lora_hpo.tracking.tracker_state import StateFile
from tests.conftest import tiny_study
from tests.mlflow_server import (
    DRIVER,
    FAKE_TOKEN,
    MlflowServer,
    TrackedStudy,
    kill_tree,
    local_ray_with_token,
    reported_trials,
    shared_study,
    wait_for,
)
from tests.tracking.told_lines import Told

# --- fast: no server, no Ray ------------------------------------------------------------------


@pytest.mark.slow  # creating the SQLite store takes ~10 s
def test_tracking_uri_precedence_and_embedded_default(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri, artifacts = resolve_tracking_uri(None)
    assert uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert artifacts == (tmp_path.resolve() / "mlartifacts").as_uri()
    store = Store(uri, artifacts)  # the embedded default: experiment artifacts beside the db
    experiment_id = store.experiment_id("embedded")
    assert store.client.get_experiment(experiment_id).artifact_location == artifacts
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert resolve_tracking_uri(None) == ("http://env:5000", None)
    assert resolve_tracking_uri(None, "http://spec:5000")[0] == "http://spec:5000"
    assert resolve_tracking_uri("http://flag:5000", "http://spec:5000")[0] == "http://flag:5000"


def test_redactor_hides_secret_env_values_and_url_passwords() -> None:
    env = {"HF_TOKEN": "hf_abcdef123", "HOME": "/root", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnF"}
    redact = Redactor(env | {"MY_TOKEN": "1"})  # too short to be a secret: never redacted
    text = "token hf_abcdef123 in /root, key wJalrXUtnF, lr 1e-4"
    assert redact(text) == "token *** in /root, key ***, lr 1e-4"
    assert redact("http://user:pw@host:5000/x") == "http://***@host:5000/x"


def test_curve_keeps_eval_metrics_losses_and_norms() -> None:
    result = {"eval_loss": 1.5, "train_loss": 2, "adapter_norm_max": 0.1, "status": "running"}
    result |= {"trial_id": "a", "done": False, "step": 5, "eval_flag": True}
    assert curve(result) == {"eval_loss": 1.5, "train_loss": 2.0, "adapter_norm_max": 0.1}


def test_state_file_is_replaced_whole(tmp_path: Path) -> None:
    file = StateFile(str(tmp_path / "study"))
    assert file.load() is None
    file.save({"trials": {"a": {"run_id": "r1"}}, "queue": []})
    file.save({"trials": {"a": {"run_id": "r2"}}, "queue": []})
    assert file.load() == {"trials": {"a": {"run_id": "r2"}}, "queue": []}
    assert sorted(p.name for p in (tmp_path / "study").iterdir()) == [STATE_FILE]


def test_outbox_keeps_records_while_down_and_sends_each_once(tmp_path: Path) -> None:
    sent: list[int] = []
    down = threading.Event()
    down.set()

    def send(record: dict[str, Any]) -> None:
        if down.is_set():
            raise ConnectionRefusedError("connection refused")
        if record["n"] == 2:
            raise ValueError("a bad record")  # rejected: dropped, the rest goes on
        sent.append(record["n"])

    stream = Told()
    box = Outbox({}, StateFile(str(tmp_path)), send, classify, "http://x", stream, retry_s=0.05)
    box.start()
    for n in range(5):
        box.put({"op": "log", "n": n})
    stream.wait_for("is unreachable", timeout_s=10)  # the sender tried, and waits for it
    on_disk = json.loads((tmp_path / STATE_FILE).read_text())
    assert [r["n"] for r in on_disk["queue"]] == [0, 1, 2, 3, 4]
    down.clear()
    assert box.flush(10) == 0
    box.close()
    assert sent == [0, 1, 3, 4]
    lines = stream.lines
    assert len(lines) == 3, lines
    assert "unreachable" in lines[0] and "tracking record(s) are queued in" in lines[0]
    assert "is back" in lines[1] and "rejected" in lines[2] and "a bad record" in lines[2]
    assert json.loads((tmp_path / STATE_FILE).read_text())["queue"] == []


# --- slow: a real mlflow server and real Ray Tune studies -------------------------------------


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    with local_ray_with_token():
        yield


@pytest.fixture(scope="module")
def tracked(mlflow_server: MlflowServer, tiny_assets: Path, ray_local: None) -> TrackedStudy:
    return shared_study(mlflow_server, tiny_assets)


def runs_of(uri: str, experiment: str) -> tuple[Any, Any, list[Any]]:
    """(client, the study run, the trial runs) of an experiment."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id], max_results=1000)
    studies = [r for r in runs if r.data.tags.get("lora_hpo.role") == "study"]
    assert len(studies) == 1, [r.data.tags for r in studies]
    trials = [r for r in runs if r.data.tags.get("lora_hpo.role") == "trial"]
    return client, studies[0], trials


def steps(client: Any, run: Any, key: str = "eval_loss") -> list[int]:
    return [m.step for m in client.get_metric_history(run.info.run_id, key)]


def check_complete(uri: str, result: Any) -> list[Any]:
    """One trial run per trial, each with its full curve and final status; none RUNNING."""
    client, study, trials = runs_of(uri, result.spec.experiment)
    assert study.info.status == "FINISHED"
    by_trial = {r.data.tags["lora_hpo.trial_id"]: r for r in trials}
    assert len(trials) == len(by_trial) == result.spec.search.num_samples
    assert set(by_trial) == {t.trial_id for t in result.trials}
    planned = eval_steps(result.spec)
    for t in result.trials:
        run = by_trial[t.trial_id]
        assert run.info.status == "FINISHED" and run.data.tags["status"] == t.status
        assert run.data.tags["mlflow.parentRunId"] == study.info.run_id
        assert steps(client, run) == [s for s in planned if s <= int(t.metrics["step"])]
        assert run.data.metrics["eval_loss"] == pytest.approx(t.metrics["eval_loss"])
    return trials


@pytest.mark.slow
def test_one_study_run_and_one_trial_run_per_trial(tracked: TrackedStudy) -> None:
    spec, result = tracked.spec, tracked.result
    trials = check_complete(tracked.uri, result)
    client, study, _ = runs_of(tracked.uri, spec.experiment)
    tags, params = study.data.tags, study.data.params
    assert tags["lora_hpo.spec_hash"] == spec_hash(spec)
    assert (tags["lora_hpo.metric"], tags["lora_hpo.mode"]) == ("eval_loss", "min")
    assert params["search.num_samples"] == "4" and params["search.scheduler.type"] == "asha"
    saved = client.download_artifacts(study.info.run_id, "lora_hpo_spec.yaml")
    assert parse_spec(yaml.safe_load(Path(saved).read_text())).space == spec.space
    summaries = {t.trial_id: t for t in result.trials}
    for run in trials:
        want, got = summaries[run.data.tags["lora_hpo.trial_id"]], run.data.params
        for key in ("r", "use_rslora"):
            assert got[key] == str(want.params[key])
        for key in ("lora_alpha", "learning_rate", "effective_scale"):
            assert float(got[key]) == pytest.approx(want.params[key])
        assert int(got["trainable_params"]) == want.metrics["trainable_params"]
        for key in ("train_loss", "adapter_norm_mean", "adapter_norm_max"):
            assert len(steps(client, run, key)) == len(steps(client, run))


@pytest.mark.slow
def test_lineage_tags(tracked: TrackedStudy) -> None:
    _, study, trials = runs_of(tracked.uri, tracked.spec.experiment)
    fingerprints = {r.data.tags["dataset_fingerprint"] for r in trials}
    assert len(fingerprints) == 1 and len(fingerprints.pop()) == 16
    for run in [study, *trials]:
        tags = run.data.tags
        assert tags["base_model"] == str(tracked.spec.model.path)
        assert tags["base_model_revision"] not in ("", "missing", "unpinned")  # a content hash
        for package in ("peft", "transformers", "torch", "ray"):
            assert tags[f"lora_hpo.version.{package}"] == version_of(package)


@pytest.mark.slow
def test_top_k_adapters_and_a_verified_champion(tracked: TrackedStudy) -> None:
    client, _, trials = runs_of(tracked.uri, tracked.spec.experiment)
    ranked = [
        t.trial_id for t in tracked.result.trials if t.status in ("completed", "stopped_early")
    ]
    champion = tracked.tracker.state["champion"]
    assert champion["trial_id"] == ranked[0] == tracked.result.best.trial_id
    want = {"adapter_model.safetensors", "adapter_config.json", TRIAL_FILE, "lora_hpo_spec.yaml"}
    for run in trials:  # tracking.log_adapters: top-k with top_k 2
        files = {Path(f.path).name for f in client.list_artifacts(run.info.run_id, "adapter")}
        top = run.data.tags["lora_hpo.trial_id"] in ranked[:2]
        assert files == (want if top else set())  # no optimizer.pt, no scheduler.pt
        assert ("lora_hpo.adapter" in run.data.tags) == top
    version = client.get_model_version_by_alias(tracked.spec.experiment, "champion")
    assert version.run_id == champion["run_id"]
    assert version.source.startswith("models:/m-")  # the logged MLflow model, not adapter/


@pytest.mark.slow
def test_no_secret_reaches_the_tracking_store(tracked: TrackedStudy, mlflow_server: Any) -> None:
    assert os.environ["HF_TOKEN"] == FAKE_TOKEN
    assert FAKE_TOKEN in str(tracked.tracker.tracking_uri)  # the client used it
    stores = [*mlflow_server.root.glob("mlflow.db*"), *mlflow_server.artifacts.rglob("*")]
    files = [p for p in stores if p.is_file()]
    assert {"mlflow.db", "adapter_model.safetensors", "lora_hpo_spec.yaml"} <= {
        p.name for p in files
    }
    for path in files:
        assert FAKE_TOKEN.encode() not in path.read_bytes(), path
    state = Path(tracked.result.path) / STATE_FILE
    assert FAKE_TOKEN not in state.read_text()


@pytest.mark.slow
def test_a_30s_server_outage_mid_study_loses_no_record(tracked: TrackedStudy) -> None:
    marks, told, stats = tracked.marks, tracked.told, tracked.tracker.box.stats
    assert marks["down"] < marks["end"], "the study ended before the outage began"
    assert told.count("is unreachable") == 1 and told.count("is back after") == 1, told
    assert stats["outages"] == 1 and stats["dropped"] == 0 and not tracked.tracker.state["queue"]
    check_complete(tracked.uri, tracked.result)  # every run, every step, every status
    client, _, trials = runs_of(tracked.uri, tracked.spec.experiment)
    history = [m for r in trials for m in client.get_metric_history(r.info.run_id, "eval_loss")]
    during = sum(marks["down"] <= m.timestamp / 1000 <= marks["restart"] for m in history)
    assert during > 0, "training reported nothing while the server was down"
    print(
        f"\noutage {marks['up'] - marks['down']:.0f} s (stop, 30 s, start); {during} eval reports"
        f" made while down; at most {stats['max_queued']} records queued; {stats['sent']} sent;"
        f" study ended {marks['end'] - marks['down']:.0f} s after the stop"
    )


@pytest.mark.slow
def test_a_killed_driver_resumes_with_one_run_per_trial(
    mlflow_server: MlflowServer, tiny_assets: Path, ray_local: None, tmp_path: Path
) -> None:
    from lora_hpo.cli.main import main

    quick = {"search.scheduler": {"type": "none"}, "search.num_samples": 3}
    data = tiny_study(tiny_assets, name="killed", **quick, **{"training.max_steps": 10})
    spec_file, storage = tmp_path / "killed.yaml", tmp_path / "results"
    spec_file.write_text(yaml.safe_dump(data))
    args = ["run", str(spec_file), "--storage-path", str(storage)]
    env = dict(os.environ, TUNE_GLOBAL_CHECKPOINT_S="1")
    with (tmp_path / "driver.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, *args, "--tracking-uri", mlflow_server.uri],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    study_dir = storage / "killed"

    def two_reported() -> bool:
        saved = any(study_dir.glob("experiment_state*.json"))  # Tune can restore
        return saved and reported_trials(study_dir / STATE_FILE) >= 2

    try:
        killed_s = wait_for(two_reported, 300, "two trials to report")
    finally:
        kill_tree(proc)
    _, _, before = runs_of(mlflow_server.uri, "killed")
    open_before = sum(r.info.status == "RUNNING" for r in before)
    assert open_before > 0  # the kill left runs open
    t0 = time.monotonic()
    assert main(["resume", str(study_dir), "--tracking-uri", mlflow_server.uri]) == 0
    resume_s = time.monotonic() - t0
    client, study, trials = runs_of(mlflow_server.uri, "killed")
    assert study.info.status == "FINISHED"
    ids = [r.data.tags["lora_hpo.trial_id"] for r in trials]
    assert len(ids) == len(set(ids)) == 3
    curves: dict[str, tuple[str, list[int]]] = {}
    for run in trials:
        assert run.info.status == "FINISHED", run.data.tags
        done, status = steps(client, run), run.data.tags["status"]
        assert done == sorted(set(done)), done  # none twice
        assert status in ("completed", "diverged")
        assert done[:1] == [5] or status == "diverged"  # a NaN eval_loss is not logged
        if status == "completed":
            assert {5, 10} <= set(done), done  # none lost
        assert ("lora_hpo.adapter" in run.data.tags) == (status == "completed"), (status, done)
        curves[run.data.tags["lora_hpo.trial_id"]] = (status, done)
    print(
        f"\nkilled after {killed_s:.0f} s ({open_before} runs RUNNING); resumed in {resume_s:.0f} s"
    )
    print(f"  status and eval steps per trial after the resume: {curves}")
