"""bench/gpu_check.sh keeps working: its --cpu smoke mode runs every case (tiny sizes on the
CPU) and writes a row for each. Timings are never asserted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_the_cpu_smoke_run_reports_every_case(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_check.sh"), "--cpu", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["case"] for r in rows] == [
        "quickstart", "bf16", "qlora-4bit", "shared-gpu", "packed", "unpacked-shared"
    ]  # fmt: skip
    for row in rows:
        trials = 1 if row["case"] in ("bf16", "qlora-4bit") else 2  # the others: 2 at once
        assert row["trials"] == trials and row["best"] is not None and row["steps_per_s"] > 0, row
    assert "| case | trials | steps/s" in done.stdout
