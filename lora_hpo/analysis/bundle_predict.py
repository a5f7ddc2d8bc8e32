"""``lora-hpo predict``: use an exported bundle on new rows. Sequence classification writes
each row's predicted label (a name from ``labels.json``); a causal LM writes the generated
completion of each row's prompt. When the rows carry the answer (the label column, or the
completion column), the share that the adapter gets right is reported too."""

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


def _generate(
    spec: StudySpec, model: Any, tokenizer: Any, rows: list[dict[str, Any]], new_tokens: int
) -> list[Any]:
    import torch

    f = fields(spec.data, spec.task)
    prompt = f.get("prompt_field") or f.get("text_field") or "text"
    out: list[Any] = []
    for row in rows:
        ids = tokenizer(str(row[prompt]), return_tensors="pt")["input_ids"][
            :, -spec.data.max_length :
        ]
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
    f = fields(spec.data, spec.task)
    answer = (
        f["label_field"] if spec.task == "sequence-classification" else f.get("completion_field")
    )
    scored = [r for r in rows if answer and answer in r]
    right = sum(
        str(r[answer]).strip() == str(p).strip()
        for r, p in zip(rows, preds, strict=True)
        if answer in r
    )
    share = right / len(scored) if scored and len(scored) == len(rows) else None
    return [r | {"prediction": p} for r, p in zip(rows, preds, strict=True)], share
