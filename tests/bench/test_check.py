"""The real-study check of the simulator (bench.tabular.check): each method's study as the CLI
gets it, and a smoke run of the top two MiniLM methods through ``lora-hpo run`` and
``lora-hpo best``. Timings are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.tabular import check
from bench.tabular.grid import task_settings
from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import REPO


def test_each_method_runs_its_sampler_scheduler_and_trial_count() -> None:
    settings = task_settings("minilm-bbc")
    step = parse_spec(check.method_data("minilm-bbc", settings, "tpe_step", 3, 31), "t")
    assert (step.search.sampler, step.search.seed, step.search.num_samples) == ("tpe", 3, 31)
    assert step.search.scheduler.type == "none" and step.space.step_size is not None
    staged = parse_spec(check.method_data("minilm-bbc", settings, "staged+asha", 0, 38), "t")
    assert staged.search.strategy == "staged" and staged.search.scheduler.type == "asha"
    sweep = check.methods.STAGE1_SAMPLES * len(settings["grid"]["r"])
    assert staged.search.staged.stage2_samples == 38 - sweep
    small = check.method_data("minilm-bbc", task_settings("minilm-bbc", True), "staged", 0, 2)
    st = small["search"]["staged"]
    assert (st["samples_per_rank"], st["stage2_samples"]) == (2, 2)  # smoke: one wave a rank
    assert staged.name == "check-minilm-bbc-staged-asha" == staged.experiment


@pytest.mark.slow
def test_smoke_check_runs_the_top_two_methods_for_real(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench.tabular.check", "--smoke", "--tasks", "minilm-bbc"]
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads((tmp_path / "check.json").read_text())["tasks"]["minilm-bbc"]
    results = json.loads(check.RESULTS.read_text())["tasks"]["minilm-bbc"]["methods"]
    assert [m["variant"] for m in out["methods"]] == check.top_two(results)
    for m in out["methods"]:
        assert m["trials"] >= 2 and m["trial_steps"] > 0 and m["regret"] is not None
    assert "| minilm-bbc |" in (tmp_path / "check.md").read_text()


def test_kept_runs_are_reused_and_not_run_again(tmp_path: Path) -> None:
    import argparse

    results = json.loads(check.RESULTS.read_text())
    top = check.top_two(results["tasks"]["minilm-bbc"]["methods"])
    kept = {"methods": [{"variant": v, "regret": 0.01 * i} for i, v in enumerate(top, 1)]}
    args = argparse.Namespace(smoke=True, table=check.TABLE, seed=0, out=tmp_path, methods="")
    got = check.check_task("minilm-bbc", results, args, kept)
    assert got["methods"] == kept["methods"] and got["ranking_holds"] is True
    assert not (tmp_path / "work").exists()  # nothing ran
