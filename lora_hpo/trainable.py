"""One trial: cached base model -> fresh LoRA adapter -> transformers ``Trainer`` -> a report
(with the adapter as a checkpoint) at every eval step.

``run_trial`` is plain Python with a ``Reporter`` callback, so it runs in tests without Ray;
``tune_trainable`` is the Ray Tune function trainable that wraps it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from transformers import TrainerCallback

from lora_hpo.data import TrialData, collator, trial_data
from lora_hpo.model import BaseModel, attach, base_model, load_tokenizer, model_source, release
from lora_hpo.monitor import DivergenceWatch, norm_summary, searchable
from lora_hpo.space import TrialParams, derive
from lora_hpo.spec import StudySpec

TRIAL_FILE = "lora_hpo_trial.json"  # params + metrics, written beside every adapter checkpoint


class Reporter(Protocol):
    def __call__(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None: ...


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


def precision(spec: StudySpec) -> str:
    """fp32, bf16 or fp16; ``auto`` picks bf16 on a GPU that has it."""
    import torch

    want = spec.training.precision
    if want == "auto":
        want = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return want


def training_args(spec: StudySpec, params: TrialParams, out_dir: str) -> Any:
    import torch
    from transformers import TrainingArguments

    t = spec.training
    return TrainingArguments(
        output_dir=out_dir,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size or 2 * t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation,
        learning_rate=params.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=int(t.warmup_ratio * t.max_steps),
        lr_scheduler_type=t.lr_scheduler,
        max_grad_norm=t.max_grad_norm,
        eval_strategy="steps",
        eval_steps=t.eval_every,
        save_strategy="steps",
        save_steps=t.eval_every,
        save_total_limit=2,
        logging_strategy="steps",
        logging_steps=t.eval_every,
        label_names=["labels"],
        report_to="none",
        seed=t.seed,
        data_seed=t.seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=True,
        bf16=precision(spec) == "bf16",
        fp16=precision(spec) == "fp16",
    )


class _TuneBridge(TrainerCallback):  # type: ignore[misc]
    """Trainer callback: collects logs and eval metrics, and reports at every save."""

    def __init__(
        self,
        spec: StudySpec,
        params: TrialParams,
        report: Reporter,
        trainable: int,
        should_stop: Callable[[], bool],
    ) -> None:
        self.spec, self.params, self.report = spec, params, report
        self.trainable, self.should_stop = trainable, should_stop
        self.watch = DivergenceWatch(spec.monitor)
        self.train_loss: float | None = None
        self.metrics: dict[str, float] = {}
        self.last: dict[str, Any] = {}
        self.lineage: dict[str, str] = {}  # base revision/hash and data fingerprint (MLflow tags)
        self.step_time = 0.0  # seconds spent inside training steps (benchmarks read it)
        self.start_s: float | None = None  # from run_trial's start to the first step
        self.entered = time.perf_counter()
        self._t0 = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._t0 = time.perf_counter()
        if self.start_s is None:
            self.start_s = self._t0 - self.entered

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        model = kw.get("model")
        if self.params.adapter == "adalora" and model is not None:
            model.base_model.update_and_allocate(state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.step_time += time.perf_counter() - self._t0
        if state.global_step >= args.max_steps:  # always evaluate and save the last step
            control.should_evaluate = control.should_save = True
        if self.should_stop():  # the scheduler stopped this trial: end now, not at next eval
            control.should_training_stop = True

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if logs and "loss" in logs:
            self.train_loss = float(logs["loss"])

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any
    ) -> None:
        self.metrics = {k: float(v) for k, v in (metrics or {}).items() if k.startswith("eval_")}
        if self.spec.task == "causal-lm" and "eval_loss" in self.metrics:
            loss = self.metrics["eval_loss"]
            self.metrics["eval_perplexity"] = math.exp(loss) if loss < 700 else math.inf

    def on_save(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        step = state.global_step
        ckpt = Path(args.output_dir) / f"checkpoint-{step}"
        metrics: dict[str, Any] = {
            "step": step,
            "train_loss": self.train_loss if self.train_loss is not None else math.nan,
            **{
                k: v for k, v in self.metrics.items() if not k.endswith(("_runtime", "_per_second"))
            },
            **norm_summary(model),
            "effective_scale": self.params.scaling,
            "lora_alpha": self.params.lora_alpha,
            "trainable_params": self.trainable,
            "step_time_s": self.step_time,
            "start_s": self.start_s or 0.0,
            **self.lineage,
        }
        reason = self.watch.check(metrics)
        done = step >= args.max_steps
        metrics["status"] = "diverged" if reason else ("completed" if done else "running")
        metrics["diverged_reason"] = reason or ""
        name = self.spec.metric
        metrics[f"{name}_raw"] = metrics.get(name, math.nan)
        metrics[name] = searchable(metrics.get(name), self.spec.mode)
        (ckpt / TRIAL_FILE).write_text(
            json.dumps({"params": self.params.as_dict(), "metrics": metrics}, default=str)
        )
        self.last = metrics
        self.report(metrics, str(ckpt))
        if reason:
            control.should_training_stop = True


def optimizer(model: Any, spec: StudySpec, params: TrialParams) -> Any:
    """AdamW over the trainable params; a new task head (PEFT's modules_to_save) may get its own
    learning rate (``training.head_learning_rate``), since it starts from random weights."""
    import torch

    head_lr = spec.training.head_learning_rate or params.learning_rate
    groups: dict[bool, list[Any]] = {True: [], False: []}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups["modules_to_save" in name].append(p)
    decay = spec.training.weight_decay
    param_groups = [
        {"params": groups[False], "lr": params.learning_rate, "weight_decay": decay},
        {"params": groups[True], "lr": head_lr, "weight_decay": decay},
    ]
    return torch.optim.AdamW([g for g in param_groups if g["params"]])


def _trainer(
    spec: StudySpec, entry: BaseModel, data: TrialData, params: TrialParams, out_dir: str
) -> Any:
    from transformers import PrinterCallback, ProgressCallback, Trainer

    model = attach(entry, params, spec, spec.training.seed)
    trainer = Trainer(
        optimizers=(optimizer(model, spec, params), None),  # Trainer builds the LR schedule
        model=model,
        args=training_args(spec, params, out_dir),
        train_dataset=data.train,
        eval_dataset=data.eval,
        data_collator=collator(entry.tokenizer, spec.task),
        compute_metrics=classification_metrics if spec.task != "causal-lm" else None,
    )
    for noisy in (PrinterCallback, ProgressCallback):  # progress is shown by the driver
        trainer.remove_callback(noisy)
    return trainer


def prepare(spec: StudySpec) -> tuple[BaseModel, TrialData]:
    """Base model and tokenised data (both cached per process)."""
    tokenizer = load_tokenizer(spec)
    data = trial_data(spec, tokenizer, model_source(spec)[0])
    labels = len(data.label_names) if data.label_names else None
    return base_model(spec, num_labels=labels), data


def run_trial(
    spec: StudySpec,
    sampled: dict[str, Any],
    report: Reporter,
    *,
    resume_from: str | None = None,
    workdir: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Train one adapter for ``sampled`` params; report at every eval; return the last report."""
    import torch

    entered = time.perf_counter()
    torch.set_num_threads(max(1, int(spec.resources.cpu)))
    params = derive(spec.space, sampled)
    entry, data = prepare(spec)
    out_dir = workdir or tempfile.mkdtemp(prefix="lora-hpo-trial-")
    try:
        trainer = _trainer(spec, entry, data, params, out_dir)
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        bridge = _TuneBridge(spec, params, report, trainable, should_stop)
        bridge.entered = entered
        bridge.lineage = {"base_revision": entry.revision, "data_fingerprint": data.fingerprint}
        trainer.add_callback(bridge)
        trainer.train(resume_from_checkpoint=resume_from)
        return bridge.last
    finally:
        release(entry)
        if workdir is None:
            shutil.rmtree(out_dir, ignore_errors=True)


def _stop_requested() -> bool:
    """True once Ray Tune has asked this trial to stop (e.g. ASHA at a rung), so the trial
    ends at the next step instead of training on to its next report."""
    try:
        from ray.train._internal.session import get_session
    except ImportError:  # pragma: no cover - ray internals moved
        return False
    session = get_session()
    return bool(session is not None and session.stop_event.is_set())


def newest_checkpoint(checkpoint: Any) -> Any:
    """The trial's newest complete checkpoint. After a driver crash Tune restores from the
    checkpoint named in its last experiment snapshot, which may be older than the trial's last
    report, and ``num_to_keep`` may have deleted it since; the trial directory holds the newer
    ones (the steps after it were already reported)."""
    from pyarrow import fs
    from ray import tune

    filesystem, parent = checkpoint.filesystem, checkpoint.path.rstrip("/").rsplit("/", 1)[0]
    found = filesystem.get_file_info(fs.FileSelector(parent, allow_not_found=True))
    names = [i.base_name for i in found if i.type == fs.FileType.Directory]
    for name in sorted((n for n in names if n.startswith("checkpoint_")), reverse=True):
        path = f"{parent}/{name}"
        files = filesystem.get_file_info([f"{path}/trainer_state.json", f"{path}/{TRIAL_FILE}"])
        if all(f.type == fs.FileType.File for f in files):
            return tune.Checkpoint(path, filesystem=filesystem)
    return checkpoint


def tune_trainable(config: dict[str, Any], spec: StudySpec) -> None:
    """The Ray Tune function trainable: resumes from ``tune.get_checkpoint()`` when given."""
    from ray import tune

    from lora_hpo.quiet import quiet_libraries

    quiet_libraries()
    import ray

    placement = {  # where this trial ran: node, devices Ray assigned, when it started
        "node_id": ray.get_runtime_context().get_node_id(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "started_at": time.time(),
    }

    def report(metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**metrics, **placement, "reported_at": time.time()}, checkpoint=ckpt)

    with tempfile.TemporaryDirectory(prefix="lora-hpo-trial-") as work:
        resume_from = None
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            checkpoint = newest_checkpoint(checkpoint)
            state = json.loads(
                Path(checkpoint.to_directory(os.path.join(work, "restore")))
                .joinpath("trainer_state.json")
                .read_text()
            )
            resume_from = os.path.join(work, f"checkpoint-{state['global_step']}")
            os.rename(os.path.join(work, "restore"), resume_from)
            if state["global_step"] >= spec.training.max_steps:  # died after its last report
                done = json.loads(Path(resume_from, TRIAL_FILE).read_text())["metrics"]
                report(done, resume_from)
                return
        run_trial(
            spec,
            config,
            report,
            resume_from=resume_from,
            workdir=work,
            should_stop=_stop_requested,
        )
