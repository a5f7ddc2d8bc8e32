"""The one status rule and the one ranking rule."""

from __future__ import annotations

import math

from lora_hpo.spec.trial_outcome import RANKED, ranked, trial_status


def test_status_from_tune_and_the_last_report() -> None:
    assert trial_status("TERMINATED", {"step": 20}, 20) == "completed"
    assert trial_status("TERMINATED", {"step": 10}, 20) == "stopped_early"
    assert trial_status("TERMINATED", {"step": 5, "status": "diverged"}, 20) == "diverged"
    assert trial_status("ERROR", {"step": 5}, 20) == "failed"
    assert trial_status("PENDING", None, 20) == "pending"
    assert trial_status("RUNNING", {"step": 5}, 20) == "running"


def test_only_completed_and_stopped_trials_with_a_finite_value_rank() -> None:
    trials = [
        ("a", "completed", 0.80),
        ("b", "diverged", 0.99),  # a diverged trial never ranks, whatever it reported
        ("c", "failed", 0.95),
        ("d", "stopped_early", 0.85),
        ("e", "completed", math.nan),
        ("f", "running", 0.90),
        ("g", "completed", None),
    ]
    best = ranked(trials, lambda t: t, "max")
    assert [t[0] for t in best] == ["d", "a"]
    assert RANKED == ("completed", "stopped_early")


def test_ties_go_to_the_completed_trial_then_the_trial_id() -> None:
    trials = [("z", "stopped_early", 1.0), ("y", "completed", 1.0), ("x", "completed", 1.0)]
    assert [t[0] for t in ranked(trials, lambda t: t, "min")] == ["x", "y", "z"]
    assert [t[0] for t in ranked(trials, lambda t: t, "max")] == ["x", "y", "z"]


def test_mode_min_puts_the_lowest_first() -> None:
    trials = [("a", "completed", 2.0), ("b", "completed", 1.0), ("c", "stopped_early", 3.0)]
    assert [t[0] for t in ranked(trials, lambda t: t, "min")] == ["b", "a", "c"]
