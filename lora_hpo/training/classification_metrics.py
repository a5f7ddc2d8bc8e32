"""Eval metrics from logits and labels, the same for packed and unpacked trials."""

from __future__ import annotations

from typing import Any


def classification_metrics(eval_pred: Any) -> dict[str, float]:
    """Accuracy and macro-F1 from logits and labels."""
    import numpy as np

    logits, labels = eval_pred
    preds = np.asarray(logits).argmax(-1)
    labels = np.asarray(labels)
    f1s = []
    for c in np.union1d(preds, labels):
        tp = float(((preds == c) & (labels == c)).sum())
        denom = float((preds == c).sum() + (labels == c).sum())
        f1s.append(2 * tp / denom if denom else 0.0)
    return {"accuracy": float((preds == labels).mean()), "f1": float(np.mean(f1s))}
