"""Datasets for a trial: load (demo, hub id or local files), split, tokenise, and collate.

Loading goes through ``datasets.load_dataset`` for hub ids and local files; demo sources come
from ``demos.py``. Tokenised data is cached per process, so later trials in one worker skip it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from lora_hpo.checks import FILE_FORMATS
from lora_hpo.errors import UsageError
from lora_hpo.registry import DEMO_DATA
from lora_hpo.spec import DataSpec, StudySpec

IGNORE_INDEX = -100  # label value the loss skips (prompt tokens, padding)


@dataclass(frozen=True)
class TrialData:
    """Tokenised train/eval sets plus what the model head needs."""

    train: Any  # datasets.Dataset
    eval: Any
    label_names: tuple[str, ...] | None
    fingerprint: str  # for lineage: changes when the data or its processing changes


def _fingerprint(train: Any, evaluation: Any) -> str:
    """16 hex digits from the processed splits' datasets fingerprints (source plus transforms),
    the same length as the driver's ``lineage.data_fingerprint``."""
    both = f"{train._fingerprint}:{evaluation._fingerprint}"
    return hashlib.sha256(both.encode()).hexdigest()[:16]


def _fields(data: DataSpec, task: str) -> dict[str, str | None]:
    """Column names: as given, else the demo's own, else the defaults."""
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


def load_raw(spec: StudySpec) -> tuple[Any, Any]:
    """(train, eval) ``datasets.Dataset`` objects, before tokenisation."""
    import datasets

    d = spec.data
    if d.demo is not None:
        from lora_hpo.demos import load_demo_dataset

        splits = datasets.DatasetDict({"train": load_demo_dataset(d.demo)})
    elif d.hub is not None:
        splits = datasets.load_dataset(d.hub, d.hub_config)
    else:
        files = list(d.files or ())
        fmt = d.format or FILE_FORMATS[PurePath(files[0]).suffix.lower()]
        splits = datasets.load_dataset(fmt, data_files={d.train_split: files})
    if d.train_split not in splits:
        raise UsageError(f"data.train_split: {d.train_split!r} not in splits {list(splits)}")
    train = splits[d.train_split]
    if d.eval_split is not None:
        if d.eval_split not in splits:
            raise UsageError(f"data.eval_split: {d.eval_split!r} not in splits {list(splits)}")
        evaluation = splits[d.eval_split]
    else:
        held = train.train_test_split(test_size=d.eval_fraction or 0.1, seed=spec.training.seed)
        train, evaluation = held["train"], held["test"]
    if d.max_train_samples is not None:
        train = train.select(range(min(d.max_train_samples, len(train))))
    if d.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(d.max_eval_samples, len(evaluation))))
    return train, evaluation


def _require(ds: Any, columns: list[str | None], where: str) -> None:
    for col in columns:
        if col is not None and col not in ds.column_names:
            raise UsageError(f"{where}: column {col!r} not in the dataset's {ds.column_names}")


def _label_names(train: Any, label: str) -> tuple[str, ...]:
    feature = train.features[label]
    if getattr(feature, "names", None):
        return tuple(feature.names)
    return tuple(sorted({str(v) for v in train[label]}))


def _classification(spec: StudySpec, tokenizer: Any, train: Any, evaluation: Any) -> TrialData:
    f = _fields(spec.data, spec.task)
    text, label = f["text_field"], f["label_field"]
    assert text is not None and label is not None  # defaults always set both
    _require(train, [text, label], "data.text_field/label_field")
    names = _label_names(train, label)
    has_names = bool(getattr(train.features[label], "names", None))
    index = {n: i for i, n in enumerate(names)}

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        enc = tokenizer(batch[text], truncation=True, max_length=spec.data.max_length)
        labels = batch[label] if has_names else [index[str(v)] for v in batch[label]]
        return dict(enc) | {"labels": labels}

    cols = train.column_names
    tr = train.map(encode, batched=True, remove_columns=cols)
    ev = evaluation.map(encode, batched=True, remove_columns=evaluation.column_names)
    return TrialData(tr, ev, names, _fingerprint(tr, ev))


def _causal(spec: StudySpec, tokenizer: Any, train: Any, evaluation: Any) -> TrialData:
    f = _fields(spec.data, spec.task)
    prompt, completion = f.get("prompt_field"), f.get("completion_field") or ""
    text = f.get("text_field") or "text"
    max_len = spec.data.max_length
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if prompt is not None:
        _require(train, [prompt, completion], "data.prompt_field/completion_field")
    else:
        _require(train, [text], "data.text_field")

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
        return {
            "input_ids": ids_out,
            "attention_mask": [[1] * len(i) for i in ids_out],
            "labels": labels_out,
        }

    tr = train.map(encode, batched=True, remove_columns=train.column_names)
    ev = evaluation.map(encode, batched=True, remove_columns=evaluation.column_names)
    tr = tr.filter(lambda row: len(row["input_ids"]) > 1)
    return TrialData(tr, ev, None, _fingerprint(tr, ev))


_CACHE: dict[tuple[Any, ...], TrialData] = {}


def trial_data(spec: StudySpec, tokenizer: Any, tokenizer_key: str) -> TrialData:
    """Tokenised train/eval data, cached per process for the (data, tokenizer, task) triple."""
    key = (spec.data, spec.task, spec.training.seed, tokenizer_key)
    if key not in _CACHE:
        train, evaluation = load_raw(spec)
        build = _classification if spec.task == "sequence-classification" else _causal
        _CACHE[key] = build(spec, tokenizer, train, evaluation)
    return _CACHE[key]


def collator(tokenizer: Any, task: str) -> Any:
    """The library's padding collator; token labels padded with IGNORE_INDEX."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

    if task == "sequence-classification":
        return DataCollatorWithPadding(tokenizer)
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX, padding=True)
