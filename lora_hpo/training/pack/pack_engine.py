"""The packed training step and evaluation. One step: each training adapter's next micro-batch,
concatenated; one forward of the base; each adapter's mean loss over its own rows; the sum of
those losses, one backward; then each adapter clips, steps and schedules on its own. The
gradient of an adapter's weights is the gradient of its own loss alone, since the other
losses do not depend on its weights and its rows do not mix with theirs.

Evaluation runs the adapters due at once: each eval batch is repeated once per adapter.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from lora_hpo.spec.eval_schedule import eval_steps
from lora_hpo.spec.search_space import derive
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.adapter_monitor import summarize_norms
from lora_hpo.training.base_model import load_base, load_tokenizer, model_source
from lora_hpo.training.classification_metrics import classification_metrics
from lora_hpo.training.mixed_precision import mixed_precision
from lora_hpo.training.pack.packed_adapter import Adapter
from lora_hpo.training.pack.packed_batches import concat_right_padded
from lora_hpo.training.pack.packed_layers import Segment
from lora_hpo.training.pack.packed_model import PackedModel
from lora_hpo.training.row_encoding import IGNORE_INDEX
from lora_hpo.training.trainer_reports import gpu_peak
from lora_hpo.training.trial_data import trial_data
from lora_hpo.training.trial_report import eval_metrics, trial_report, write_record


def segment_losses(
    logits: torch.Tensor, labels: torch.Tensor, segments: tuple[Segment, ...], task: str
) -> list[torch.Tensor]:
    """Each segment's mean loss over its own rows (tokens, for causal LM: next-token, with
    IGNORE_INDEX skipped), as transformers computes it for one batch."""
    labels = labels.to(logits.device)
    out = []
    for s in segments:
        lg, lb = logits[s.start : s.stop].float(), labels[s.start : s.stop]
        if task == "causal-lm":
            lg, lb = lg[:, :-1], lb[:, 1:]
            lg, lb = lg.reshape(-1, lg.size(-1)), lb.reshape(-1)
        out.append(F.cross_entropy(lg, lb, ignore_index=IGNORE_INDEX))
    return out


def segments_of(sizes: list[tuple[str, int, int]]) -> tuple[Segment, ...]:
    """Consecutive segments from (key, rows, step) triples."""
    out, start = [], 0
    for key, rows, step in sizes:
        out.append(Segment(key, start, start + rows, step))
        start += rows
    return tuple(out)


class Engine:
    """A base model, its data, and the adapters training on it."""

    def __init__(self, spec: StudySpec) -> None:
        tokenizer = load_tokenizer(spec)
        self.spec, self.tokenizer = spec, tokenizer
        self.data = trial_data(spec, tokenizer, model_source(spec)[0])
        entry = load_base(spec, self.data.label_names)
        self.packed = PackedModel(spec, entry)
        self.lineage = {"base_revision": entry.revision, "data_fingerprint": self.data.fingerprint}
        self.eval_at = set(eval_steps(spec))
        self.adapters: dict[str, Adapter] = {}
        self.bf16 = mixed_precision(spec) == "bf16"

    def add(self, key: str, sampled: dict[str, Any], resume: Path | None = None) -> Adapter:
        params = derive(self.spec.space, sampled)
        adapter = Adapter(key, self.spec, params, self.packed, len(self.data.train))
        if resume is not None:
            adapter.load(resume)
        self.adapters[key] = adapter
        return adapter

    def drop(self, key: str) -> None:
        adapter = self.adapters.pop(key, None)
        if adapter is not None:
            adapter.release()

    def due(self, adapter: Adapter) -> bool:
        """Whether the adapter evaluates and reports at its current step."""
        return adapter.step in self.eval_at or adapter.step >= self.spec.training.max_steps

    def _autocast(self) -> Any:
        device = self.packed.device.type
        return torch.autocast(device, dtype=torch.bfloat16, enabled=self.bf16)

    def train_step(self, adapters: list[Adapter]) -> None:
        """One optimizer step for each of ``adapters``, in one forward and one backward."""
        t0 = time.perf_counter()
        parts = [self.data.train[a.order.next()] for a in adapters]
        batch = concat_right_padded(parts, self.tokenizer.pad_token_id)
        rows = [len(p["input_ids"]) for p in parts]
        segments = segments_of([(a.key, n, a.step) for a, n in zip(adapters, rows, strict=True)])
        with self._autocast():
            logits = self.packed.logits(batch, segments, training=True)
        losses = segment_losses(logits, batch["labels"], segments, self.spec.task)
        torch.stack(losses).sum().backward()
        for adapter, loss in zip(adapters, losses, strict=True):
            adapter.update(float(loss.detach()))
        took = time.perf_counter() - t0
        for adapter in adapters:
            adapter.step_time += took

    @torch.no_grad()
    def evaluate(self, adapters: list[Adapter]) -> dict[str, dict[str, float]]:
        """Eval metrics of each adapter over the whole eval set."""
        t = self.spec.training
        size = t.eval_batch_size or 2 * t.batch_size
        evaluation, keys = self.data.eval, [a.key for a in adapters]
        loss_sum = dict.fromkeys(keys, 0.0)
        logits_of: dict[str, list[Any]] = {k: [] for k in keys}
        labels: list[Any] = []
        for start in range(0, len(evaluation), size):
            part = evaluation[start : start + size]
            n = len(part["input_ids"])
            batch = concat_right_padded([part] * len(keys), self.tokenizer.pad_token_id)
            segments = segments_of([(k, n, 0) for k in keys])
            with self._autocast():
                logits = self.packed.logits(batch, segments, training=False)
            losses = segment_losses(logits, batch["labels"], segments, self.spec.task)
            for s, loss in zip(segments, losses, strict=True):
                loss_sum[s.key] += float(loss) * n
                if self.spec.task != "causal-lm":
                    logits_of[s.key].append(logits[s.start : s.stop].float().cpu())
            labels.extend(part["labels"])
        out = {}
        for key in keys:
            metrics: dict[str, Any] = {"eval_loss": loss_sum[key] / max(1, len(labels))}
            if self.spec.task != "causal-lm":
                scores = classification_metrics((torch.cat(logits_of[key]).numpy(), labels))
                metrics |= {f"eval_{k}": v for k, v in scores.items()}
            out[key] = eval_metrics(metrics, self.spec.task)
        return out

    def report(
        self, adapter: Adapter, evaluated: dict[str, float], folder: Path, extra: dict[str, Any]
    ) -> dict[str, Any]:
        """The adapter's report at its step, with its checkpoint written to ``folder``."""
        more = {
            **summarize_norms(self.packed.norms(adapter.key)),
            "trainable_params": adapter.trainable,
            "step_time_s": adapter.step_time,
            **gpu_peak(),
            **self.lineage,
            **extra,
        }
        metrics = trial_report(
            self.spec,
            adapter.params,
            adapter.watch,
            step=adapter.step,
            train_loss=adapter.take_train_loss(),
            evaluated=evaluated,
            extra=more,
        )
        adapter.save(folder)
        write_record(folder, adapter.params, metrics, self.data.label_names)
        return metrics
