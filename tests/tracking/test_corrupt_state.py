"""A tracker state file that exists but does not parse (truncated, garbage, not an object) is
never taken for "no state" (that minted a new study key, left the old runs RUNNING and
duplicated them): ``lora-hpo run`` and ``resume`` exit 2 before Ray starts, naming the file and
the way out, and leave it untouched; the tracker itself refuses it too."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lora_hpo.files.file_names import SPEC_FILE, TRACKER_STATE
from lora_hpo.spec.spec_loader import parse_spec, spec_to_dict
from lora_hpo.tracking.mlflow_tracker import MLflowTracker
from lora_hpo.tracking.tracker_state import StateFile, StateFileError
from tests.conftest import BASE_SPEC

BROKEN = {
    "truncated": b'{\n "champion": null,\n "experiment": "t",\n "queue": [\n  {\n   "op": "lo',
    "empty": b"",
    "garbage": b"\x00\x89PNG\r\n\x1a\n\x00\x00",
    "not an object": b'[{"seq": 1}]',
    "trials not an object": b'{"seq": 3, "trials": [], "queue": []}',
}


def study_with(tmp_path: Path, content: bytes) -> Path:
    """A study directory as a killed `lora-hpo run` leaves it, with a broken tracker state."""
    folder = tmp_path / "results" / "t"
    folder.mkdir(parents=True)
    spec = spec_to_dict(parse_spec(BASE_SPEC))
    (folder / SPEC_FILE).write_text(yaml.safe_dump(spec, sort_keys=False))
    (folder / TRACKER_STATE).write_bytes(content)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(BASE_SPEC))
    return folder


@pytest.mark.parametrize("content", BROKEN.values(), ids=BROKEN.keys())
def test_a_state_that_does_not_parse_is_an_error_naming_the_file(
    tmp_path: Path, content: bytes
) -> None:
    folder = study_with(tmp_path, content)
    with pytest.raises(StateFileError) as caught:
        StateFile(str(folder)).load()
    path = str(folder / TRACKER_STATE)
    assert f"the MLflow tracker state {path} exists but does not parse" in str(caught.value)
    assert f"mv {path} {path}.corrupt" in str(caught.value)


def test_the_tracker_refuses_it_before_queueing_anything(tmp_path: Path) -> None:
    folder = study_with(tmp_path, BROKEN["truncated"])
    tracker = MLflowTracker(parse_spec(BASE_SPEC), "http://127.0.0.1:9", state_dir=str(folder))
    with pytest.raises(StateFileError, match=str(folder / TRACKER_STATE)):
        tracker.on_step_begin(0, [object()])
    assert tracker.outbox is None  # no study run opened, no new study key
    assert (folder / TRACKER_STATE).read_bytes() == BROKEN["truncated"]


@pytest.mark.parametrize("command", ["resume", "run"])
def test_the_cli_exits_2_before_ray_starts_and_leaves_the_file(
    tmp_path: Path, command: str
) -> None:
    folder = study_with(tmp_path, BROKEN["truncated"])
    state = folder / TRACKER_STATE
    before = (state.read_bytes(), state.stat().st_mtime_ns)
    argv = {
        "resume": ["resume", str(folder)],
        "run": ["run", str(tmp_path / "spec.yaml"), "--resume-if-exists"],
    }[command]
    argv += ["--storage-path", str(folder.parent)]
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "lora_hpo.cli", *argv],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, start_new_session=True,
    )  # fmt: skip
    took = time.monotonic() - t0
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Ray" not in done.stdout + done.stderr
    assert done.stderr.startswith(f"error: the MLflow tracker state {state} exists but does")
    assert f"mv {state} {state}.corrupt" in done.stderr
    assert (state.read_bytes(), state.stat().st_mtime_ns) == before
    assert [p.name for p in folder.iterdir() if "mlflow" in p.name] == [TRACKER_STATE]
    print(f"\n{command}: exit 2 in {took:.1f} s (Python imports; no Ray started)")
