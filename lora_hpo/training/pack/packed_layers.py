"""The layers of a packed base model: a frozen Linear (or 4-bit Linear) that applies each
adapter's LoRA path only to that adapter's rows, and a task head with one trained copy per
adapter.

The batch is the adapters' micro-batches concatenated along dim 0, and ``Routing`` says which
rows belong to which adapter. Row i's output depends only on the base weights and on the
adapter that owns row i, so no adapter's gradient depends on another's rows. LoRA dropout
draws its masks from a generator seeded by (adapter seed, step, layer), never from torch's
global RNG: the masks are the same packed or alone, in whatever order the adapters run, and
again when activation checkpointing recomputes a layer.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lora_hpo.training.adapter_monitor import weight_norm


@dataclass(frozen=True)
class Segment:
    """Rows [start, stop) of the packed batch belong to adapter ``key``, at its step ``step``."""

    key: str
    start: int
    stop: int
    step: int


@dataclass
class Routing:
    """Shared by every packed layer of one model: the segments of the batch in flight, and
    whether LoRA dropout is on (training) or off (evaluation)."""

    segments: tuple[Segment, ...] = ()
    training: bool = False
    layers: dict[str, int] = field(default_factory=dict)  # module name -> layer index

    def index(self, name: str) -> int:
        return self.layers.setdefault(name, len(self.layers))


def mask_seed(seed: int, step: int, layer: int) -> int:
    """A 63-bit seed for one adapter's dropout mask at one step in one layer."""
    mixed = (seed * 1_000_003 + step) * 10_007 + layer
    return (mixed * 0x9E3779B97F4A7C15) % (1 << 63)


def lora_dropout(x: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    """Inverted dropout with a mask from a fresh generator seeded with ``seed``."""
    if p <= 0.0:
        return x
    gen = torch.Generator(device=x.device).manual_seed(seed)
    keep = torch.empty(x.shape, device=x.device, dtype=x.dtype).bernoulli_(1.0 - p, generator=gen)
    return x * keep / (1.0 - p)


class LoraPath(nn.Module):
    """One adapter's low-rank update in one layer: ``scale * B(A(dropout(x)))``, as PEFT's
    LoRA Linear computes it (A: r x in, B: out x r, B starting at zero)."""

    def __init__(self, base: nn.Module, r: int, scale: float, dropout: float, gen: Any) -> None:
        super().__init__()
        out_features, in_features = _features(base)
        device = _device(base)
        # skip_init: torch's default init would draw from the global RNG
        self.lora_A = nn.utils.skip_init(nn.Linear, in_features, r, bias=False, device=device)
        self.lora_B = nn.utils.skip_init(nn.Linear, r, out_features, bias=False, device=device)
        with torch.no_grad():  # PEFT's init: A Kaiming-uniform from the adapter's seed, B zero
            a = torch.empty(r, in_features)
            nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=gen)
            self.lora_A.weight.copy_(a)
            self.lora_B.weight.zero_()
        self.scale, self.dropout = scale, dropout
        self.base_norm = weight_norm(base)  # for the relative-norm divergence rule

    def forward(self, x: torch.Tensor, seed: int | None) -> torch.Tensor:
        x = x.to(self.lora_A.weight.dtype)
        if seed is not None:
            x = lora_dropout(x, self.dropout, seed)
        out: torch.Tensor = self.lora_B(self.lora_A(x)) * self.scale
        return out


def _device(base: nn.Module) -> torch.device:
    return next(iter(base.parameters())).device


def _features(base: nn.Module) -> tuple[int, int]:
    """(out, in) features of a Linear, a bitsandbytes Linear4bit/8bit or a GPT-2 Conv1D."""
    layer: Any = base
    if hasattr(layer, "out_features"):
        return int(layer.out_features), int(layer.in_features)
    weight = layer.weight  # Conv1D keeps (in, out)
    return int(weight.shape[1]), int(weight.shape[0])


def per_segment(base: nn.Module, x: torch.Tensor, segments: tuple[Segment, ...]) -> torch.Tensor:
    """``base(x)``, computed segment by segment when x has no token axis (a pooler's
    [batch, features]). A GEMM's kernel, and so its rounding, can depend on how many rows it
    gets: a small-M matmul over 16 rows need not give row i what it gives over 8 (seen with MKL
    on AVX-512). Per segment, each adapter's rows go through the same shapes packed or alone.
    With a token axis a GEMM gets batch x tokens rows, where the same machine gave each row
    the same result at every row count tested (`tests/training/pack/test_engine.py`)."""
    if x.dim() != 2 or len(segments) < 2:
        out: torch.Tensor = base(x)
        return out
    return torch.cat([base(x[s.start : s.stop]) for s in segments])


class RowStableLinear(nn.Module):
    """A frozen base Linear that no adapter targets, computed per segment on 2-D inputs."""

    def __init__(self, base: nn.Module, routing: Routing) -> None:
        super().__init__()
        self.base_layer, self.routing = base, routing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_segment(self.base_layer, x, self.routing.segments)


class PackedLinear(nn.Module):
    """A frozen base layer plus LoRA paths keyed by adapter; each path sees only its rows."""

    def __init__(self, base: nn.Module, name: str, routing: Routing) -> None:
        super().__init__()
        self.base_layer, self.name, self.routing = base, name, routing
        self.layer = routing.index(name)
        self.paths = nn.ModuleDict()
        self.seeds: dict[str, int] = {}

    def add(self, key: str, path: LoraPath, seed: int) -> None:
        self.paths[key], self.seeds[key] = path, seed

    def remove(self, key: str) -> None:
        if key in self.paths:
            del self.paths[key]
            del self.seeds[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        segments = self.routing.segments
        out = per_segment(self.base_layer, x, segments)
        if not any(s.key in self.paths for s in segments):
            return out
        parts = []
        for s in segments:
            if s.key not in self.paths:  # this adapter does not target this layer
                parts.append(out.new_zeros((s.stop - s.start, *out.shape[1:])))
                continue
            path = self.paths[s.key]
            seed = None
            if self.routing.training:
                seed = mask_seed(self.seeds[s.key], s.step, self.layer)
            parts.append(path(x[s.start : s.stop], seed).to(out.dtype))
        summed: torch.Tensor = out + torch.cat(parts)
        return summed


class PackedHead(nn.Module):
    """The task head with one trained copy per adapter, each applied to its own rows."""

    def __init__(self, base: nn.Module, routing: Routing) -> None:
        super().__init__()
        self.pristine, self.routing = base, routing
        self.copies = nn.ModuleDict()

    def add(self, key: str) -> nn.Module:
        head = copy.deepcopy(self.pristine)
        for p in head.parameters():
            p.requires_grad_(True)
        self.copies[key] = head.float() if _is_half(head) else head
        return self.copies[key]

    def remove(self, key: str) -> None:
        if key in self.copies:
            del self.copies[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        for s in self.routing.segments:
            head = self.copies[s.key]
            rows = x[s.start : s.stop]
            parts.append(head(rows.to(next(head.parameters()).dtype)))
        return torch.cat(parts)


def _is_half(module: nn.Module) -> bool:
    return any(p.dtype in (torch.float16, torch.bfloat16) for p in module.parameters())


def set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at dotted ``name``."""
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, leaf, module)
