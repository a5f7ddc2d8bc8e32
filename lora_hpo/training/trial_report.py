"""What a trial reports at each evaluation, packed or not: the step, the train loss, the eval
metrics, the adapter norms and the divergence verdict, with the searched metric made finite
for the searcher; and the trial record written beside each checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lora_hpo.files.file_names import TRIAL_FILE
from lora_hpo.spec.search_space import TrialParams
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.adapter_monitor import DivergenceWatch, searchable

NOT_REPORTED = ("_runtime", "_per_second")  # timing keys of transformers' eval metrics


def eval_metrics(metrics: dict[str, Any], task: str) -> dict[str, float]:
    """The ``eval_*`` metrics as floats, with ``eval_perplexity`` for causal LM."""
    out = {k: float(v) for k, v in metrics.items() if k.startswith("eval_")}
    out = {k: v for k, v in out.items() if not k.endswith(NOT_REPORTED)}
    if task == "causal-lm" and "eval_loss" in out:
        loss = out["eval_loss"]
        out["eval_perplexity"] = math.exp(loss) if loss < 700 else math.inf
    return out


def trial_report(
    spec: StudySpec,
    params: TrialParams,
    watch: DivergenceWatch,
    *,
    step: int,
    train_loss: float | None,
    evaluated: dict[str, float],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """One report: ``extra`` carries the norms, timings and lineage; the status is
    ``diverged`` (with its reason), ``completed`` at the last step, else ``running``."""
    metrics: dict[str, Any] = {
        "step": step,
        "train_loss": train_loss if train_loss is not None else math.nan,
        **evaluated,
        "effective_scale": params.scaling,
        "lora_alpha": params.lora_alpha,
        **extra,
    }
    reason = watch.check(metrics)
    done = step >= spec.training.max_steps
    metrics["status"] = "diverged" if reason else ("completed" if done else "running")
    metrics["diverged_reason"] = reason or ""
    name = spec.metric
    metrics[f"{name}_raw"] = metrics.get(name, math.nan)
    metrics[name] = searchable(metrics.get(name), spec.mode)
    return metrics


def write_record(
    folder: Path, params: TrialParams, metrics: dict[str, Any], labels: tuple[str, ...] | None
) -> None:
    """The trial record beside a checkpoint: params, metrics, the labels in id order, and the
    checkpoint's other files with their sizes (a copy cut short, by a lost node or a killed
    process, misses some: ``trial_checkpoints.newest_checkpoint`` skips it)."""
    record: dict[str, Any] = {"params": params.as_dict(), "metrics": metrics}
    if labels is not None:  # id order: label i is labels[i]
        record["labels"] = list(labels)
    found = (p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != TRIAL_FILE)
    record["files"] = {p.relative_to(folder).as_posix(): p.stat().st_size for p in found}
    (folder / TRIAL_FILE).write_text(json.dumps(record, default=str))
