"""Adapter norm ‖s·BA‖_F per layer, without forming BA, and the divergence rule.

‖s·BA‖²_F = s² · sum((BᵀB) ⊙ (AAᵀ)), where BᵀB and AAᵀ are r×r: cheap at any layer width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lora_hpo.spec.spec_schema import MonitorSpec


def frobenius_ba(a: Any, b: Any, scale: float) -> float:
    """‖scale · B @ A‖_F from A (r×k) and B (d×r) using only r×r products."""
    a32, b32 = a.detach().float(), b.detach().float()
    gram = (b32.T @ b32) * (a32 @ a32.T)
    return abs(scale) * math.sqrt(max(gram.sum().item(), 0.0))


def weight_norm(layer: Any) -> float:
    """‖W₀‖_F of a base layer; a 4-bit weight (bitsandbytes) is dequantized first."""
    weight = getattr(layer, "weight", None)
    if weight is None:
        return 0.0
    state = getattr(weight, "quant_state", None)
    if state is not None:
        import bitsandbytes.functional as bnbf

        weight = bnbf.dequantize_4bit(weight.data, state)
    return float(weight.detach().float().norm().item())


def adapter_norms(model: Any) -> list[tuple[float, float]]:
    """(‖s·BA‖_F, ‖s·BA‖_F / ‖W₀‖_F) for every LoRA (or AdaLoRA) layer of the model."""
    norms = []
    for module in model.modules():
        lora_a = getattr(module, "lora_A", None)
        if lora_a is None or not hasattr(module, "scaling"):
            continue
        for name in list(getattr(lora_a, "keys", lambda: [])()):
            a_mod, b_mod = lora_a[name], module.lora_B[name]
            a = a_mod.weight if hasattr(a_mod, "weight") else a_mod
            b = b_mod.weight if hasattr(b_mod, "weight") else b_mod
            scale = float(module.scaling[name])
            if hasattr(module, "lora_E"):  # AdaLoRA: ΔW = B (E ⊙ A) · s / ranknum
                a = a * module.lora_E[name]
                scale = scale / (float(module.ranknum[name]) + 1e-5)
            norm = frobenius_ba(a, b, scale)
            base_norm = weight_norm(getattr(module, "base_layer", None))
            norms.append((norm, norm / base_norm if base_norm else 0.0))
    return norms


def norm_summary(model: Any) -> dict[str, float]:
    """Mean and max adapter norm over layers, and the max relative to the base weight."""
    return summarize_norms(adapter_norms(model))


def summarize_norms(norms: list[tuple[float, float]]) -> dict[str, float]:
    """The report's norm fields from (‖s·BA‖_F, relative to ‖W₀‖_F) per layer."""
    if not norms:
        return {"adapter_norm_mean": 0.0, "adapter_norm_max": 0.0, "adapter_norm_rel_max": 0.0}
    absolute = [n for n, _ in norms]
    return {
        "adapter_norm_mean": sum(absolute) / len(absolute),
        "adapter_norm_max": max(absolute),
        "adapter_norm_rel_max": max(r for _, r in norms),
    }


@dataclass
class DivergenceWatch:
    """Ends a trial as ``diverged`` on a non-finite loss, an adapter update that dwarfs the base
    weights, runaway norm growth, or an eval-loss blow-up (the last two measured against the
    trial's first report)."""

    rules: MonitorSpec
    first_norm: float | None = None
    first_eval_loss: float | None = None

    def check(self, metrics: dict[str, float]) -> str | None:
        """The reason the trial diverged, or None while it is healthy."""
        for key in ("train_loss", "eval_loss"):
            value = metrics.get(key)
            if value is not None and not math.isfinite(value):
                return f"{key} is {value}"
        norm, loss = metrics.get("adapter_norm_max"), metrics.get("eval_loss")
        if norm is not None and not math.isfinite(norm):
            return f"adapter norm is {norm}"
        rel = metrics.get("adapter_norm_rel_max")
        if rel is not None and rel > self.rules.relative_norm:
            return (
                f"adapter update reached {rel:.3g}x the base weight norm"
                f" (limit {self.rules.relative_norm:g}x)"
            )
        if self.first_norm is None and norm:
            self.first_norm = norm
        elif self.first_norm and norm and norm > self.rules.norm_growth * self.first_norm:
            growth = norm / self.first_norm
            return f"adapter norm grew {growth:.0f}x (limit {self.rules.norm_growth:g}x)"
        if self.first_eval_loss is None and loss is not None:
            self.first_eval_loss = loss
        elif self.first_eval_loss and loss and loss > self.rules.loss_blowup * self.first_eval_loss:
            return (
                f"eval_loss rose to {loss:.3g}, over {self.rules.loss_blowup:g}x its first"
                f" value {self.first_eval_loss:.3g}"
            )
        return None


WORST = {"min": 1e9, "max": 0.0}  # what the searcher learns for a metric that is NaN/inf


def searchable(value: float | None, mode: str) -> float:
    """A finite value for the searcher: NaN or inf becomes the worst value for the mode."""
    if value is None or not math.isfinite(value):
        return WORST[mode]
    return value
