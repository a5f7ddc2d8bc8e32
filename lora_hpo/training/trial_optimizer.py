"""A trial's optimizer and learning-rate schedule: one rule for a trial that transformers'
Trainer trains and for a packed adapter (``training.pack``), so a change to either reaches
both. The optimizer is ``training.optim``, by transformers' name for it (its class and
defaults: betas, eps, fused), over two groups: the adapter at the trial's learning rate, and a
new task head (PEFT's ``modules_to_save``, which starts from random weights) at
``training.head_learning_rate`` when given; both with ``training.weight_decay``. The schedule
is transformers' ``training.lr_scheduler`` with ``training.warmup_ratio`` of the steps as
warmup."""

from __future__ import annotations

import tempfile
from typing import Any

from lora_hpo.spec.search_space import TrialParams
from lora_hpo.spec.spec_schema import StudySpec


def optimizer_args(spec: StudySpec, params: TrialParams) -> Any:
    """The TrainingArguments that name the optimizer and its defaults (nothing is written)."""
    import torch
    from transformers import TrainingArguments

    t = spec.training
    return TrainingArguments(
        output_dir=tempfile.gettempdir(),  # never written: only the optimizer is read
        optim=t.optim,
        learning_rate=params.learning_rate,
        weight_decay=t.weight_decay,
        use_cpu=not torch.cuda.is_available(),
        report_to="none",
    )


def build_optimizer(
    adapter: list[Any],
    head: list[Any],
    spec: StudySpec,
    params: TrialParams,
    args: Any = None,
    model: Any = None,
) -> Any:
    """``training.optim`` over the ``adapter`` and ``head`` parameters. ``args``: the trial's
    TrainingArguments, when a Trainer trains it (else ``optimizer_args``); ``model``: the
    model, for the optimizers that read it (GaLore, LOMO)."""
    from transformers import Trainer

    args = args if args is not None else optimizer_args(spec, params)
    head_lr = spec.training.head_learning_rate or params.learning_rate
    decay = spec.training.weight_decay
    groups = [
        {"params": adapter, "lr": params.learning_rate, "weight_decay": decay},
        {"params": head, "lr": head_lr, "weight_decay": decay},
    ]
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    return cls([g for g in groups if g["params"]], **kwargs)


def build_schedule(optimizer: Any, spec: StudySpec) -> Any:
    """``training.lr_scheduler`` over ``training.max_steps`` optimizer steps, with warmup."""
    from transformers import get_scheduler

    t = spec.training
    return get_scheduler(
        t.lr_scheduler,
        optimizer,
        num_warmup_steps=int(t.warmup_ratio * t.max_steps),
        num_training_steps=t.max_steps,
    )


def split_head(model: Any) -> tuple[list[Any], list[Any]]:
    """A PEFT model's trainable parameters: (the adapter's, the new task head's)."""
    adapter: list[Any] = []
    head: list[Any] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (head if "modules_to_save" in name else adapter).append(p)
    return adapter, head
