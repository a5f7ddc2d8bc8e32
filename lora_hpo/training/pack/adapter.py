"""One packed adapter's training state: its LoRA paths and head copy on the shared model, its
own AdamW (the head in its own group, ``training.head_learning_rate``), lr schedule,
gradient clipping, data order and divergence watch; saved as a PEFT adapter that
``PeftModel.from_pretrained`` loads, plus the state that resume needs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from lora_hpo.spec.schema import StudySpec
from lora_hpo.spec.space import TrialParams
from lora_hpo.training.model import model_source
from lora_hpo.training.monitor import DivergenceWatch
from lora_hpo.training.pack.batches import DataOrder
from lora_hpo.training.pack.model import PackedModel

STATE_FILE = "pack_state.pt"  # optimizer, schedule, data order, loss window
WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."


class Adapter:
    """Adapter ``key`` (one trial) on ``packed``, trained from ``spec.training``."""

    def __init__(
        self, key: str, spec: StudySpec, params: TrialParams, packed: PackedModel, rows: int
    ) -> None:
        from transformers import get_scheduler

        t = spec.training
        self.key, self.spec, self.params, self.packed = key, spec, params, packed
        self.targets = packed.add(key, params, t.seed)
        lora, head = packed.parameters(key)
        self.weights = lora + head
        head_lr = t.head_learning_rate or params.learning_rate
        groups = [
            {"params": lora, "lr": params.learning_rate},
            {"params": head, "lr": head_lr},
        ]
        self.optimizer = torch.optim.AdamW(
            [g for g in groups if g["params"]],
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=t.weight_decay,
            fused=True if t.optim == "adamw_torch_fused" else None,
        )
        self.schedule = get_scheduler(
            t.lr_scheduler,
            self.optimizer,
            num_warmup_steps=int(t.warmup_ratio * t.max_steps),
            num_training_steps=t.max_steps,
        )
        self.order = DataOrder(rows, t.batch_size, t.seed)
        self.step, self.loss_sum, self.loss_steps = 0, 0.0, 0
        self.watch = DivergenceWatch(spec.monitor)
        self.step_time = 0.0
        self.claimed_at, self.first_step_at = time.monotonic(), 0.0

    @property
    def trainable(self) -> int:
        return sum(p.numel() for p in self.weights)

    def update(self, loss: float) -> None:
        """After the shared backward: clip this adapter's gradient, step its optimizer and
        schedule, count the step."""
        clip = self.spec.training.max_grad_norm
        if clip and clip > 0:
            torch.nn.utils.clip_grad_norm_(self.weights, clip)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.loss_sum += loss
        self.loss_steps += 1

    def take_train_loss(self) -> float | None:
        """The mean train loss since the last report (transformers' logged ``loss``)."""
        if not self.loss_steps:
            return None
        mean = self.loss_sum / self.loss_steps
        self.loss_sum, self.loss_steps = 0.0, 0
        return mean

    def release(self) -> None:
        self.packed.remove(self.key)
        self.weights = []

    # -- checkpoints -----------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """A PEFT LoRA adapter (weights + config) and this adapter's resume state."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.peft_state_dict().items()}
        save_file(tensors, str(folder / WEIGHTS))
        self.peft_config().save_pretrained(str(folder))
        state = {
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "order": self.order.state_dict(),
            "step": self.step,
            "loss": (self.loss_sum, self.loss_steps),
            "watch": (self.watch.first_norm, self.watch.first_eval_loss),
            "step_time": self.step_time,
        }
        torch.save(state, folder / STATE_FILE)
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": self.step}))

    def load(self, folder: Path) -> None:
        """Resume from ``save``'s files: weights, optimizer, schedule, data position."""
        from safetensors.torch import load_file

        weights = load_file(str(folder / WEIGHTS))
        with torch.no_grad():
            for name, tensor in self.peft_state_dict().items():
                tensor.copy_(weights[name])
        state = torch.load(folder / STATE_FILE, weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.order.load_state_dict(state["order"])
        self.step = int(state["step"])
        self.loss_sum, self.loss_steps = state["loss"]
        self.watch.first_norm, self.watch.first_eval_loss = state["watch"]
        self.step_time = float(state["step_time"])

    def peft_state_dict(self) -> dict[str, torch.Tensor]:
        """The adapter's tensors under PEFT's names (live tensors: ``load`` copies into them)."""
        out = {}
        for name, path in self.packed.paths(self.key).items():
            out[f"{PEFT_PREFIX}{name}.lora_A.weight"] = path.lora_A.weight
            out[f"{PEFT_PREFIX}{name}.lora_B.weight"] = path.lora_B.weight
        head = self.packed.head_of(self.key)
        if head is not None:
            for name, tensor in head.state_dict(keep_vars=True).items():
                out[f"{PEFT_PREFIX}{self.packed.head_name}.{name}"] = tensor
        return out

    def peft_config(self) -> Any:
        from peft import LoraConfig, TaskType

        causal = self.spec.task == "causal-lm"
        return LoraConfig(
            task_type=TaskType.CAUSAL_LM if causal else TaskType.SEQ_CLS,
            r=self.params.r,
            lora_alpha=self.params.lora_alpha,  # type: ignore[arg-type]
            lora_dropout=self.params.lora_dropout,
            use_rslora=self.params.use_rslora,
            target_modules=list(self.targets),
            modules_to_save=None if causal else [str(self.packed.head_name)],
            base_model_name_or_path=model_source(self.spec)[1],
        )
