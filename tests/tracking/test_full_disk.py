"""A full disk under the tracker state (a real ENOSPC: a 256 KiB tmpfs in a private mount
namespace, filled; ``tests/tracking/full_disk_child.py``): the study goes on, the records wait
in memory, the user is told once, no stray temporary file is left, and once space returns the
next save writes everything and every record reaches MLflow, in order."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from lora_hpo.files.file_names import TRACKER_STATE
from tests.full_disk import CAN_MOUNT, WHY_NOT, run_unshared
from tests.tracking.full_disk_child import STEPS

pytestmark = pytest.mark.skipif(not CAN_MOUNT, reason=WHY_NOT)
CHILD = "from tests.tracking.full_disk_child import main; main()"
RECORDS = list(range(1, STEPS + 3))  # open_study, open_trial, then one log per step


def run_child(tmp_path: Path, uri: str, experiment: str = "-") -> dict[str, Any]:
    done = run_unshared(CHILD, str(tmp_path / "disk"), uri, experiment)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert not any((tmp_path / "disk").iterdir())  # the tmpfs was the child's alone
    seen: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return seen


def check_disk(seen: dict[str, Any]) -> None:
    """Stale while full, whole once freed, empty at the end; never a .tmp beside it."""
    full, freed, end = seen["full"], seen["freed"], seen["end"]
    for when in (full, freed, end):
        assert when["files"] == [TRACKER_STATE], when  # no .lora_hpo_mlflow.json.<pid>.tmp
    assert full["seq"] == 2 and full["in_memory"][-1] == STEPS + 1  # saves failed, puts did not
    assert freed["seq"] == seen["seq"] == STEPS + 2  # the first save after: everything
    assert end["queue"] == [] and seen["stats"]["dropped"] == 0
    assert seen["stats"]["failed_saves"] >= STEPS - 1
    full_lines = [line for line in seen["told"] if "could not write the tracker state" in line]
    assert len(full_lines) == 1, seen["told"]
    line = full_lines[0]
    assert f"/study/{TRACKER_STATE}" in line and "No space left on device" in line, line
    assert "kept in memory until space returns" in line, line
    assert sum("is written to" in x and "again" in x for x in seen["told"]) == 1, seen["told"]


def test_a_full_disk_while_the_server_is_down_keeps_every_record(tmp_path: Path) -> None:
    seen = run_child(tmp_path, "-")
    check_disk(seen)
    full, freed = seen["full"], seen["freed"]
    assert full["queue"] == [1, 2] and full["in_memory"] == RECORDS[:-1]  # none sent: down
    assert freed["queue"] == RECORDS  # written whole, in order, when space returned
    assert seen["end"]["sent"] == RECORDS  # then each sent once, in order


@pytest.mark.slow  # the session's mlflow server takes ~10 s to start
def test_a_full_disk_loses_no_record_on_a_real_server(mlflow_server: Any, tmp_path: Path) -> None:
    experiment = f"full-disk-{uuid.uuid4().hex[:6]}"
    seen = run_child(tmp_path, mlflow_server.uri, experiment)
    check_disk(seen)
    history = MlflowClient(mlflow_server.uri).get_metric_history(seen["end"]["run_id"], "loss")
    assert sorted((m.step, m.value) for m in history) == [(s, s) for s in range(1, STEPS + 1)]
