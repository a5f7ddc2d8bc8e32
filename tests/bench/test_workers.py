"""The prestarted-workers bench (bench.overhead.workers): its finding on hand-made runs, and a
smoke run on real local Ray runtimes. The smoke run asserts where each kind of work started,
which is what RESULTS.md's explanation of P1's lead rests on; timings are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.overhead import workers
from tests.conftest import REPO


def runs(**reused: bool) -> list[dict[str, object]]:
    names = {"actor": "actor", "env": "actor+env", "tune": "tune trial", "ours": "lora-hpo trial"}
    return [{"kind": names[k], "reused": v, "s": 1.0} for k, v in reused.items()]


def test_the_finding_names_tunes_runtime_env_only_when_the_runs_show_it() -> None:
    found = workers.finding(runs(actor=True, env=False, tune=False, ours=True))
    assert "Ray Tune gives every trainable actor one" in found
    assert "as lora-hpo runs it on a local Ray" in found
    for mixed in (
        runs(actor=True, env=True, tune=False, ours=True),
        runs(actor=True, env=False, tune=False, ours=False),
    ):
        assert workers.finding(mixed).startswith("The runs do not show one pattern")


@pytest.mark.slow
def test_smoke_run_shows_where_each_kind_of_work_starts(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench.overhead.workers", "--smoke", "--out", str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "workers.json").read_text())
    got = {r["kind"]: r["reused"] for r in results["runs"]}
    assert got == {"actor": True, "actor+env": False, "tune trial": False, "lora-hpo trial": True}
    assert all(r["prestarted"] == workers.CPUS for r in results["runs"])
    md = (tmp_path / "workers.md").read_text()
    assert "| actor | 1 of 1 runs |" in md and results["finding"] in md
