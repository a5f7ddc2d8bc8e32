"""Chat rows through the tokenizer's chat template, with the loss on the assistant turns only.

A row is a conversation (``data.messages_field``: {role, content} messages) or a prompt and
its completion, which become one user and one assistant message (``data.chat_template``). Any
template works: the conversation is rendered up to each assistant message (with the
generation prompt, as ``predict`` renders it) and up to that message's end, and the tokens in
between are the turn's labels, with the end-of-turn token and without the whitespace after
it. (Where a template's generation prompt is not how it opens an answer mid-conversation,
the labels start at the end of the turn before, taking in the assistant header.) That needs
each prefix's tokens to be a prefix of the whole conversation's tokens, as they are when a
template renders earlier turns the same whatever follows; a row where they are not fails,
naming it, rather than be labelled wrong.
"""

from __future__ import annotations

from typing import Any

from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_schema import DataSpec

IGNORE_INDEX = -100  # label value the loss skips
Messages = list[dict[str, str]]


def has_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def uses_chat(data: DataSpec, f: dict[str, str | None], tokenizer: Any) -> bool:
    """Whether causal-LM rows (with the columns ``f``) go through the chat template; a
    UsageError when they must and the tokenizer has none."""
    if f.get("messages_field") is not None:
        field = "data.messages_field"
    elif f.get("prompt_field") is None or data.chat_template == "never":
        return False
    elif data.chat_template == "auto":
        return has_template(tokenizer)
    else:
        field = "data.chat_template"
    if not has_template(tokenizer):
        raise UsageError(
            f"{field}: the rows must go through the tokenizer's chat template, but the model's"
            " tokenizer has none; give a model that has one (an instruct or chat model), or"
            " prompt_field + completion_field with chat_template: never"
        )
    return True


def pair(prompt: str, completion: str) -> Messages:
    """A prompt and its completion as a user turn and an assistant turn."""
    return [
        {"role": "user", "content": str(prompt).strip()},
        {"role": "assistant", "content": str(completion).strip()},
    ]


def render_ids(tokenizer: Any, messages: Messages, generation: bool, field: str = "") -> list[int]:
    """The conversation's tokens as the template renders it (special tokens are its own)."""
    from jinja2 import TemplateError

    try:
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation
        )
    except TemplateError as exc:
        raise UsageError(f"{field}: the chat template refuses the conversation: {exc}") from None
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _prefix_len(
    tokenizer: Any, messages: Messages, full: list[int], gens: tuple[bool, ...], field: str
) -> int:
    """How many of ``full``'s tokens ``messages`` renders to (trying each generation-prompt
    setting in turn); -1 when no rendering is a prefix of ``full``."""
    for generation in gens:
        ids = render_ids(tokenizer, messages, generation, field)
        if full[: len(ids)] == ids:
            return len(ids)
    return -1


def encode_chat(tokenizer: Any, messages: Messages, field: str) -> tuple[list[int], list[int]]:
    """(input ids, labels) of a whole conversation, the labels on the assistant turns only."""
    full = render_ids(tokenizer, messages, False, field)
    labels = [IGNORE_INDEX] * len(full)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = _prefix_len(tokenizer, messages[:i], full, (True, False), field)
        last = i == len(messages) - 1
        end = (
            len(full) if last else _prefix_len(tokenizer, messages[: i + 1], full, (False,), field)
        )
        if start < 0 or end < 0:
            raise UsageError(
                f"{field}: the chat template renders the conversation up to message {i} (an"
                " assistant turn) differently once more messages follow (its tokens are not a"
                " prefix of the whole conversation's), so the assistant tokens cannot be found"
            )
        while end - start > 1 and not tokenizer.decode(full[end - 1 : end]).strip():
            end -= 1  # the whitespace between turns is the template's, not the answer's
        labels[start:end] = full[start:end]
    return full, labels


def encode_row(
    tokenizer: Any, row: dict[str, Any], f: dict[str, str | None], max_len: int, where: str
) -> tuple[list[int], list[int]]:
    """One row's (input ids, labels), at most ``max_len`` tokens. A conversation is cut at its
    end; a prompt loses its start (its end holds the question) so that the answer fits."""
    column = f.get("messages_field")
    if column is not None:
        field = f"data.messages_field: {where}"
        messages = [{"role": m["role"], "content": m["content"]} for m in row[column]]
        ids, labels = encode_chat(tokenizer, messages, field)
        return ids[:max_len], labels[:max_len]
    field = f"data.chat_template: {where}"
    prompt, completion = str(row[str(f["prompt_field"])]), str(row[str(f["completion_field"])])
    ids, labels = encode_chat(tokenizer, pair(prompt, completion), field)
    for _ in range(3):  # decoding and re-encoding a cut prompt may shift a token or two
        over = len(ids) - max_len
        if over <= 0 or not prompt:
            break
        tokens = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        prompt = tokenizer.decode(tokens[over:]) if over < len(tokens) else ""
        ids, labels = encode_chat(tokenizer, pair(prompt, completion), field)
    return ids[:max_len], labels[:max_len]


def prompt_ids(tokenizer: Any, messages: Messages) -> list[int]:
    """The tokens that ask the model for the next assistant turn (what ``predict`` feeds)."""
    return render_ids(tokenizer, messages, True, "the chat template")
