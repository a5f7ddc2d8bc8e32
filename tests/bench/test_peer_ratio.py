"""The peer-ratio bench (bench.overhead.peer_ratio): its section on a hand-made result. The
parts it runs are the full overhead bench's, whose smoke run tests/bench/test_run.py covers."""

from __future__ import annotations

from typing import Any

import pytest

from bench.overhead import figures, peer_ratio
from bench.overhead.settings import MODES, TASK, build_spec
from lora_hpo.spec.schedule import eval_steps


def study(wall: float) -> dict[str, Any]:
    return {"wall_s": wall, "trials": 8, "trial_steps": 300, "in_step_s": 120.0,
            "in_trial_other_s": 20.0, "outside_trials_s": 30.0, "s_per_step": 0.4, "concurrency": 2,
            "best": 0.9}  # fmt: skip


def section_input() -> dict[str, Any]:
    settings = {"trials": 8, "max_steps": 60, "grace_period": 10, "reduction_factor": 3,
                "max_length": 128, "batch_size": 16, "concurrency": 2,
                "eval_every": 10}  # fmt: skip
    return {
        "date": "2026-12-02",
        "git": {"commit": "abc1234", "dirty": False},
        "machine": {"nproc": 2},
        "load_before": [0.2, 0.3, 0.4],
        "settings": settings,
        "ratios": [0.9, 0.5, 0.7],
        "process_ratios": [0.8, 0.6, 0.7],
        "breakdowns": [{"lora_same": study(70.0), "peer_ray": study(100.0)}] * 3,
        "loads": [{"lora_same": 1.9, "peer_ray": 2.0}] * 3,
        "parts": [{n: {"part": {"load_before": [0.45, 0.6, 0.7]}} for n in peer_ratio.PARTS}] * 3,
    }


def test_the_section_gives_the_median_ratio_beside_its_aim() -> None:
    text = peer_ratio.render(section_input())
    assert "**0.70** (aim ≤ 0.6: missed" in text
    assert text.count("| lora_same (") == 3 and "| peer_ray (3) | 100.0 |" in text
    assert "each part began at a 1-minute load of 0.45 to 0.45." in text
    assert "| load at start | load during (mean) |" in text and "| 0.45 | 2.00 |" in text
    assert "in each repeat: 0.70, 0.70, 0.70 (median 0.70)." in text  # equal trial-steps
    # the median repeat is the 3rd (0.7); its training alone, 120 s / 2, is 0.6 of the peer's 100
    assert "in the median repeat (3): lora-hpo's in-step training time alone" in text
    assert "60.0 s, 0.60 of the peer's wall" in text and "rendered again" not in text
    assert "Where each side's wall went" not in text  # no phases recorded (an older JSON)


def test_phases_split_each_wall_from_the_trials_times() -> None:
    ours = {"start": 0.0, "wall_s": 40.0, "fit_wall_s": 30.0, "best": 0.9, "trials": [
        {"step": 10, "step_time_s": 10.0, "start_s": 2.0, "started_at": 12.0,
         "reported_at": 28.0, "time_in_eval_s": 3.0},
        {"step": 10, "step_time_s": 10.0, "start_s": 1.0, "started_at": 11.0,
         "reported_at": 26.0, "time_in_eval_s": 3.0}]}  # fmt: skip
    b = figures.breakdown(ours, 2)
    # set-up to the first trial's entry 11; starts 3/2; steps 20/2; eval 6/2; spans 14 + 14 s
    assert b["phases"] == pytest.approx({"set_up": 11.0, "trial_start": 1.5, "training": 10.0,
        "eval": 3.0, "checkpoint_report": 1.0, "scheduling_idle": 13.5})  # fmt: skip
    peer = {"backend": "ray", "start": 0.0, "wall_s": 50.0, "best": 0.9, "trials": [
        {"steps": 10, "step_time_s": 10.0, "eval_s": 4.0, "init_at": 20.0,
         "first_step_at": 24.0, "updated_at": 40.0}] * 2}  # fmt: skip
    b = figures.breakdown(peer, 2)
    assert b["phases"]["set_up"] == 20.0 and b["phases"]["trial_start"] == 4.0
    assert b["phases"]["checkpoint_report"] == pytest.approx(2.0)  # 16 s span: 10 steps, 4 eval
    assert sum(b["phases"].values()) == pytest.approx(50.0)
    old = {k: v for k, v in peer["trials"][0].items() if k != "init_at"}  # an older JSON
    assert "phases" not in figures.breakdown(peer | {"trials": [old]}, 2)


def test_a_missed_aim_says_where_each_wall_went() -> None:
    result = section_input()
    split = {"set_up": 10.0, "trial_start": 5.0, "training": 40.0, "eval": 8.0,
             "checkpoint_report": 2.0, "scheduling_idle": 5.0}  # fmt: skip
    ours = study(70.0) | {"phases": split}
    peer = study(100.0) | {"phases": split | {"set_up": 40.0}}
    result["breakdowns"] = [{"lora_same": ours, "peer_ray": peer}] * 3
    text = peer_ratio.render(result)
    assert "Where each side's wall went, in the median repeat (3)" in text
    assert "| set-up: until the first trial's code runs (imports, Ray, data, model) | 10.0 | " \
        "40.0 | -30.0 |" in text  # fmt: skip
    assert "| wall | 70.0 | 100.0 | -30.0 |" in text
    # the aim: 0.6 x 100 = 60 s, 10 s less than 70; training and eval 48 s, 0.48 of the peer
    assert "wall at ≤ 60.0 s in this repeat, 10.0 s less than it took" in text
    assert "take 48.0 s, 0.48 of the peer's wall; everything else" in text
    assert "takes 22.0 s." in text


def test_lora_hpo_evaluates_where_its_asha_reads_and_the_peer_on_its_grid() -> None:
    s = MODES["full"] | TASK
    assert eval_steps(build_spec("same", s)) == (10, 30, 60)  # grace 10, rf 3, max 60
    assert build_spec("no-asha", s).training.eval_every == s["eval_every"]


def test_another_sequence_length_is_named_in_the_title() -> None:
    assert peer_ratio._title(128).endswith("(`python -m bench.overhead.peer_ratio`)")
    title = peer_ratio._title(32)
    assert "at sequence length 32" in title and "--max-length 32`)" in title
