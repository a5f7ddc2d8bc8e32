"""The kept Optuna study: Tune's outcomes become Optuna states (COMPLETE with the metric,
PRUNED for a trial stopped early, FAIL for a diverged or failed one), learning curves become
intermediate values, a rewrite (a resumed study) holds each trial once, and optuna-dashboard
serves the file."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest

from lora_hpo.search.optuna_export import keep_optuna_study, optuna_url
from lora_hpo.search.study_result import StudyResult, TrialSummary
from lora_hpo.spec.spec_loader import parse_spec
from tests.mlflow_server import free_port, wait_for


def _trial(tid: str, status: str, value: float | None, lr: float) -> TrialSummary:
    config = {"r": 8, "alpha_ratio": 2.0, "learning_rate": lr}
    metrics = {} if value is None else {"eval_accuracy": value, "eval_accuracy_raw": value}
    curve = [(10, 0.5), (20, value if value is not None else 0.4)]
    return TrialSummary(tid, status, {"r": 8, "lora_alpha": 16}, metrics, None, 0.1, curve, config)


def _result(base_spec: dict[str, Any], path: Path, trials: list[TrialSummary]) -> StudyResult:
    data = base_spec | {"name": "kept"}
    data["search"] = {**data["search"], "metric": "eval_accuracy", "mode": "max"}
    return StudyResult(parse_spec(data), str(path), trials, 1.0)


def test_outcomes_become_optuna_states_and_a_rewrite_holds_each_trial_once(
    base_spec: dict[str, Any], tmp_path: Path
) -> None:
    first = [_trial("a", "completed", 0.9, 3e-4), _trial("b", "stopped_early", None, 1e-4)]
    keep_optuna_study(_result(base_spec, tmp_path, first))
    more = [*first, _trial("c", "diverged", None, 9e-4), _trial("d", "running", None, 2e-4)]
    where = keep_optuna_study(_result(base_spec, tmp_path, more))  # as after a resume
    assert where == str(tmp_path / "optuna.db")
    study = optuna.load_study(study_name="kept", storage=optuna_url(str(tmp_path)))
    states = {t.user_attrs["trial_id"]: t.state.name for t in study.trials}
    assert states == {"a": "COMPLETE", "b": "PRUNED", "c": "FAIL"}  # d had not ended
    assert study.direction.name == "MAXIMIZE" and study.metric_names == ["eval_accuracy"]
    best = study.best_trial
    assert best.value == 0.9 and best.params == {"r": 8, "alpha_ratio": 2.0, "learning_rate": 3e-4}
    assert best.intermediate_values == {10: 0.5, 20: 0.9}
    assert best.user_attrs["config"] == {"r": 8, "lora_alpha": 16}
    assert not list(tmp_path.glob(".*tmp"))


def _up(server: subprocess.Popen[bytes], url: str) -> bool:
    assert server.poll() is None, "the dashboard exited"
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_optuna_dashboard_serves_the_kept_study(base_spec: dict[str, Any], tmp_path: Path) -> None:
    keep_optuna_study(_result(base_spec, tmp_path, [_trial("a", "completed", 0.9, 3e-4)]))
    port = free_port()
    cmd = [str(Path(sys.executable).with_name("optuna-dashboard")), optuna_url(str(tmp_path))]
    server = subprocess.Popen(
        [*cmd, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _up(server, f"http://127.0.0.1:{port}/api/studies"), 60, "the dashboard")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as got:
            (study,) = json.load(got)["study_summaries"]
        assert study["study_name"] == "kept"
        url = f"http://127.0.0.1:{port}/api/studies/{study['study_id']}"
        with urllib.request.urlopen(url) as got:
            trials = json.load(got)["trials"]
        assert [t["state"] for t in trials] == ["Complete"]
    finally:
        server.terminate()
        server.wait(timeout=30)
