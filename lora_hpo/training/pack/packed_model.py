"""The packed base model: the frozen base, in eval mode for good, with the adapters' target
layers wrapped in ``PackedLinear`` (as adapters ask for them) and the task head in a
``PackedHead``. One forward over a batch whose rows are split into segments, one per adapter.

The base's own dropout stays off: it draws from torch's global RNG across all rows at once, so
it would tie one adapter's masks to the others' rows. LoRA dropout stays on, per adapter.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lora_hpo.spec.search_space import TrialParams
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.spec.target_modules import match_targets
from lora_hpo.training.adapter_monitor import frobenius_ba
from lora_hpo.training.base_model import BaseModel
from lora_hpo.training.lora_adapters import LINEAR_KINDS, linear_module_names
from lora_hpo.training.pack.packed_layers import (
    LoraPath,
    PackedHead,
    PackedLinear,
    Routing,
    RowStableLinear,
    Segment,
    set_module,
)

HEAD_NAMES = ("classifier", "score")  # PEFT's modules_to_save for sequence classification


def base_linears(model: nn.Module) -> list[str]:
    """The base's linear layers outside the task or LM head, poolers included."""
    return [
        name
        for name, module in model.named_modules()
        if type(module).__name__ in LINEAR_KINDS
        and name.split(".")[0] not in (*HEAD_NAMES, "lm_head")
    ]


class PackedModel:
    """A base model shared by adapters keyed by name."""

    def __init__(self, spec: StudySpec, entry: BaseModel) -> None:
        self.spec, self.entry, self.model = spec, entry, entry.model
        self.model.requires_grad_(False)
        self.model.train(False)
        self.routing = Routing()
        self.names = linear_module_names(self.model)
        self.linears: dict[str, PackedLinear] = {}
        # every base linear row-stable (poolers too) until an adapter targets it (PackedLinear)
        for name in base_linears(self.model):
            set_module(
                self.model, name, RowStableLinear(self.model.get_submodule(name), self.routing)
            )
        self.head: PackedHead | None = None
        self.head_name: str | None = None
        if spec.task == "sequence-classification":
            self.head_name = next(n for n in HEAD_NAMES if hasattr(self.model, n))
            self.head = PackedHead(getattr(self.model, self.head_name), self.routing)
            set_module(self.model, self.head_name, self.head)
        self.device = next(self.model.parameters()).device

    def target_names(self, target: str | tuple[str, ...]) -> list[str]:
        """Full module names the adapter wraps, in model order (its init order)."""
        matched = match_targets(self.names, target)
        if matched == "all-linear":
            return list(self.names)
        return [n for n in self.names if any(n == w or n.endswith("." + w) for w in matched)]

    def add(self, key: str, params: TrialParams, seed: int) -> list[str]:
        """Fresh LoRA paths for adapter ``key`` in its target layers (A from ``seed``), and a
        copy of the pristine head; returns the wrapped module names."""
        gen = torch.Generator().manual_seed(seed)
        names = self.target_names(params.target_modules)
        for name in names:
            if name not in self.linears:
                stable = self.model.get_submodule(name)
                assert isinstance(stable, RowStableLinear)
                layer = PackedLinear(stable.base_layer, name, self.routing)
                set_module(self.model, name, layer)
                self.linears[name] = layer
            base = self.linears[name].base_layer
            path = LoraPath(base, params.r, params.scaling, params.lora_dropout, gen)
            self.linears[name].add(key, path, seed)
        if self.head is not None:
            self.head.add(key).to(self.device)
        return names

    def remove(self, key: str) -> None:
        for layer in self.linears.values():
            layer.remove(key)
        if self.head is not None:
            self.head.remove(key)

    def paths(self, key: str) -> dict[str, LoraPath]:
        out: dict[str, LoraPath] = {}
        for name, layer in self.linears.items():
            if key in layer.paths:
                path = layer.paths[key]
                assert isinstance(path, LoraPath)
                out[name] = path
        return out

    def head_of(self, key: str) -> nn.Module | None:
        return self.head.copies[key] if self.head is not None else None

    def parameters(self, key: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(LoRA parameters, head parameters) of adapter ``key``."""
        lora = [p for path in self.paths(key).values() for p in path.parameters()]
        head = self.head_of(key)
        return lora, list(head.parameters()) if head is not None else []

    def norms(self, key: str) -> list[tuple[float, float]]:
        """(‖s·BA‖_F, relative to ‖W₀‖_F) per layer of adapter ``key``."""
        out = []
        for path in self.paths(key).values():
            norm = frobenius_ba(path.lora_A.weight, path.lora_B.weight, path.scale)
            out.append((norm, norm / path.base_norm if path.base_norm else 0.0))
        return out

    def logits(
        self, batch: dict[str, Any], segments: tuple[Segment, ...], training: bool
    ) -> torch.Tensor:
        """One forward of the base over the whole batch, each segment through its adapter."""
        self.routing.segments, self.routing.training = segments, training
        inputs = {k: v.to(self.device) for k, v in batch.items() if k != "labels"}
        try:
            logits: torch.Tensor = self.model(**inputs).logits
            return logits
        finally:
            self.routing.segments = ()
