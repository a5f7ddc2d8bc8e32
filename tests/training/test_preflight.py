"""The preflight on the driver: what a trial would find wrong, found in seconds with the
field named; the real model config, tokenizer and data loaders run."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.training.preflight import preflight
from tests.conftest import BASE_SPEC

pytestmark = pytest.mark.slow  # real tokenizers and configs: a few seconds each


def _spec(**sections: Any) -> Any:
    data = copy.deepcopy(BASE_SPEC)
    for key, value in sections.items():
        data[key] = value
    return parse_spec(data)


def _rows(path: Path, labels: list[str]) -> str:
    path.write_text(
        "\n".join(json.dumps({"text": f"row {i}", "label": x}) for i, x in enumerate(labels))
    )
    return str(path)


def test_the_demo_study_passes_and_says_what_it_checked() -> None:
    report = preflight(_spec())
    assert report.labels == 5 and report.train_rows > report.eval_rows > 0
    assert report.line().startswith("preflight: model, tokenizer, data (")


def test_a_hub_model_that_is_not_cached_fails_at_once_naming_the_field() -> None:
    with pytest.raises(UsageError, match=r"model\.hub: 'nobody/no-such-model' is not in the local"):
        preflight(_spec(model={"hub": "nobody/no-such-model"}))


def test_target_modules_that_match_nothing_list_the_model_names() -> None:
    space = copy.deepcopy(BASE_SPEC["space"]) | {"target_modules": ["q_proj", "v_proj"]}
    with pytest.raises(UsageError, match=r"space\.target_modules: .*'query'"):
        preflight(_spec(space=space))


def test_one_class_and_an_unseen_eval_label_are_refused(tmp_path: Path) -> None:
    one = _rows(tmp_path / "one.jsonl", ["a"] * 20)
    with pytest.raises(UsageError, match=r"data\.label_field: .* holds 1 class"):
        preflight(_spec(data={"files": [one], "max_length": 32}))
    train = _rows(tmp_path / "train.jsonl", ["a", "b"] * 10)
    evaluation = _rows(tmp_path / "eval.jsonl", ["a", "b", "c"])
    data = {"files": {"train": [train], "validation": [evaluation]}, "eval_split": "validation"}
    with pytest.raises(UsageError, match=r"labels the train split never has: \['c'\]"):
        preflight(_spec(data=data | {"max_length": 32}))


def test_on_a_cluster_an_unreadable_path_says_where_files_must_be(tmp_path: Path) -> None:
    spec = _spec(data={"files": [str(tmp_path / "gone.jsonl")], "max_length": 32})
    with pytest.raises(UsageError, match=r"data\.files: .*volume every node mounts.*s3://"):
        preflight(spec, on_cluster=True)
