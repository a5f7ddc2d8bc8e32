"""The search-quality bench (bench.search_quality): its budget accounting on hand-made
reports, the specs it builds, and a smoke run of one task with all four methods. Timings are
never asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.search_quality import curves, settings
from tests.conftest import REPO

CONFIG = {"r": 8, "lora_alpha": 16.0, "alpha_ratio": 2.0, "use_rslora": False}
CONFIG |= {"learning_rate": 2e-4}


def reports() -> list[curves.Report]:
    """Two trials reporting every 10 steps, interleaved; b stops at 20 (as ASHA would)."""
    return [
        curves.Report("s/a", 10, 0.5, 101.0),
        curves.Report("s/b", 10, 0.6, 102.0),
        curves.Report("s/a", 20, 0.7, 103.0),
        curves.Report("s/b", 20, math.nan, 104.0),  # a diverged trial's raw value
        curves.Report("s/a", 30, 0.8, 105.0),
    ]


def test_curve_adds_each_trials_new_steps_in_report_order() -> None:
    curve = curves.anytime_curve(reversed(reports()), "max", start=100.0)
    assert [p["trial_steps"] for p in curve] == [10, 20, 30, 40, 50]
    assert [p["best"] for p in curve] == [0.5, 0.6, 0.7, 0.7, 0.8]
    assert curve[0]["t_s"] == pytest.approx(1.0)
    assert curve[3]["value"] is None  # NaN never becomes the best, nor goes into the JSON


def test_figures_cut_the_curve_at_the_budget() -> None:
    curve = curves.anytime_curve(reports(), "max", start=100.0)
    trials = {"s/a": {"config": CONFIG | {"r": 4}}, "s/b": {"config": CONFIG}}
    f = curves.method_figures(curve, trials, budget=45)
    assert f["best_within_budget"] == 0.7 and f["best_at_end"] == 0.8
    assert (f["trial_steps_within_budget"], f["trial_steps_total"]) == (40, 50)
    assert (f["trials_within_budget"], f["trials_total"]) == (2, 2)
    assert f["best_config_within_budget"]["r"] == 4


def test_min_mode_keeps_the_lowest() -> None:
    curve = curves.anytime_curve(reports(), "min", start=100.0)
    assert curve[-1]["best"] == 0.5


def test_every_method_builds_a_valid_spec_in_every_mode() -> None:
    for mode in settings.MODES:
        tasks = {t: settings.task_settings(mode, t) for t in settings.TASKS}
        settings.check_specs(tasks, list(settings.METHODS), [0, 1])
    s = settings.task_settings("full", "minilm-bbc")
    staged = settings.method_raw("minilm-bbc", "staged", s, 0)["search"]
    assert staged["strategy"] == "staged" and staged["staged"]["r_min"] == 4
    default = settings.method_raw("minilm-bbc", "default", s, 0)
    assert default["space"]["learning_rate"] == 2e-4 and default["search"]["num_samples"] == 1


def test_searches_get_at_least_the_budget() -> None:
    """TPE + ASHA and staged are given more samples than B needs, in every mode."""
    for mode in settings.MODES:
        for task in settings.TASKS:
            s = settings.task_settings(mode, task)
            for method in ("random", "tpe_asha", "staged"):
                assert settings.least_trial_steps(s, method) >= s["budget"], (mode, task, method)


@pytest.mark.slow
def test_smoke_run_has_every_method_within_budget(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench.search_quality", "--smoke", "--tasks", "minilm-bbc"]
    cmd += ["--out", str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads((tmp_path / "search_quality.json").read_text())
    entry = data["tasks"]["minilm-bbc"]
    budget = entry["settings"]["budget"]
    assert set(entry["runs"]) == set(settings.METHODS)
    for method, runs in entry["runs"].items():
        f = runs["0"]["figures"]
        assert math.isfinite(f["best_within_budget"]), method
        assert f["trial_steps_within_budget"] <= budget, method
        assert f["trial_steps_within_budget"] <= f["trial_steps_total"], method
        assert f["best_config_within_budget"] is not None, method
    assert entry["runs"]["random"]["0"]["figures"]["trial_steps_total"] == budget
    assert entry["runs"]["default"]["0"]["figures"]["trials_total"] == 1
    assert "## Search quality" in (tmp_path / "search_quality.md").read_text()
