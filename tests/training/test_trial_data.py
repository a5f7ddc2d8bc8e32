"""Data loading through the real load_dataset path, on local files the tests write."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.training.base_model import load_tokenizer
from lora_hpo.training.trial_data import load_raw, trial_data
from tests.conftest import BASE_SPEC

ROWS = [
    {
        "text": f"story number {i} about {'sport' if i % 2 else 'money'}",
        "topic": "sport" if i % 2 else "business",
    }
    for i in range(40)
]


def _spec(data: dict[str, Any]) -> Any:
    d = copy.deepcopy(BASE_SPEC)
    d["data"] = data
    return parse_spec(d)


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_local_files_load_and_split(tmp_path: Path, fmt: str) -> None:
    import pandas as pd

    path = tmp_path / f"rows.{fmt}"
    frame = pd.DataFrame(ROWS)
    if fmt == "json":
        path.write_text("\n".join(json.dumps(r) for r in ROWS))
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    spec = _spec({"files": [str(path)], "label_field": "topic", "eval_fraction": 0.25})
    train, evaluation = load_raw(spec)
    assert (len(train), len(evaluation)) == (30, 10)
    data = trial_data(spec, load_tokenizer(spec), "minilm")
    assert data.label_names == ("business", "sport")  # string labels mapped to ids
    assert set(data.train["labels"]) == {0, 1}


def test_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text("\n".join(json.dumps(r) for r in ROWS))
    spec = _spec({"files": [str(path)], "label_field": "label"})
    with pytest.raises(UsageError, match=r"data\.label_field: column 'label' is not in the train"):
        trial_data(spec, load_tokenizer(spec), "minilm")


def test_demo_caps_and_eval_split_names(tmp_path: Path) -> None:
    spec = _spec({"demo": "bbc-news", "max_train_samples": 50, "max_eval_samples": 20})
    train, evaluation = load_raw(spec)
    assert (len(train), len(evaluation)) == (50, 20)
    spec = _spec({"demo": "bbc-news", "eval_split": "validation"})
    with pytest.raises(UsageError, match=r"data\.eval_split: 'validation' not in splits"):
        load_raw(spec)


def test_a_chat_row_that_is_no_conversation_stops_the_run_naming_it() -> None:
    """What the preflight runs over every row of both splits, whatever the source."""
    from datasets import Dataset

    from lora_hpo.training.trial_data import check_splits
    from tests.conftest import tiny_study

    chat = {"files": ["x.jsonl"], "messages_field": "messages"}
    spec = parse_spec(tiny_study(Path("/m"), data=chat))
    good = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    rows = [{"messages": good}, {"messages": [{"role": "user", "content": "a"}]}]
    assert check_splits(spec, Dataset.from_list(rows[:1]), Dataset.from_list(rows[:1])) is None
    with pytest.raises(
        UsageError, match=r"^data\.messages_field: row 1 of the eval split: holds no"
    ):
        check_splits(spec, Dataset.from_list(rows[:1]), Dataset.from_list(rows))
