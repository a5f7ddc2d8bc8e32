"""Domain guardrails: legal specs that are known to go wrong, as warnings (ARCHITECTURE.md,
Guardrails): rsLoRA at small r, a high alpha/r with a high learning rate, ranks outside the
task type's band."""

from __future__ import annotations

import math

from lora_hpo.spec.registries import RANK_BANDS
from lora_hpo.spec.space_params import bounds, can_be
from lora_hpo.spec.spec_schema import SpaceSpec, StudySpec


def max_alpha_ratio(space: SpaceSpec) -> float:
    """The largest α/r the space can reach."""
    r_lo, _ = bounds(space.r)
    if space.alpha_ratio is not None:
        return float(bounds(space.alpha_ratio)[1])
    if space.alpha_scale is not None:
        return float(bounds(space.alpha_scale)[1]) / math.sqrt(r_lo)
    if space.lora_alpha is not None:
        return float(bounds(space.lora_alpha)[1]) / float(r_lo)
    return 0.0


def lr_high(space: SpaceSpec, ratio: float) -> float:
    """The highest learning rate the space reaches among configs with alpha/r >= ``ratio``.
    With ``step_size`` the rate is derived (lr = step_size / s): at alpha/r = ratio the scale
    s is at least ``ratio`` (standard LoRA) or ``ratio * sqrt(r)`` (rsLoRA)."""
    if space.learning_rate is not None:
        return float(bounds(space.learning_rate)[1])
    assert space.step_size is not None  # checks.py requires one of the two
    r_lo = float(bounds(space.r)[0])
    smallest_scale = ratio if can_be(space.use_rslora, False) else ratio * math.sqrt(r_lo)
    return float(bounds(space.step_size)[1]) / smallest_scale


def guardrail_warnings(spec: StudySpec) -> list[str]:
    """Domain-rule warnings: legal, but known to go wrong (ARCHITECTURE.md, Guardrails)."""
    space, out = spec.space, []
    r_lo, r_hi = bounds(space.r)
    if can_be(space.use_rslora, True) and r_lo < 8:
        out.append(
            f"space: rsLoRA with r < 8 is reachable (r down to {r_lo});"
            " rsLoRA misbehaves at small r"
        )
    lr_hi = lr_high(space, 4.0)
    if max_alpha_ratio(space) >= 4 and lr_hi > 3e-4:
        derived = " (derived from step_size)" if space.step_size is not None else ""
        out.append(
            f"space: alpha/r >= 4 (up to {max_alpha_ratio(space):g}) is reachable together with"
            f" learning_rate > 3e-4 (up to {lr_hi:g}{derived}); the adapter norm tends to blow up"
        )
    if spec.task_type is not None:
        lo, hi = RANK_BANDS[spec.task_type]
        if r_lo < lo or r_hi > hi:
            out.append(
                f"space.r: range {r_lo}..{r_hi} reaches outside the {spec.task_type}"
                f" band {lo}..{hi}"
            )
    return out
