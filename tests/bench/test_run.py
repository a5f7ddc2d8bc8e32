"""The overhead bench (bench.overhead): the smoke run completes and writes every figure; the
figure and report code works on a small hand-made result. Timings are never asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.overhead import figures
from bench.overhead import render as report
from tests.conftest import REPO

CONFIG = {"r": 8, "alpha_ratio": 2.0, "use_rslora": False, "learning_rate": 1e-3}


def lora_part(steps: list[int], best: float) -> dict[str, Any]:
    trials = []
    for i, step in enumerate(steps):
        pid = 100 + i % 2
        t = {"params": CONFIG, "step": step, "step_time_s": step * 0.5, "start_s": 2.0 - i // 2}
        trials.append(t | {"pid": pid, "started_at": 10.0 * i, "reported_at": 10.0 * i + 8})
    reports = [{"eval_accuracy": best, "reported_at": 30.0}]
    return {"start": 0.0, "wall_s": 50.0, "fit_wall_s": 45.0, "concurrency": 2, "best": best,
            "trials": trials, "reports": reports}  # fmt: skip


def peer_part(backend: str) -> dict[str, Any]:
    trial = {"params": CONFIG, "steps": 4, "step_time_s": 2.0, "eval_s": 1.0, "pid": 7}
    trial |= {"first_step_at": 5.0, "updated_at": 9.0}
    return {"backend": backend, "start": 0.0, "wall_s": 60.0, "best": 0.5, "trials": [trial] * 4}


def fake_results() -> dict[str, Any]:
    parts = {
        "lora_same": lora_part([4, 2, 4, 2], 0.5),
        "lora_no_asha": lora_part([4, 4, 4, 4], 0.5),
        "lora_recommended": lora_part([4, 4, 2, 2], 0.6),
        "peer_ray": peer_part("ray"),
        "peer_optuna": peer_part("optuna"),
        "quickstart": {"wall_s": 100.0, "best": 0.9, "trials": 8},
    }
    part_info = {"wall_s": 1.0, "load_before": [1.0] * 3, "load_after": [2.0] * 3}
    for p in parts.values():
        p["part"] = part_info
    conc = {name: 2 for name in parts} | {"peer_optuna": 1}
    settings = {"eval_fraction": 0.15, "max_eval_samples": 32, "max_train_samples": 64,
                "max_length": 32, "batch_size": 8, "eval_batch_size": 16, "max_steps": 4,
                "eval_every": 2, "trials": 4, "concurrency": 2, "seed": 0, "grace_period": 2,
                "reduction_factor": 2, "recommended_grace_period": 2, "repeats": 1}  # fmt: skip
    return {
        "mode": "test", "command": "python -m bench.overhead", "date": "today",
        "git": {"commit": "abc", "dirty": False},
        "machine": {"nproc": 2, "cpu_model": "cpu", "ram_gib": 1.0},
        "versions": {"torch": "x"}, "load_before": [1.0] * 3, "load_after": [1.0] * 3,
        "settings": settings, "concurrency": conc,
        "figures": figures.compute([parts], conc), "breakdowns": figures.breakdowns([parts], conc),
        "parts": [parts],
    }  # fmt: skip


def test_figures_on_a_hand_made_result() -> None:
    fig = fake_results()["figures"]
    assert set(fig) == set(figures.AIMS)
    assert fig["asha_steps"]["value"] == pytest.approx(12 / 16)
    assert fig["asha_steps"]["repeats"][0]["same_configs"]
    assert fig["trial_start"]["value"] == pytest.approx(1.0 / 2.0)
    assert fig["time_to_target_vs_ray"]["value"] == pytest.approx(30 / 60)
    assert fig["time_to_target_vs_ray"]["repeats"][0]["reached"]


def test_report_renders_every_figure() -> None:
    md = report.render(fake_results())
    for name in figures.AIMS:
        assert f"| {name} |" in md


def test_same_configs_compares_rounded_draws() -> None:
    drifted = CONFIG | {"learning_rate": 1e-3 * (1 + 1e-12)}
    assert figures.same_configs([CONFIG], [drifted])
    assert not figures.same_configs([CONFIG], [CONFIG | {"r": 4}])


@pytest.mark.slow
def test_smoke_bench_writes_every_figure(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench.overhead", "--smoke", "--out", str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    for name in figures.AIMS:
        assert math.isfinite(results["figures"][name]["value"]), name
    for name in ("lora_same", "peer_ray"):  # the peer-ratio section's split of each wall
        b = results["breakdowns"][0][name]
        assert set(b["phases"]) == set(figures.PHASES), name
        assert math.isclose(sum(b["phases"].values()), b["wall_s"]), name
        assert all(b["phases"][k] > 0 for k in ("set_up", "trial_start", "training", "eval"))
    assert (tmp_path / "RESULTS.md").is_file()
