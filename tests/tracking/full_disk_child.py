"""The child process of ``test_full_disk.py``: in a private mount namespace, it mounts a small
tmpfs, keeps a study's tracker state there, fills the disk, goes on tracking, frees the disk,
and prints (as one JSON line) what it saw. ``URI`` ``-``: records go to a list, and the server
is down while the disk is full (they can only wait in memory); else to that MLflow server."""

from __future__ import annotations

import json
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from lora_hpo.files.file_names import TRACKER_STATE
from lora_hpo.tracking.mlflow_store import classify
from lora_hpo.tracking.record_outbox import Outbox
from lora_hpo.tracking.record_writer import Writer
from lora_hpo.tracking.tracker_state import StateFile
from tests.full_disk import fill, mount_small_tmpfs
from tests.tracking.told_lines import Told

STEPS = 12


def main() -> None:
    disk, uri, experiment = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    mount_small_tmpfs(disk)
    study = disk / "study"
    state: dict[str, Any] = {"study_key": uuid.uuid4().hex, "study": experiment, "trials": {}}
    state |= {"experiment_id": None, "parent_run_id": None}
    lock, down, sent = threading.RLock(), threading.Event(), []

    def to_list(record: dict[str, Any]) -> None:
        if down.is_set():
            raise ConnectionRefusedError("connection refused")
        sent.append(record["seq"])

    send = to_list if uri == "-" else Writer(uri, None, state, lock, (experiment,) * 2, "x: 1\n")
    told, seen = Told(), dict[str, Any]()
    box = Outbox(state, StateFile(str(study)), send, classify, uri, told, retry_s=0.05, lock=lock)
    box.start()

    def on_disk() -> dict[str, Any]:
        names = sorted(p.name for p in study.iterdir())
        saved = json.loads((study / TRACKER_STATE).read_text())
        return {"files": names, "seq": saved["seq"], "queue": [r["seq"] for r in saved["queue"]]}

    box.put({"op": "open_study", "params": {}, "tags": {"lora_hpo.role": "study"}})
    state["trials"]["a"] = {"run_id": None, "step": -1, "closed": False}
    box.put({"op": "open_trial", "trial": "a", "params": {"r": 8}, "tags": {}})
    if uri == "-":
        down.set()
        told.wait_for("is unreachable")
    filler = fill(disk)
    for step in range(1, STEPS):  # each save fails: the study goes on, the user is told once
        box.put({"op": "log", "trial": "a", "step": step, "ts": step, "metrics": {"loss": step}})
    told.wait_for("could not write the tracker state")
    seen["full"] = on_disk() | {"in_memory": [r["seq"] for r in box.queue]}
    filler.unlink()
    box.put({"op": "log", "trial": "a", "step": STEPS, "ts": STEPS, "metrics": {"loss": STEPS}})
    seen["freed"] = on_disk()
    down.clear()
    box.drain(60)
    seen["end"] = on_disk() | {"run_id": state["trials"]["a"].get("run_id"), "sent": sent}
    seen |= {"told": told.lines, "stats": box.stats, "seq": state["seq"]}
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
