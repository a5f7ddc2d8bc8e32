"""The tabular recorder (bench.tabular.record, bench.tabular.table's format): rows from
reports, resuming (complete trials kept, a trial cut off mid-write recorded again), and one
smoke recording of MiniLM for real, resumed. Timings are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.tabular import grid, record
from bench.tabular.table import COLUMNS, complete_rows, read_rows, write_rows
from tests.conftest import REPO

CFG = grid.Config(8, 2.0, False, 2e-4)


def rows_of(config: grid.Config, steps: list[int], last: str) -> list[dict[str, object]]:
    report = {"lora_alpha": 16.0, "effective_scale": 2.0, "step_time_s": 1.0,
              "eval_accuracy_raw": 0.5, "eval_accuracy": 0.5, "eval_loss": 1.2}  # fmt: skip
    out = []
    for i, s in enumerate(steps):
        status = last if i == len(steps) - 1 else "running"
        out.append(record._row("minilm-bbc", config, report | {"step": s, "status": status}, 2.0))
    return out


def test_a_row_has_every_column_and_the_task_metric() -> None:
    row = rows_of(CFG, [10], "completed")[0]
    assert set(row) == set(COLUMNS)
    assert row["value"] == 0.5 and row["step_size"] == pytest.approx(4e-4)
    assert row["config"] == "r8-a2-rs0-lr0.0002"


def test_resume_keeps_complete_trials_and_drops_a_cut_one(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    other = grid.Config(4, 2.0, False, 2e-4)
    record.append(path, rows_of(CFG, [10, 20, 30, 40], "completed"))
    record.append(path, rows_of(other, [10, 20], "running"))  # its trial never ended
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("minilm-bbc,r16-a2-rs0-lr0.0002,16,2")  # a line cut off mid-write
    rows = read_rows(path)
    assert len(rows) == 6
    kept = complete_rows(rows)
    assert {r["config"] for r in kept} == {CFG.id}
    todo = record.pending(["minilm-bbc"], False, {("minilm-bbc", CFG.id)})
    assert len(todo) == 159 and CFG.id not in {c.id for _, c in todo}


def test_rows_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    with open(path, "w", encoding="utf-8") as fh:
        write_rows(fh, rows_of(CFG, [10, 20], "diverged"), header=True)
    back = read_rows(path)
    assert [r["status"] for r in back] == ["running", "diverged"] and back[0]["use_rslora"] == "0"


@pytest.mark.slow
def test_smoke_recording_then_resume(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench.tabular.record", "--smoke", "--tasks", "minilm-bbc"]
    cmd += ["--out", str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = read_rows(tmp_path / "table-smoke.csv")
    assert len({r["config"] for r in rows}) == 4 and {r["step"] for r in rows} == {"2", "4"}
    side = json.loads((tmp_path / "table-smoke.json").read_text())
    assert side["complete"] and side["rows"] == len(rows) and side["step_rate"]["minilm-bbc"] > 0
    assert side["sessions"][0]["versions"]["torch"]
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "recording 0 configs" in again.stdout
    assert len(read_rows(tmp_path / "table-smoke.csv")) == len(rows)
    assert len(json.loads((tmp_path / "table-smoke.json").read_text())["sessions"]) == 2
