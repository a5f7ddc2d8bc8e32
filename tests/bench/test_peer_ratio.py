"""The peer-ratio bench (bench.overhead.peer_ratio): its section on a hand-made result. The
parts it runs are the full overhead bench's, whose smoke run tests/bench/test_run.py covers."""

from __future__ import annotations

from typing import Any

from bench.overhead import peer_ratio
from bench.overhead.settings import MODES, TASK, build_spec
from lora_hpo.spec.schedule import eval_steps


def study(wall: float) -> dict[str, Any]:
    return {"wall_s": wall, "trials": 8, "trial_steps": 300, "in_step_s": 120.0,
            "in_trial_other_s": 20.0, "outside_trials_s": 30.0, "s_per_step": 0.4, "concurrency": 2,
            "best": 0.9}  # fmt: skip


def test_the_section_gives_the_median_ratio_beside_its_aim() -> None:
    settings = {"trials": 8, "max_steps": 60, "grace_period": 10, "reduction_factor": 3,
                "max_length": 128, "batch_size": 16, "concurrency": 2,
                "eval_every": 10}  # fmt: skip
    result = {
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
    text = peer_ratio.render(result)
    assert "**0.70** (aim ≤ 0.6: missed" in text
    assert text.count("| lora_same (") == 3 and "| peer_ray (3) | 100.0 |" in text
    assert "each part began at a 1-minute load of 0.45 to 0.45." in text
    assert "| load at start | load during (mean) |" in text and "| 0.45 | 2.00 |" in text
    assert "in each repeat: 0.70, 0.70, 0.70 (median 0.70)." in text  # equal trial-steps
    # the median repeat is the 3rd (0.7); its training alone, 120 s / 2, is 0.6 of the peer's 100
    assert "in the median repeat (3): lora-hpo's in-step training time alone" in text
    assert "60.0 s, 0.60 of the peer's wall" in text and "rendered again" not in text


def test_lora_hpo_evaluates_where_its_asha_reads_and_the_peer_on_its_grid() -> None:
    s = MODES["full"] | TASK
    assert eval_steps(build_spec("same", s)) == (10, 30, 60)  # grace 10, rf 3, max 60
    assert build_spec("no-asha", s).training.eval_every == s["eval_every"]


def test_another_sequence_length_is_named_in_the_title() -> None:
    assert peer_ratio._title(128).endswith("(`python -m bench.overhead.peer_ratio`)")
    title = peer_ratio._title(32)
    assert "at sequence length 32" in title and "--max-length 32`)" in title
