"""``predict`` asks the model the way the study's rows were encoded: the tokens it feeds are
those that preceded the answer in training (through the chat template, or the raw prompt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lora_hpo.analysis.bundle_predict import prompt_tokens
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.chat_encoding import IGNORE_INDEX, encode_row
from lora_hpo.training.row_encoding import fields
from tests.conftest import tiny_study
from tests.tiny_models import tiny_tokenizer


def _before_answer(spec: StudySpec, row: dict[str, Any], turn: int = 0) -> list[int]:
    """The training tokens before the ``turn``-th answer's first label."""
    tok = tiny_tokenizer(chat=True)
    f = fields(spec.data, spec.task)
    ids, labels = encode_row(tok, row, f, 64, "row 0")
    starts = [
        i for i, v in enumerate(labels) if v != IGNORE_INDEX and labels[i - 1] == IGNORE_INDEX
    ]
    return ids[: starts[turn]]


def test_a_prompt_is_asked_through_the_template_as_it_was_trained() -> None:
    tok = tiny_tokenizer(chat=True)
    row = {"prompt": "say red blue", "completion": " green"}
    spec = parse_spec(tiny_study(Path("/m")))  # chat_template: auto, and the tokenizer has one
    assert prompt_tokens(spec, tok, row) == _before_answer(spec, row)
    assert tok.decode(prompt_tokens(spec, tok, row)).endswith("[BOS] assistant")
    never = parse_spec(tiny_study(Path("/m"), **{"data.chat_template": "never"}))
    assert prompt_tokens(never, tok, row) == tok("say red blue")["input_ids"]
    assert prompt_tokens(spec, tiny_tokenizer(), row) == tok("say red blue")["input_ids"]


def test_a_conversation_is_asked_for_its_closing_answer() -> None:
    tok = tiny_tokenizer(chat=True)
    chat = {"files": ["x.jsonl"], "messages_field": "messages"}
    spec = parse_spec(tiny_study(Path("/m"), data=chat))
    turns = [("user", "say red"), ("assistant", "blue"), ("user", "say cat"), ("assistant", "dog")]
    row = {"messages": [{"role": r, "content": c} for r, c in turns]}
    assert prompt_tokens(spec, tok, row) == _before_answer(spec, row, turn=1)
    asked = prompt_tokens(spec, tok, {"text": "say cat"})  # a row with a text column only
    assert tok.decode(asked) == "[BOS] user say cat [EOS] [BOS] assistant"
