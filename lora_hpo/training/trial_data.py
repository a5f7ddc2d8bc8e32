"""Datasets for a trial: load (demo, hub id or local files), split, tokenise, and collate.

Loading goes through ``datasets.load_dataset`` for hub ids and local files; demo sources come
from ``demo_assets``. Tokenised data is cached per process, so later trials in one worker
skip it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from lora_hpo.files.data_columns import message_problem
from lora_hpo.spec.local_checks import needed_columns
from lora_hpo.spec.source_checks import FILE_FORMATS
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_schema import DataSpec, StudySpec
from lora_hpo.training.label_ids import check_labels, label_names
from lora_hpo.training.row_encoding import IGNORE_INDEX, encode_splits


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


def load_raw(spec: StudySpec) -> tuple[Any, Any]:
    """(train, eval) ``datasets.Dataset`` objects, before tokenisation."""
    import datasets

    d = spec.data
    if d.demo is not None:
        from lora_hpo.training.demo_assets import load_demo_dataset

        splits = datasets.DatasetDict({"train": load_demo_dataset(d.demo)})
    elif d.hub is not None:
        splits = datasets.load_dataset(d.hub, d.hub_config)
    else:
        splits = _load_files(d)
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


def _load_files(d: DataSpec) -> Any:
    """Local files through ``load_dataset(format, data_files={split: files})``."""
    import datasets

    split_files = {split: list(files) for split, files in d.split_files().items()}
    first = next(f for files in split_files.values() for f in files)
    fmt = d.format or FILE_FORMATS[PurePath(first).suffix.lower()]
    try:
        return datasets.load_dataset(fmt, data_files=split_files)
    except (FileNotFoundError, datasets.exceptions.DatasetGenerationError, ValueError) as exc:
        cause = exc.__cause__ or exc
        reason = " ".join(str(cause).split())[:300]
        raise UsageError(
            f"data.files: cannot load {split_files} as {fmt}: {type(cause).__name__}: {reason}"
        ) from None


def check_splits(spec: StudySpec, train: Any, evaluation: Any) -> tuple[str, ...] | None:
    """Both splits hold the columns the task reads; for classification, the label names (in
    id order) after the label checks."""
    columns = needed_columns(spec)
    for split, where in ((train, "train"), (evaluation, "eval")):
        for field, col in columns.items():
            if col not in split.column_names:
                raise UsageError(
                    f"data.{field}: column {col!r} is not in the {where} split; its columns"
                    f" are {split.column_names}"
                )
    if "messages_field" in columns:
        _check_messages(columns["messages_field"], train, evaluation)
    if spec.task != "sequence-classification":
        return None
    label = columns["label_field"]
    names = label_names(train, label)
    check_labels(names, evaluation, label)
    return names


def _check_messages(column: str, train: Any, evaluation: Any) -> None:
    """Every row of both splits is a conversation to train on (``message_problem``)."""
    for split, where in ((train, "train"), (evaluation, "eval")):
        batches = split.select_columns([column]).iter(batch_size=1000)  # not all in memory
        for start, batch in enumerate(batches):
            for i, value in enumerate(batch[column], start * 1000):
                problem = message_problem(value)
                if problem is not None:
                    raise UsageError(
                        f"data.messages_field: row {i} of the {where} split: {problem}"
                    )


_CACHE: dict[tuple[Any, ...], TrialData] = {}


def trial_data(spec: StudySpec, tokenizer: Any, tokenizer_key: str) -> TrialData:
    """Tokenised train/eval data, cached per process for the (data, tokenizer, task) triple."""
    key = (spec.data, spec.task, spec.training.seed, tokenizer_key)
    if key not in _CACHE:
        train, evaluation = load_raw(spec)
        names = check_splits(spec, train, evaluation)
        tr, ev = encode_splits(spec, tokenizer, train, evaluation, names)
        _CACHE[key] = TrialData(tr, ev, names, _fingerprint(tr, ev))
    return _CACHE[key]


def collator(tokenizer: Any, task: str) -> Any:
    """The library's padding collator; token labels padded with IGNORE_INDEX."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

    if task == "sequence-classification":
        return DataCollatorWithPadding(tokenizer)
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX, padding=True)
