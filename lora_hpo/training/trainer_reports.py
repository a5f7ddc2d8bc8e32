"""The Trainer callback that turns a transformers training run into lora-hpo reports: it times
the steps, collects train loss and eval metrics, checks the adapter norm for divergence, writes
the trial record beside each checkpoint and reports at every save."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

import torch
from transformers import TrainerCallback

from lora_hpo.spec.eval_schedule import eval_steps
from lora_hpo.spec.search_space import TrialParams
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.adapter_monitor import DivergenceWatch, norm_summary
from lora_hpo.training.trial_report import eval_metrics, trial_report, write_record
from lora_hpo.training.trial_threads import LentThreads, own_threads


def gpu_peak() -> dict[str, float]:
    """The trial's peak GPU memory so far (MiB allocated by torch), when it has a GPU."""
    if not torch.cuda.is_available():
        return {}
    return {"gpu_peak_mib": torch.cuda.max_memory_allocated() / (1 << 20)}


class Reporter(Protocol):
    def __call__(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None: ...


class ReportBridge(TrainerCallback):  # type: ignore[misc]
    """Trainer callback: collects logs and eval metrics, and reports at every save."""

    def __init__(
        self,
        spec: StudySpec,
        params: TrialParams,
        report: Reporter,
        trainable: int,
        labels: tuple[str, ...] | None = None,
        threads: LentThreads | None = None,
    ) -> None:
        self.spec, self.params, self.report = spec, params, report
        # the torch threads it trains on: its own share, more when the driver lends idle slots
        self.threads = threads or LentThreads(None, own_threads(spec.resources.cpu))
        self.trainable, self.labels = trainable, labels
        self.eval_at = set(eval_steps(spec))  # ASHA's rungs, the last step, eval_every
        self.watch = DivergenceWatch(spec.monitor)
        self.train_loss: float | None = None
        self.metrics: dict[str, float] = {}
        self.last: dict[str, Any] = {}
        self.lineage: dict[str, str] = {}  # base revision/hash and data fingerprint (MLflow tags)
        self.step_time = 0.0  # seconds spent inside training steps: the trial's throughput
        self._t0 = 0.0
        self._rng: Any = None  # torch's RNG state before an evaluation, restored after it

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.threads.poll()
        self._t0 = time.perf_counter()

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        model = kw.get("model")
        if self.params.adapter == "adalora" and model is not None:
            model.base_model.update_and_allocate(state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.step_time += time.perf_counter() - self._t0
        if state.global_step in self.eval_at or state.global_step >= args.max_steps:
            control.should_evaluate = control.should_save = control.should_log = True
            # an evaluation draws from torch's RNG (each DataLoader iterator takes a seed), which
            # would shift every later dropout mask: training must not depend on eval_every
            self._rng = torch.random.get_rng_state()

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if logs and "loss" in logs:
            self.train_loss = float(logs["loss"])

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any
    ) -> None:
        if self._rng is not None:
            torch.random.set_rng_state(self._rng)
            self._rng = None
        self.metrics = eval_metrics(metrics or {}, self.spec.task)

    def on_save(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        step = state.global_step
        ckpt = Path(args.output_dir) / f"checkpoint-{step}"
        extra = {
            **norm_summary(model),
            "trainable_params": self.trainable,
            "step_time_s": self.step_time,
            "threads": self.threads.threads,
            **gpu_peak(),
            **self.lineage,
        }
        metrics = trial_report(
            self.spec,
            self.params,
            self.watch,
            step=step,
            train_loss=self.train_loss,
            evaluated=self.metrics,
            extra=extra,
        )
        reason = metrics["diverged_reason"]
        write_record(ckpt, self.params, metrics, self.labels)
        self.last = metrics
        self.report(metrics, str(ckpt))
        if reason:
            control.should_training_stop = True
