"""A study on chat rows through the command line, as a user runs it: ``validate``, ``run`` (the
tiny Llama with a chat template, a few steps), ``export`` and ``predict`` on conversations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli_process import lora_hpo
from tests.conftest import tiny_study
from tests.tiny_models import write_chat_task, write_tiny_llama

pytestmark = pytest.mark.slow  # a real study: about a minute on 2 cores


def test_a_chat_study_trains_exports_and_predicts(tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "model", chat=True)
    rows = write_chat_task(tmp_path / "chat.jsonl", n=60)
    data = {"files": [str(rows)], "messages_field": "messages", "eval_fraction": 0.2}
    spec = tiny_study(tmp_path, data=data | {"max_length": 32}) | {"name": "chat"}
    spec["training"] = {"max_steps": 6, "eval_every": 3, "batch_size": 8}
    spec["search"] = {"num_samples": 1, "max_concurrent": 1, "scheduler": {"type": "none"}}
    (tmp_path / "chat.yaml").write_text(yaml.safe_dump(spec))

    run = lora_hpo(tmp_path, "run", "chat.yaml", "--storage-path", str(tmp_path / "studies"))
    assert "preflight: model, tokenizer, data (48 train / 12 eval rows)" in run.stdout
    lora_hpo(tmp_path, "export", "--experiment", "chat", "--out", "bundle")
    asked = tmp_path / "asked.jsonl"
    asked.write_text("\n".join(rows.read_text().splitlines()[:4]))
    predicted = lora_hpo(tmp_path, "predict", "--adapter", "bundle", "--input", str(asked))
    lines = [json.loads(x) for x in predicted.stdout.splitlines()]
    assert len(lines) == 4 and all(isinstance(x["prediction"], str) for x in lines)
    assert "of 4 rows" in predicted.stderr  # each row's closing assistant turn is its answer
