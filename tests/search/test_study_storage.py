"""Reading a study's reports back from its directory (``read_results``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from lora_hpo.files.file_names import TRIAL_FILE
from lora_hpo.search.study_storage import read_results


def _trial(study: Path, steps: list[int], checkpoints: list[int]) -> None:
    trial = study / "trial_a"
    trial.mkdir(parents=True)
    rows = [{"trial_id": "a", "step": s, "eval_loss": 1.0 / s} for s in steps]
    (trial / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for i, step in enumerate(checkpoints):
        folder = trial / f"checkpoint_{i:06d}"
        folder.mkdir()
        metrics = {"step": step, "eval_loss": 1.0 / step}
        (folder / TRIAL_FILE).write_text(json.dumps({"params": {}, "metrics": metrics}))


def test_reports_end_at_the_newest_checkpoint_when_result_json_lags(tmp_path: Path) -> None:
    _trial(tmp_path, steps=[10, 20], checkpoints=[10, 20, 30])
    (rows,) = read_results(str(tmp_path))
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert rows[-1]["trial_id"] == "a" and rows[-1]["eval_loss"] == 1.0 / 30


def test_reports_in_step_with_their_checkpoints_are_left_as_they_are(tmp_path: Path) -> None:
    _trial(tmp_path, steps=[10, 20, 30], checkpoints=[20, 30])
    (rows,) = read_results(str(tmp_path))
    assert [r["step"] for r in rows] == [10, 20, 30]


def test_pruning_keeps_each_trials_newest_checkpoints(tmp_path: Path) -> None:
    from lora_hpo.search.study_storage import prune_checkpoints

    for trial, count in (("trial_a", 4), ("trial_b", 1)):
        for i in range(count):
            (tmp_path / trial / f"checkpoint_{i:06d}").mkdir(parents=True)
    (tmp_path / "trial_a" / "result.json").write_text("")
    assert prune_checkpoints(str(tmp_path), keep=2) == 2
    assert sorted(p.name for p in (tmp_path / "trial_a").iterdir()) == [
        "checkpoint_000002", "checkpoint_000003", "result.json"
    ]  # fmt: skip
    assert [p.name for p in (tmp_path / "trial_b").iterdir()] == ["checkpoint_000000"]


def test_a_storage_root_holds_a_study_only_with_the_same_spec(tmp_path: Path) -> None:
    """``run --resume-if-exists`` continues a study whose directory holds its own spec, starts
    one that is not there, and refuses another spec under the same name."""
    from lora_hpo.search.study_storage import holds_study, study_dir, write_spec
    from lora_hpo.spec.spec_errors import UsageError
    from lora_hpo.spec.spec_loader import parse_spec
    from tests.conftest import BASE_SPEC

    spec = parse_spec(BASE_SPEC)
    root = str(tmp_path)
    assert not holds_study(spec, root)
    write_spec(spec, study_dir(root, spec.name))
    assert holds_study(spec, root)
    other = parse_spec(copy.deepcopy(BASE_SPEC), overrides=["training.max_steps=40"])
    with pytest.raises(UsageError, match=r"^name: .* whose spec differs \(in training\)"):
        holds_study(other, root)
