"""Every path in a spec resolves against the spec file's folder, the way docker-compose does,
so a study means the same files from any working directory."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from lora_hpo.spec.space_params import SplitFiles
from lora_hpo.spec.spec_loader import load_spec, parse_spec
from tests.conftest import BASE_SPEC


def _write(folder: Path, data: dict[str, Any]) -> Path:
    spec = copy.deepcopy(BASE_SPEC) | {"data": data}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_list_and_mapping_files_resolve_against_the_spec_folder(
    tmp_path: Path, monkeypatch: Any
) -> None:
    project = tmp_path / "project"
    lst = _write(project, {"files": ["train.jsonl", "../shared/more.jsonl"]})
    monkeypatch.chdir(tmp_path)
    spec = load_spec(os.path.relpath(lst))
    assert spec.data.files == (
        str(project / "train.jsonl"),
        str(tmp_path / "shared" / "more.jsonl"),
    )
    mapped = _write(
        project / "b",
        {"files": {"train": "t.jsonl", "validation": ["v.jsonl"]}, "eval_split": "validation"},
    )
    monkeypatch.chdir("/")
    spec = load_spec(mapped)
    assert isinstance(spec.data.files, SplitFiles)
    assert spec.data.split_files() == {
        "train": (str(project / "b" / "t.jsonl"),),
        "validation": (str(project / "b" / "v.jsonl"),),
    }


def test_model_path_resolves_and_absolute_paths_and_uris_stay(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["model"] = {"path": "models/mine"}
    data["data"] = {"files": ["/abs/train.jsonl", "s3://bucket/eval.jsonl", "~/x.jsonl"]}
    spec = parse_spec(data, base=tmp_path)
    assert spec.model.path == str(tmp_path / "models" / "mine")
    assert spec.data.files == (
        "/abs/train.jsonl",
        "s3://bucket/eval.jsonl",
        str(Path("~/x.jsonl").expanduser()),
    )


def test_a_dict_spec_resolves_against_the_working_directory(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    data = copy.deepcopy(BASE_SPEC) | {"data": {"files": ["rows.jsonl"]}}
    assert parse_spec(data).data.files == (str(tmp_path / "rows.jsonl"),)
