"""Drivers as real ``lora-hpo`` processes on the tiny Llama: a second driver on a running study
is refused at once (exit 2, who holds it) and the first finishes (both with ``--json``: the
summary, or the refusal, as the one JSON document on stdout); SIGTERM mid-study stops it
gracefully (exit 143, no MLflow run left RUNNING) and ``resume`` finishes it with one run
per trial."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lora_hpo.files.file_names import TRACKER_STATE
from lora_hpo.search.study_lock import DRIVER_FILE
from tests.conftest import tiny_study
from tests.mlflow_server import MlflowServer, kill_tree, reported_trials, wait_for

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "lora_hpo.cli"]
QUICK = {"search.scheduler": {"type": "none"}, "search.sampler": "random"}


@contextlib.contextmanager
def driver(cwd: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``lora-hpo ARGS`` in its own session, its output in cwd/driver.out and .err; killed
    with what it started if the test leaves it running."""
    with (cwd / "driver.out").open("wb") as out, (cwd / "driver.err").open("wb") as err:
        proc = subprocess.Popen([*CLI, *args], cwd=cwd, stdout=out, stderr=err,
                                start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            kill_tree(proc)


def _spec(tmp_path: Path, assets: Path, name: str, **over: Any) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tiny_study(assets, name=name, **QUICK, **over)))
    return path


def _holder(study: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((study / DRIVER_FILE).read_text() or "{}"))
    except (OSError, ValueError):
        return {}


def test_a_second_driver_is_refused_while_the_first_runs_on(
    tiny_assets: Path, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, tiny_assets, "twice", **{"search.num_samples": 2})
    storage = tmp_path / "results"
    args = ["run", str(spec), "--storage-path", str(storage), "--json"]
    with driver(tmp_path, *args) as first:
        wait_for(lambda: _holder(storage / "twice").get("pid") == first.pid, 60, "the lock")
        t0 = time.monotonic()
        second = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60,
                                cwd=tmp_path)  # fmt: skip
        refused_s = time.monotonic() - t0
        assert first.poll() is None  # the first was not disturbed
        rc = first.wait(timeout=300)
    assert second.returncode == 2, second.stderr[-3000:]
    err = second.stderr
    for part in ("study 'twice'", str(storage / "twice"), f"pid {first.pid}", "host ",
                 "lora-hpo stop", "lora-hpo resume", "frees itself"):  # fmt: skip
        assert part in err, (part, err)
    assert "Traceback" not in err and "Ray" not in err  # refused before Ray starts
    assert json.loads(second.stdout)["error"] in err
    assert rc == 0, (tmp_path / "driver.err").read_text()[-3000:]
    _check_summary(json.loads((tmp_path / "driver.out").read_text()), storage / "twice")
    print(f"\nsecond driver refused in {refused_s:.1f} s")


def _check_summary(doc: dict[str, Any], study: Path) -> None:
    """``run --json``'s document: every trial with its params and metric, the best, where the
    study and its MLflow records are, and the champion."""
    assert (doc["study"], doc["metric"], doc["mode"]) == ("twice", "eval_loss", "min")
    assert doc["counts"] == {"completed": 2} and doc["failures"] == [] and doc["stopped"] is None
    trials = doc["trials"]
    assert [t["rank"] for t in trials] == [1, 2] and {t["status"] for t in trials} == {"completed"}
    for t in trials:
        assert t["value"] == t["metrics"]["eval_loss_raw"] and t["step"] == 20
        assert {"r", "lora_alpha", "learning_rate", "use_rslora"} <= set(t["params"])
        assert Path(t["checkpoint"]).is_relative_to(study)
    assert trials[0]["value"] <= trials[1]["value"] and doc["best"] == trials[0]
    assert doc["study_dir"] == str(study)
    mlflow = doc["mlflow"]
    assert mlflow["experiment"] == "twice" and mlflow["tracking_uri"].startswith("sqlite:///")
    champion = mlflow["champion"]
    assert champion["model_uri"] == "models:/twice@champion"
    assert champion["trial_id"] == trials[0]["trial_id"] and mlflow["run_id"]


def _runs(uri: str, experiment: str) -> list[Any]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id], max_results=1000)


def test_sigterm_stops_gracefully_and_resume_finishes(
    mlflow_server: MlflowServer, tiny_assets: Path, tmp_path: Path
) -> None:
    over = {"search.num_samples": 3, "training.max_steps": 30}
    spec = _spec(tmp_path, tiny_assets, "sigterm", **over)
    storage, uri = tmp_path / "results", mlflow_server.uri
    study = storage / "sigterm"
    with driver(tmp_path, "run", str(spec), "--storage-path", str(storage),
                "--tracking-uri", uri) as proc:  # fmt: skip
        wait_for(lambda: reported_trials(study / TRACKER_STATE) >= 1, 300, "a trial's report")
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = proc.wait(timeout=120)
        stop_s = time.monotonic() - t0
    err = (tmp_path / "driver.err").read_text()
    assert rc == 128 + signal.SIGTERM, err[-3000:]
    assert "lora-hpo: SIGTERM: stopping the study; its state is saved" in err, err[-3000:]
    assert f"interrupted by SIGTERM: the study's state is saved; continue it with `lora-hpo" \
           f" resume {study}`" in err, err[-3000:]  # fmt: skip
    before = _runs(uri, "sigterm")
    assert before and all(r.info.status != "RUNNING" for r in before), [
        (r.data.tags.get("lora_hpo.role"), r.info.status) for r in before
    ]
    (study_run,) = (r for r in before if r.data.tags["lora_hpo.role"] == "study")
    assert study_run.info.status == "KILLED"
    stopped = [r for r in before if r.info.status == "KILLED" and r is not study_run]
    assert stopped and all(r.data.tags["status"] == "interrupted" for r in stopped)
    shown = (tmp_path / "driver.out").read_text()  # the live view's lines (not a terminal)
    assert "status=interrupted" in shown and "status=stopped_early" not in shown, shown[-2000:]
    done_before = {r.info.run_id: r.info.end_time for r in before if r.info.status == "FINISHED"}

    t0 = time.monotonic()
    resumed = subprocess.run([*CLI, "resume", str(study), "--tracking-uri", uri], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    resume_s = time.monotonic() - t0
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _runs(uri, "sigterm")
    trials = [r for r in after if r.data.tags["lora_hpo.role"] == "trial"]
    ids = [r.data.tags["lora_hpo.trial_id"] for r in trials]
    assert len(ids) == len(set(ids)) == 3, ids  # one run per trial, no duplicates
    assert all(r.info.status == "FINISHED" for r in after), [r.info.status for r in after]
    assert {r.info.run_id for r in trials} >= {r.info.run_id for r in stopped}  # reopened
    for run in after:  # a trial finished before the signal was not run again
        if run.info.run_id in done_before:
            assert run.info.end_time == done_before[run.info.run_id]
    print(f"\nSIGTERM: exit 143 in {stop_s:.1f} s, {len(stopped)} trial run(s) KILLED;"
          f" resumed in {resume_s:.0f} s")  # fmt: skip
