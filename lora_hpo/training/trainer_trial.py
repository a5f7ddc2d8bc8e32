"""One trial as plain Python: cached base model -> fresh LoRA adapter -> transformers
``Trainer`` -> a report (with the adapter as a checkpoint) at every eval step, through a
``Reporter`` callback, so it runs in tests without Ray. ``tune_trainable.py`` wraps it for Ray Tune;
``trainer_reports.py`` is the Trainer callback that builds each report.
"""

from __future__ import annotations

from typing import Any

from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.spec.search_space import TrialParams, derive
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.base_model import (
    BaseModel,
    base_model,
    load_tokenizer,
    model_source,
    release,
)
from lora_hpo.training.classification_metrics import classification_metrics
from lora_hpo.training.lora_adapters import attach
from lora_hpo.training.mixed_precision import mixed_precision
from lora_hpo.training.trainer_reports import ReportBridge, Reporter
from lora_hpo.training.trial_data import TrialData, collator, trial_data
from lora_hpo.training.trial_optimizer import build_optimizer, build_schedule, split_head
from lora_hpo.training.trial_threads import LentThreads, own_threads

__all__ = ["Reporter", "prepare", "run_trial"]


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
        eval_strategy="no",  # the bridge asks for an eval, a save and a log at eval_steps(spec)
        save_strategy="no",
        save_total_limit=2,
        logging_strategy="no",
        label_names=["labels"],
        report_to="none",
        seed=t.seed,
        data_seed=t.seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=True,
        bf16=mixed_precision(spec) == "bf16",
        fp16=mixed_precision(spec) == "fp16",
        optim=t.optim,
        **checkpointing_args(t.gradient_checkpointing),
    )


def checkpointing_args(on: bool) -> dict[str, Any]:
    """Gradient (activation) checkpointing for the Trainer, under the name this transformers
    takes: ``activation_checkpointing`` (5.x), else ``gradient_checkpointing``."""
    import dataclasses

    from transformers import TrainingArguments

    if not on:
        return {}
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing"
    )
    return {name: True, f"{name}_kwargs": {"use_reentrant": False}}


def _trainer(
    spec: StudySpec, entry: BaseModel, data: TrialData, params: TrialParams, out_dir: str
) -> Any:
    from transformers import PrinterCallback, ProgressCallback, Trainer

    model = attach(entry, params, spec, spec.training.seed)
    args = training_args(spec, params, out_dir)
    optimizer = build_optimizer(*split_head(model), spec, params, args, model)
    trainer = Trainer(
        optimizers=(optimizer, build_schedule(optimizer, spec)),  # the rules a pack trains by
        model=model,
        args=args,
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
    return base_model(spec, labels=data.label_names), data


def run_trial(
    spec: StudySpec,
    sampled: dict[str, Any],
    report: Reporter,
    *,
    resume_from: str | None = None,
    workdir: str | None = None,
    threads: LentThreads | None = None,
) -> dict[str, Any]:
    """Train one adapter for ``sampled`` params; report at every eval; return the last report.
    With ``threads``, it follows the thread count the driver lends it (idle slots at a study's
    tail: ``lora_hpo.training.trial_threads``).

    Under Ray Tune, ``report`` blocks until the driver has taken the result, and a trial that
    the scheduler stops (ASHA at a rung) ends inside that call; nothing here polls for it."""
    import torch

    own = own_threads(spec.resources.cpu)
    torch.set_num_threads(own)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()  # each trial's own peak (a worker runs several)
    params = derive(spec.space, sampled)
    entry, data = prepare(spec)
    scratch = Scratch("trial") if workdir is None else None  # swept later if killed
    out_dir = scratch.name if scratch is not None else str(workdir)
    try:
        trainer = _trainer(spec, entry, data, params, out_dir)
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        threads = threads or LentThreads(None, own)
        bridge = ReportBridge(spec, params, report, trainable, data.label_names, threads)
        bridge.lineage = {"base_revision": entry.revision, "data_fingerprint": data.fingerprint}
        trainer.add_callback(bridge)
        trainer.train(resume_from_checkpoint=resume_from)
        return bridge.last
    finally:
        release(entry)
        if scratch is not None:
            scratch.cleanup()
