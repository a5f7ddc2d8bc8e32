"""The P1 overhead bench (bench.overhead.p1): its phase arithmetic on a hand-made run, and a
smoke run of both studies through the real CLI. Timings are never asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.overhead import p1
from tests.conftest import REPO


def run(study_s: float, step_s: float = 80.0) -> dict[str, Any]:
    return {"command_s": study_s + 20, "study_s": study_s, "trials": 4, "steps": 160,
            "step_s": step_s, "start_s": 4.0, "trainable_s": 100.0,
            "load_before": [0.1, 0.2, 0.3], "load_during": {"mean": 1.9, "max": 2.1}}  # fmt: skip


def test_phases_split_the_study_wall_per_slot() -> None:
    got = p1.phases(run(60.0), concurrency=2)
    assert got["p1"] == pytest.approx(60 / 40) and got["p1_command"] == pytest.approx(80 / 40)
    assert (got["step_s"], got["start_s"]) == (40.0, 2.0)
    assert got["between_s"] == pytest.approx(50 - 40 - 2)  # in the trainable, outside steps
    assert got["gaps_s"] == pytest.approx(60 - 50)  # outside any trainable
    assert got["steps_per_s"] == pytest.approx(2.0)


def test_idle_slot_time_is_split_into_lead_between_and_tail() -> None:
    # two slots: A runs 0-10, B 2-6, C 7-12 (the last start); the study ends at 14
    got = p1.idle_split([(0, 10), (2, 6), (7, 12)], (0, 14), concurrency=2)
    assert got == {"lead": 2.0, "between": 1.0, "tail": 2.0 + 2 * 2.0}


def test_the_split_columns_are_per_slot() -> None:
    r = run(60.0) | {"time_in_eval_s": 6.0, "time_in_save_s": 1.0, "time_in_report_s": 0.5,
                     "idle_s": {"lead": 4.0, "between": 2.0, "tail": 8.0}}  # fmt: skip
    got = p1.phases(r, concurrency=2)
    assert (got["time_in_eval_s"], got["time_in_save_s"], got["time_in_report_s"]) == (3, 0.5, 0.25)
    assert (got["idle_lead_s"], got["idle_between_s"], got["idle_tail_s"]) == (2, 1, 4)


def test_the_lead_is_split_at_each_first_workers_process_start() -> None:
    # the study starts at 100; workers 1 and 2 both start at 101, enter their first trials at
    # 108 and 109; worker 1 runs a second trial later; a third worker (a retry) is not lead
    def trial(pid: int, proc: float, start: float) -> list[dict[str, Any]]:
        return [{"pid": pid, "process_started_at": proc, "started_at": start}]

    # two processes may start within one clock tick: the pid tells them apart
    rows = [trial(1, 101, 130), trial(1, 101, 108), trial(2, 101, 109), trial(3, 150, 151)]
    got = p1.lead_split(rows, study_start=100.0, concurrency=2)
    assert got == {
        "lead_before_worker_s": 1 + 1,
        "lead_worker_boot_s": 7 + 8,
        "boot_before_study_s": 0,
        "workers": 3,
    }
    assert p1.lead_split([[{"started_at": 1.0}]], 0.0, 2) == {}  # reports from before the field


def test_a_worker_started_before_the_study_boots_in_it_only_from_its_start() -> None:
    # a local Ray's prestarted workers start at 90 and 92, preload, and enter at 104 and 105:
    # 4 + 5 s of boot fall in the study (from 100), 10 + 8 s before it, and no wait at all
    rows = [
        [{"pid": 1, "process_started_at": 90.0, "started_at": 104.0}],
        [{"pid": 2, "process_started_at": 92.0, "started_at": 105.0}],
    ]
    got = p1.lead_split(rows, study_start=100.0, concurrency=2)
    assert got == {
        "lead_before_worker_s": 0,
        "lead_worker_boot_s": 4 + 5,
        "boot_before_study_s": 10 + 8,
        "workers": 2,
    }


def test_the_median_run_is_the_middle_p1() -> None:
    runs = [run(90.0), run(50.0), run(70.0)]
    assert p1.median_run(runs, 2)["study_s"] == 70.0
    assert p1.median_run(runs[:2], 2)["study_s"] == 50.0  # even count: the lower middle


def test_the_cli_summary_line_gives_the_study_wall() -> None:
    found = p1.SUMMARY.search("study 'quickstart': 8 trials in 78 s (3 completed)")
    assert found is not None and found.group(2) == "78"


def test_the_quickstart_command_is_shown_beside_its_aims() -> None:
    runs = [run(80.0) | {"best": b, "stopped": s} for b, s in ((0.92, 4), (0.885, 3), (0.93, 0))]
    results = {
        "date": "2026-12-03", "git": {"commit": "abc1234", "dirty": False},
        "machine": {"nproc": 2, "cpu_model": "AMD EPYC"}, "load_before": [0.1, 0.1, 0.1],
        "concurrency": 2,
        "studies": {"quickstart": {"sets": [], "runs": runs, "median": runs[0],
                                   "metric": "eval_accuracy"}},
    }  # fmt: skip
    text = p1.render(results)
    assert "| command wall (s) | ≤ 180 | 100, 100, 100 | met |" in text
    assert "| best eval_accuracy | ≥ 0.90 | 0.920, 0.885, 0.930 | missed |" in text
    assert "| trials stopped by ASHA | ≥ 1 | 4, 3, 0 of 4 | missed |" in text
    results["studies"]["quickstart"]["sets"] = ["training.max_steps=4"]  # not as users run it
    assert "command wall (s)" not in p1.render(results)


def test_a_missed_aim_says_what_p1_would_be_without_idle_slots_and_with_eval_alone() -> None:
    r = run(60.0) | {"time_in_eval_s": 6.0, "idle_s": {"lead": 4.0, "between": 2.0, "tail": 8.0},
                     "lead_before_worker_s": 1.0, "lead_worker_boot_s": 3.0}  # fmt: skip
    results = {
        "date": "2026-12-03", "git": {"commit": "abc1234", "dirty": False},
        "machine": {"nproc": 2, "cpu_model": "AMD EPYC"}, "load_before": [0.1, 0.1, 0.1],
        "concurrency": 2, "studies": {"long": {"sets": ["x=1"], "runs": [r], "median": r}},
    }  # fmt: skip
    text = p1.render(results)  # per slot: 40 s training, 7 s idle, 3 s eval
    assert "- long, P1 1.50 against ≤ 1.15: without its idle slot time (7.0 s per slot" in text
    assert "it would be 1.32; training and evaluation alone (3.0 s per slot" in text
    assert "give 1.07." in text


@pytest.mark.slow
def test_smoke_p1_writes_both_studies(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench.overhead.p1", "--smoke", "--out", str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "p1.json").read_text())
    assert set(results["studies"]) == set(p1.AIMS)
    for name, study in results["studies"].items():
        median = study["median"]
        assert median["trials"] == 2 and median["steps"] > 0, name
        got = p1.phases(median, results["concurrency"])
        assert math.isfinite(got["p1"]) and got["time_in_eval_s"] > 0, name
        assert got["lead_worker_boot_s"] > 0 and median["workers"] >= 1, name
        assert set(median["idle_s"]) == {"lead", "between", "tail"}, name
        assert 0 <= median["best"] <= 1 and median["stopped"] == 0, name  # no scheduler
    assert "| quickstart |" in (tmp_path / "p1.md").read_text()
    assert "idle: tail" in (tmp_path / "p1.md").read_text()
