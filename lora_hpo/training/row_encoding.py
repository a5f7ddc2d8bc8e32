"""Tokenisation of a trial's splits: classification rows to (input ids, label id), and causal
LM rows to (input ids, labels) with the loss on the completion only when a prompt is given,
and on the assistant turns only for rows that go through the chat template
(``chat_encoding.py``). Rows left with no token to learn from are dropped."""

from __future__ import annotations

from typing import Any

from lora_hpo.spec.registries import DEMO_DATA
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_schema import DataSpec, StudySpec
from lora_hpo.training.chat_encoding import IGNORE_INDEX, encode_row, uses_chat
from lora_hpo.training.label_ids import has_class_label

__all__ = ["IGNORE_INDEX", "encode_splits", "fields"]


def fields(data: DataSpec, task: str) -> dict[str, str | None]:
    """Column names: as given, else the demo's own, else the defaults."""
    if data.messages_field is not None:
        return {"messages_field": data.messages_field}
    base = {"text_field": "text", "label_field": "label"}
    if data.demo is not None:
        base = dict(DEMO_DATA[data.demo].columns)
    given = {k: getattr(data, k) for k in ("text_field", "label_field", "prompt_field")}
    given["completion_field"] = data.completion_field
    out: dict[str, str | None] = {k: v for k, v in base.items()}
    out.update({k: v for k, v in given.items() if v is not None})
    if task == "causal-lm" and "prompt_field" not in out:
        out.pop("label_field", None)
    return out


def encode_splits(
    spec: StudySpec, tokenizer: Any, train: Any, evaluation: Any, names: tuple[str, ...] | None
) -> tuple[Any, Any]:
    """(train, eval) tokenised; ``names`` are the class names in id order (classification)."""
    f = fields(spec.data, spec.task)
    if spec.task == "sequence-classification":
        assert names is not None
        enc = [_classified(spec, tokenizer, split, f, names) for split in (train, evaluation)]
        return enc[0], enc[1]
    chat = uses_chat(spec.data, f, tokenizer)
    encode = _chat if chat else _causal
    tr, ev = (encode(spec, tokenizer, s, f, w) for s, w in ((train, "train"), (evaluation, "eval")))
    return _learnable(tr, "train", spec), _learnable(ev, "eval", spec)


def _learnable(split: Any, where: str, spec: StudySpec) -> Any:
    """The rows with a token to learn from (a label after the first token)."""
    kept = split.filter(lambda row: any(v != IGNORE_INDEX for v in row["labels"][1:]))
    if len(split) and not len(kept):
        raise UsageError(
            f"data.max_length: no row of the {where} split keeps a token to learn from within"
            f" {spec.data.max_length} tokens (an answer, or text after the first token)"
        )
    return kept


def _classified(
    spec: StudySpec, tokenizer: Any, split: Any, f: dict[str, str | None], names: tuple[str, ...]
) -> Any:
    text, label = str(f["text_field"]), str(f["label_field"])
    index = {n: i for i, n in enumerate(names)}
    by_name = has_class_label(split, label)

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        enc = tokenizer(batch[text], truncation=True, max_length=spec.data.max_length)
        keys = [split.features[label].int2str(v) if by_name else str(v) for v in batch[label]]
        return dict(enc) | {"labels": [index[k] for k in keys]}

    return split.map(encode, batched=True, remove_columns=split.column_names)


def _chat(spec: StudySpec, tokenizer: Any, split: Any, f: dict[str, str | None], where: str) -> Any:
    names = split.column_names

    def encode(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, Any]:
        rows = [{k: batch[k][n] for k in names} for n in range(len(indices))]
        pairs = [
            encode_row(tokenizer, row, f, spec.data.max_length, f"row {i} of the {where} split")
            for row, i in zip(rows, indices, strict=True)
        ]
        ids = [p[0] for p in pairs]
        attention = [[1] * len(i) for i in ids]
        return {"input_ids": ids, "attention_mask": attention, "labels": [p[1] for p in pairs]}

    return split.map(encode, batched=True, with_indices=True, remove_columns=names)


def _causal(
    spec: StudySpec, tokenizer: Any, split: Any, f: dict[str, str | None], where: str
) -> Any:
    prompt, completion = f.get("prompt_field"), f.get("completion_field") or ""
    text = f.get("text_field") or "text"
    max_len = spec.data.max_length
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        ids_out, labels_out = [], []
        if prompt is None:
            enc = tokenizer(batch[text], truncation=True, max_length=max_len - len(eos))
            for ids in enc["input_ids"]:
                ids_out.append(ids + eos)
                labels_out.append(ids + eos)
        else:
            prompts = tokenizer(batch[prompt], add_special_tokens=True)["input_ids"]
            comps = tokenizer(batch[completion], add_special_tokens=False)["input_ids"]
            for p, c in zip(prompts, comps, strict=True):
                c = (c + eos)[: max_len - 1]
                p = p[-(max_len - len(c)) :]  # keep the prompt's end: the question
                ids_out.append(p + c)
                labels_out.append([IGNORE_INDEX] * len(p) + c)  # loss on the completion only
        attention = [[1] * len(i) for i in ids_out]
        return {"input_ids": ids_out, "attention_mask": attention, "labels": labels_out}

    return split.map(encode, batched=True, remove_columns=split.column_names)
