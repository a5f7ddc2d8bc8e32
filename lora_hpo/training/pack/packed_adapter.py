"""One packed adapter's training state: its LoRA paths and head copy on the shared model, its
own optimizer and lr schedule (``training.optim``: the rules an unpacked trial trains by),
gradient clipping, data order and divergence watch; saved as a PEFT adapter that
``PeftModel.from_pretrained`` loads, plus the state that resume needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lora_hpo.spec.search_space import TrialParams
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.adapter_monitor import DivergenceWatch
from lora_hpo.training.base_model import model_source
from lora_hpo.training.pack.packed_batches import DataOrder
from lora_hpo.training.pack.packed_model import PackedModel
from lora_hpo.training.trial_checkpoints import load_training_state, save_training_state
from lora_hpo.training.trial_optimizer import build_optimizer, build_schedule

WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."


class Adapter:
    """Adapter ``key`` (one trial) on ``packed``, trained from ``spec.training``."""

    def __init__(
        self, key: str, spec: StudySpec, params: TrialParams, packed: PackedModel, rows: int
    ) -> None:
        t = spec.training
        self.key, self.spec, self.params, self.packed = key, spec, params, packed
        self.targets = packed.add(key, params, t.seed)
        lora, head = packed.parameters(key)
        self.weights = lora + head
        self.optimizer = build_optimizer(lora, head, spec, params)  # as an unpacked trial's
        self.schedule = build_schedule(self.optimizer, spec)
        self.order = DataOrder(rows, t.batch_size, t.seed)
        self.step, self.loss_sum, self.loss_steps = 0, 0.0, 0
        self.watch = DivergenceWatch(spec.monitor)
        self.step_time = 0.0

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
        """A PEFT LoRA adapter (weights + config) and the state that resume needs, in the
        format of an unpacked trial's checkpoint (``trial_checkpoints``)."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.peft_state_dict().items()}
        save_file(tensors, str(folder / WEIGHTS))
        self.peft_config().save_pretrained(str(folder))
        more = {
            "order": self.order.state_dict(),
            "loss": [self.loss_sum, self.loss_steps],
            "watch": [self.watch.first_norm, self.watch.first_eval_loss],
            "step_time": self.step_time,
        }
        save_training_state(folder, self.optimizer, self.schedule, self.step, more)

    def load(self, folder: Path) -> None:
        """Resume from ``save``'s files: weights, optimizer, schedule, data position."""
        from safetensors.torch import load_file

        weights = load_file(str(folder / WEIGHTS))
        with torch.no_grad():
            for name, tensor in self.peft_state_dict().items():
                tensor.copy_(weights[name])
        self.step, more = load_training_state(folder, self.optimizer, self.schedule)
        self.order.load_state_dict(more["order"])
        self.loss_sum, self.loss_steps = more["loss"]
        self.watch.first_norm, self.watch.first_eval_loss = more["watch"]
        self.step_time = float(more["step_time"])

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
