"""A packed study (``search.pack: 2``) through the CLI, on a real Ray runtime and a real MLflow
server: every adapter is its own trial (one MLflow run each, ASHA stopping some at their
rung), the searcher suggests what it suggests unpacked, and the champion exports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli_process import lora_hpo
from tests.conftest import tiny_study

pytestmark = pytest.mark.slow


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return lora_hpo(cwd, *args)


def _trial_runs(uri: str, experiment: str) -> list[Any]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return list(client.search_runs([exp.experiment_id], "tags.`lora_hpo.role` = 'trial'"))


def _configs(runs: list[Any]) -> list[tuple[str, str, str]]:
    keys = ("r", "alpha_ratio", "learning_rate")
    return sorted(tuple(r.data.params[k] for k in keys) for r in runs)  # type: ignore[misc]


def test_packed_trials_are_each_a_trial_with_its_own_run(
    tiny_assets: Path, tmp_path: Path, mlflow_server: Any
) -> None:
    # ASHA (Ray's: asynchronous) stops a trial at step 5 unless it beats the 75th percentile of
    # those already there; all eight pass only in a rare arrival order (1 in 1,500 when simulated)
    asha = {"type": "asha", "grace_period": 5, "reduction_factor": 4}
    over = {"search.num_samples": 8, "search.sampler": "random", "search.max_concurrent": 4,
            "search.scheduler": asha}  # fmt: skip
    specs = {}
    for name, pack in (("packed", 2), ("unpacked", 1)):
        data = tiny_study(tiny_assets, **over, **{"search.pack": pack}) | {"name": name}
        specs[name] = tmp_path / f"{name}.yaml"
        specs[name].write_text(yaml.safe_dump(data))
    track = ["--tracking-uri", mlflow_server.uri, "--storage-path", str(tmp_path / "studies")]
    shown = _cli(tmp_path, "validate", str(specs["packed"])).stdout
    assert "4 trials at once in 2 pack(s) of up to 2" in shown

    proc = _cli(tmp_path, "run", str(specs["packed"]), *track)
    out = proc.stdout
    # the packed clients relay reports quietly: Ray Train's per-checkpoint info lines stay out
    assert "Checkpoint successfully created" not in out + proc.stderr
    runs = _trial_runs(mlflow_server.uri, "packed")
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs)
    ids = [r.data.tags["lora_hpo.trial_id"] for r in runs]
    assert len(set(ids)) == 8, ids
    statuses = [r.data.tags.get("status") for r in runs]
    assert "completed" in statuses and "stopped_early" in statuses, statuses
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.uri)
    for run in runs:  # eval_every 5; ASHA's rung at 5
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "eval_loss")]
        assert steps == [5, 10, 15, 20][: len(steps)], steps
        stopped = run.data.tags["status"] == "stopped_early"
        assert steps[-1] == (5 if stopped else 20), (run.data.tags["status"], steps)
    from lora_hpo.search.study_storage import read_results

    pids = {
        row["pack_pid"]
        for rows in read_results(str(tmp_path / "studies" / "packed"))
        for row in rows
    }
    assert len(pids) == 2 and None not in pids, pids  # two packs of two held the eight trials
    print(out[-1500:])

    _cli(tmp_path, "run", str(specs["unpacked"]), *track)
    assert _configs(runs) == _configs(_trial_runs(mlflow_server.uri, "unpacked"))

    _cli(tmp_path, "export", "--experiment", "packed", "--out", "bundle", *track[:2])
    assert (tmp_path / "bundle" / "adapter_config.json").is_file()


def test_a_killed_packed_study_resumes_every_trial_from_its_checkpoint(
    tiny_assets: Path, tmp_path: Path
) -> None:
    """kill -9 of the driver (and with it the packs) mid-study; ``resume`` starts new packs,
    and each unfinished trial hands its checkpoint to one of them and runs to the end."""
    from lora_hpo.search.study_storage import read_results
    from tests.live_driver import LiveDriver

    over = {"search.num_samples": 6, "training.max_steps": 30, "search.pack": 2,
            "search.max_concurrent": 4, "search.scheduler": {"type": "none"}}  # fmt: skip
    spec_file, storage = tmp_path / "tiny.yaml", tmp_path / "results"
    spec_file.write_text(yaml.safe_dump(tiny_study(tiny_assets, **over)))

    def last_steps() -> list[int]:
        return sorted(rows[-1]["step"] for rows in read_results(str(storage / "tiny")))

    driver = LiveDriver(
        [sys.executable, "-m", "lora_hpo.cli", "run", str(spec_file), "--storage-path",
         str(storage)], tmp_path,  # where resume runs too: one MLflow store (./mlflow.db)
    )  # fmt: skip
    # kill -9 at the first trial done: the packs' other adapters are part-way, two not begun
    driver.kill_when(lambda s: any(st == "completed" for _, st in s.values()), 240)
    done = [t for t, (_, st) in driver.steps().items() if st == "completed"]
    assert 0 < len(done) < 6, driver.lines[-30:]
    _cli(tmp_path, "resume", "tiny", "--storage-path", str(storage))
    assert last_steps() == [30] * 6
    statuses = [rows[-1]["status"] for rows in read_results(str(storage / "tiny"))]
    assert statuses == ["completed"] * 6, statuses  # as uninterrupted: none reads as diverged
    for rows in read_results(str(storage / "tiny")):  # resumed, not restarted: steps go on
        steps = [r["step"] for r in rows]
        assert steps == sorted(steps), steps
