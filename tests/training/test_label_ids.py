"""Class labels: strings, integers and ClassLabel features map to ids in one documented order;
one class, or an eval label the train split lacks, is bad input naming the field."""

from __future__ import annotations

import pytest
from datasets import ClassLabel, Dataset, Features, Value

from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.training.label_ids import check_labels, label_names, mapping


def _ds(labels: list[object], names: list[str] | None = None) -> Dataset:
    if names is None:
        return Dataset.from_dict({"text": ["x"] * len(labels), "label": labels})
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    return Dataset.from_dict({"text": ["x"] * len(labels), "label": labels}, features=features)


def test_string_labels_sort_as_text() -> None:
    assert label_names(_ds(["sport", "business", "tech", "sport"]), "label") == (
        "business",
        "sport",
        "tech",
    )


def test_integer_labels_sort_as_numbers() -> None:
    assert label_names(_ds([10, 2, 1, 2]), "label") == ("1", "2", "10")


def test_class_label_keeps_its_own_order() -> None:
    ds = _ds([0, 1, 2], names=["neg", "neu", "pos"])
    assert label_names(ds, "label") == ("neg", "neu", "pos")


def test_one_class_is_refused() -> None:
    with pytest.raises(UsageError, match=r"data\.label_field: .* holds 1 class .*at least two"):
        check_labels(label_names(_ds(["a", "a"]), "label"), _ds(["a"]), "label")


def test_an_eval_label_unseen_in_train_is_refused() -> None:
    names = label_names(_ds(["a", "b"]), "label")
    with pytest.raises(UsageError, match=r"labels the train split never has: \['c'\]"):
        check_labels(names, _ds(["a", "c"]), "label")
    check_labels(names, _ds(["b", "a"]), "label")  # a subset is fine


def test_mapping_is_what_transformers_configs_hold() -> None:
    assert mapping(("b", "a")) == {"id2label": {0: "b", 1: "a"}, "label2id": {"b": 0, "a": 1}}
