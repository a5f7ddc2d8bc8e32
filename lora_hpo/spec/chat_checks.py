"""Rules for chat data: ``data.messages_field`` (rows of {role, content} messages) stands alone,
is for causal LMs, and always goes through the chat template; ``data.chat_template: always``
needs turns to format (prompt/completion or messages). Whether the tokenizer has a template is
checked where it can be read (``local_checks.py``, the preflight)."""

from __future__ import annotations

from collections.abc import Iterator

from lora_hpo.spec.registries import DEMO_DATA
from lora_hpo.spec.spec_errors import Problem
from lora_hpo.spec.spec_schema import DataSpec

OTHER_FIELDS = ("text_field", "label_field", "prompt_field", "completion_field")


def has_prompts(d: DataSpec) -> bool:
    """The rows are prompt/completion pairs (given, or the demo dataset's own columns)."""
    demo = DEMO_DATA.get(str(d.demo)) if d.demo is not None else None
    return d.prompt_field is not None or (demo is not None and "prompt_field" in demo.columns)


def check_chat(task: str, d: DataSpec) -> Iterator[Problem]:
    if d.messages_field is not None:
        given = [f for f in OTHER_FIELDS if getattr(d, f) is not None]
        if given:
            yield Problem(
                "data.messages_field",
                "a chat column is the whole example; give it without text_field, label_field,"
                f" prompt_field or completion_field, but got {', '.join(given)} too",
            )
        if task != "causal-lm":
            yield Problem("data.messages_field", f"is for task causal-lm, not {task}")
        if d.chat_template == "never":
            yield Problem(
                "data.chat_template",
                "messages_field rows are always encoded with the chat template, so it cannot be"
                " 'never'",
            )
        return
    if d.chat_template == "always" and task != "causal-lm":
        yield Problem("data.chat_template", f"'always' is for task causal-lm, not {task}")
    elif d.chat_template == "always" and not has_prompts(d):
        yield Problem(
            "data.chat_template",
            "'always' needs turns to format: prompt_field + completion_field, or messages_field;"
            " plain text rows never go through the chat template",
        )
