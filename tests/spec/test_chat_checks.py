"""Chat data that cannot work exits 2 at ``lora-hpo validate``, naming the field (and for a row,
the file and its line): the spec's rules (``chat_checks.py``), the model's tokenizer without a
template, and the rows of the data files (``local_checks.py``, ``data_columns.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lora_hpo.cli.main import main
from tests.conftest import tiny_study
from tests.tiny_models import write_chat_task, write_tiny_llama

USER = {"role": "user", "content": "say red"}
ANSWER = {"role": "assistant", "content": "blue"}


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: Any) -> Path:
    root = tmp_path_factory.mktemp("chat")
    write_tiny_llama(root / "model", chat=True)
    write_chat_task(root / "chat.jsonl", n=20)
    return root


def _validate(data: dict[str, Any], folder: Path, capsys: Any) -> tuple[int, str]:
    path = folder / "spec.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


def _chat_spec(root: Path, **data: Any) -> dict[str, Any]:
    chat = {"files": [str(root / "chat.jsonl")], "messages_field": "messages"}
    return tiny_study(root, data=chat | {"eval_fraction": 0.2, "max_length": 24} | data)


def test_a_chat_study_validates(chat_model: Path, capsys: Any) -> None:
    code, err = _validate(_chat_spec(chat_model), chat_model, capsys)
    assert code == 0, err


SPEC_CASES = [
    ("with prompts", {"prompt_field": "p", "completion_field": "c"}, {}, "data.messages_field",
     "without text_field, label_field, prompt_field or completion_field, but got prompt_field"),
    ("classification", {}, {"task": "sequence-classification"}, "data.messages_field",
     "is for task causal-lm, not sequence-classification"),
    ("never", {"chat_template": "never"}, {}, "data.chat_template", "cannot be 'never'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "top", "field", "fragment"),
    [c[1:] for c in SPEC_CASES],
    ids=[c[0] for c in SPEC_CASES],
)
def test_spec_rules_exit_2_naming_the_field(
    chat_model: Path, capsys: Any, data: Any, top: Any, field: str, fragment: str
) -> None:
    code, err = _validate(_chat_spec(chat_model, **data) | top, chat_model, capsys)
    assert code == 2 and f"{field}: " in err and fragment in err, err


def test_always_needs_turns_and_a_template(
    chat_model: Path, tiny_assets: Path, capsys: Any
) -> None:
    text = {"files": [str(tiny_assets / "copy.jsonl")], "text_field": "prompt"}
    code, err = _validate(
        tiny_study(tiny_assets, data=text | {"chat_template": "always"}), chat_model, capsys
    )
    assert code == 2 and "data.chat_template: 'always' needs turns to format" in err, err
    code, err = _validate(
        tiny_study(tiny_assets, **{"data.chat_template": "always"}), chat_model, capsys
    )
    assert code == 2 and "data.chat_template: 'always' needs the tokenizer's chat template" in err
    assert f"the tokenizer in {tiny_assets / 'model'} has none" in err, err
    no_template = _chat_spec(chat_model) | {"model": {"path": str(tiny_assets / "model")}}
    code, err = _validate(no_template, chat_model, capsys)
    assert code == 2 and "data.messages_field: its rows need the tokenizer's chat template" in err


ROW_CASES = [
    ("not a list", "hi", "must be a non-empty list of {role, content} messages, but got 'hi'"),
    ("no content", [USER, {"role": "assistant"}],
     "message 1 must be {role: string, content: string}, but got {'role': 'assistant'}"),
    ("unknown role", [USER, {"role": "bot", "content": "x"}],
     "message 1: role must be one of ['system', 'user', 'assistant'], but got 'bot'"),
    ("no answer", [USER], "holds no assistant message (roles ['user'])"),
    ("answer first", [ANSWER, USER, ANSWER], "the first assistant message must follow a user"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "fragment"), [c[1:] for c in ROW_CASES], ids=[c[0] for c in ROW_CASES]
)
def test_a_bad_row_exits_2_naming_file_line_and_field(
    chat_model: Path, tmp_path: Path, capsys: Any, value: Any, fragment: str
) -> None:
    rows = tmp_path / "rows.jsonl"
    good = json.dumps({"messages": [USER, ANSWER]})
    rows.write_text(f"{good}\n{json.dumps({'messages': value})}\n{good}\n")
    code, err = _validate(_chat_spec(chat_model, files=[str(rows)]), tmp_path, capsys)
    assert code == 2, err
    assert f"data.messages_field: data.files[0] ({rows}): line 2: {fragment}" in err, err


def test_csv_cannot_hold_messages_and_parquet_rows_are_read(
    chat_model: Path, tmp_path: Path, capsys: Any
) -> None:
    import pandas as pd

    (tmp_path / "rows.csv").write_text("messages\nhello\n")
    code, err = _validate(
        _chat_spec(chat_model, files=[str(tmp_path / "rows.csv")]), tmp_path, capsys
    )
    assert code == 2 and "a CSV file cannot hold a list of messages" in err, err
    frame = pd.DataFrame({"messages": [[USER, ANSWER], [USER], [USER, ANSWER]]})
    frame.to_parquet(tmp_path / "rows.parquet")
    spec = _chat_spec(chat_model, files=[str(tmp_path / "rows.parquet")])
    code, err = _validate(spec, tmp_path, capsys)
    assert code == 2 and "rows.parquet): row 2: holds no assistant message" in err, err
