"""Class labels for sequence classification: string labels, integer labels and datasets
``ClassLabel`` features all map to ids 0..n-1 in one documented order, and the mapping is
kept with every trial and every export (``id2label`` / ``label2id``).

Order: a ``ClassLabel``'s own names; integers sorted numerically; anything else sorted as
text. A train split with one class, or an eval split with a label the train split never
has, is bad input: it is reported naming the field and the labels found.
"""

from __future__ import annotations

from typing import Any

from lora_hpo.spec.spec_errors import UsageError

SHOWN = 10  # labels listed in a message


def label_names(train: Any, label: str) -> tuple[str, ...]:
    """The class names of the train split's ``label`` column, in id order."""
    feature = train.features[label]
    if getattr(feature, "names", None):
        return tuple(feature.names)
    values = set(train[label])
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return tuple(str(v) for v in sorted(values))
    return tuple(sorted(str(v) for v in values))


def has_class_label(ds: Any, label: str) -> bool:
    return bool(getattr(ds.features[label], "names", None))


def _listed(values: Any) -> str:
    items = sorted(str(v) for v in values)
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return f"{items[:SHOWN]}{more}"


def check_labels(names: tuple[str, ...], evaluation: Any, label: str) -> None:
    """Two classes at least, and no eval label the train split lacks."""
    if len(names) < 2:
        raise UsageError(
            f"data.label_field: column {label!r} of the train split holds {len(names)} class"
            f" ({_listed(names)}); classification needs at least two"
        )
    seen = set(names)
    if has_class_label(evaluation, label):
        eval_names = set(evaluation.features[label].names)
    else:
        eval_names = {str(v) for v in evaluation[label]}
    unseen = eval_names - seen
    if unseen:
        raise UsageError(
            f"data.label_field: the eval split has labels the train split never has:"
            f" {_listed(unseen)} (train has {_listed(seen)})"
        )


def mapping(names: tuple[str, ...]) -> dict[str, dict[Any, Any]]:
    """``id2label`` and ``label2id`` as transformers' configs hold them."""
    return {
        "id2label": dict(enumerate(names)),
        "label2id": {name: i for i, name in enumerate(names)},
    }
