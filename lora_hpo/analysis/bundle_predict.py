"""``lora-hpo predict``: use an exported bundle on new rows. Sequence classification writes
each row's predicted label (a name from ``labels.json``); a causal LM writes the generated
completion of each row's prompt (formatted as the study's data was: through the chat template
where its rows went through it), or the next assistant turn of a conversation. When the rows
carry the answer (the label column, the completion column, or a closing assistant turn), the
share that the adapter gets right is reported too."""

from __future__ import annotations

import json
from pathlib import Path, PurePath
from typing import Any

from lora_hpo.analysis.export_bundle import LABELS_FILE
from lora_hpo.files.file_names import SPEC_FILE
from lora_hpo.spec.source_checks import FILE_FORMATS
from lora_hpo.spec.spec_errors import SpecError, UsageError
from lora_hpo.spec.spec_loader import load_spec
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.chat_encoding import prompt_ids, uses_chat
from lora_hpo.training.row_encoding import fields

BATCH = 32


def load_bundle(folder: Path) -> tuple[StudySpec, Any, Any]:
    """(spec, model with the adapter, tokenizer) from an export folder."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    from lora_hpo.training.base_model import model_source

    if not (folder / "adapter_config.json").is_file() or not (folder / SPEC_FILE).is_file():
        raise UsageError(f"--adapter: {str(folder)!r} is not a lora-hpo export (no adapter/spec)")
    try:
        spec = load_spec(folder / SPEC_FILE)
    except SpecError as exc:
        raise UsageError(f"--adapter: the bundle's spec does not load: {exc}") from None
    _, where, revision = model_source(spec)
    if spec.task == "sequence-classification":
        labels = json.loads((folder / LABELS_FILE).read_text())
        id2label = {int(k): v for k, v in labels["id2label"].items()}
        base = AutoModelForSequenceClassification.from_pretrained(
            where,
            revision=revision,
            num_labels=len(id2label),
            id2label=id2label,
            label2id=labels["label2id"],
        )
    else:
        base = AutoModelForCausalLM.from_pretrained(where, revision=revision)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if base.config.pad_token_id is None:
        base.config.pad_token_id = tokenizer.pad_token_id
    return spec, PeftModel.from_pretrained(base, folder).eval(), tokenizer


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The input rows (JSON lines, JSON, CSV or parquet) as dicts."""
    import datasets

    fmt = FILE_FORMATS.get(PurePath(path).suffix.lower())
    if fmt is None or not path.is_file():
        why = (
            "does not exist"
            if not path.is_file()
            else f"extension must be one of {sorted(FILE_FORMATS)}"
        )
        raise UsageError(f"--input: {str(path)!r} {why}")
    try:
        return list(datasets.load_dataset(fmt, data_files=str(path), split="train"))
    except Exception as exc:  # datasets raises many kinds for a broken file
        raise UsageError(f"--input: cannot read {str(path)!r} as {fmt}: {exc}") from None


def _classify(spec: StudySpec, model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> list[Any]:
    import torch

    text = fields(spec.data, spec.task)["text_field"] or "text"
    out: list[Any] = []
    for i in range(0, len(rows), BATCH):
        batch = [str(r[text]) for r in rows[i : i + BATCH]]
        enc = tokenizer(
            batch,
            truncation=True,
            max_length=spec.data.max_length,
            padding=True,
            return_tensors="pt",
        )
        with torch.inference_mode():
            ids = model(**enc).logits.argmax(-1).tolist()
        out += [model.config.id2label[int(j)] for j in ids]
    return out


def _asked(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """A conversation without its closing assistant turns: what asks for the answer."""
    kept = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    while kept and kept[-1]["role"] == "assistant":
        kept.pop()
    return kept


def prompt_tokens(spec: StudySpec, tokenizer: Any, row: dict[str, Any]) -> list[int]:
    """A row's prompt as the study's data encoded it: through the chat template (with the
    generation prompt) where the study's rows went through it, else the raw prompt; at most
    ``data.max_length`` tokens, the end kept."""
    f = fields(spec.data, spec.task)
    column = f.get("messages_field")
    if column is not None and column in row:
        ids = prompt_ids(tokenizer, _asked(row[column]))
    else:
        text = str(row[f.get("prompt_field") or f.get("text_field") or "text"])
        if uses_chat(spec.data, f, tokenizer):
            ids = prompt_ids(tokenizer, [{"role": "user", "content": text.strip()}])
        else:
            ids = list(tokenizer(text)["input_ids"])
    return ids[-spec.data.max_length :]


def _generate(
    spec: StudySpec, model: Any, tokenizer: Any, rows: list[dict[str, Any]], new_tokens: int
) -> list[Any]:
    import torch

    out: list[Any] = []
    for row in rows:
        ids = torch.tensor([prompt_tokens(spec, tokenizer, row)])
        with torch.inference_mode():
            gen = model.generate(
                input_ids=ids,
                max_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        text = tokenizer.decode(gen[0, ids.shape[1] :], skip_special_tokens=True)
        out.append(text)
    return out


def _answer(spec: StudySpec, row: dict[str, Any]) -> str | None:
    """The answer a row carries: its label, its completion, or its closing assistant turn."""
    f = fields(spec.data, spec.task)
    if f.get("messages_field") is not None:
        messages = row.get(str(f["messages_field"])) or [{}]
        last = messages[-1]
        return str(last["content"]) if last.get("role") == "assistant" else None
    key = f["label_field"] if spec.task == "sequence-classification" else f.get("completion_field")
    return str(row[key]) if key and key in row else None


def predict_rows(
    spec: StudySpec, model: Any, tokenizer: Any, rows: list[dict[str, Any]], new_tokens: int
) -> list[Any]:
    """One prediction per row: its label name (classification) or its completion."""
    if spec.task == "sequence-classification":
        return _classify(spec, model, tokenizer, rows)
    return _generate(spec, model, tokenizer, rows, new_tokens)


def predict(
    folder: Path, rows_path: Path, new_tokens: int = 16
) -> tuple[list[dict[str, Any]], float | None]:
    """(rows with ``prediction``, the share right when the rows carry the answer)."""
    for name in (folder, rows_path):
        if not name.exists():
            raise UsageError(
                f"{'--adapter' if name == folder else '--input'}: {str(name)!r} does not exist"
            )
    spec, model, tokenizer = load_bundle(folder)
    rows = read_rows(rows_path)
    preds = predict_rows(spec, model, tokenizer, rows, new_tokens)
    answers = [_answer(spec, r) for r in rows]
    right = sum(
        a is not None and a.strip() == str(p).strip() for a, p in zip(answers, preds, strict=True)
    )
    share = right / len(rows) if rows and None not in answers else None
    return [r | {"prediction": p} for r, p in zip(rows, preds, strict=True)], share
