"""The staged strategy's plan, as pure functions: stage 1's ranks and specs (r fixed, the
scale fixed), stage 2's spec (the plateau rank, alpha/r or alpha/sqrt r searched with the
learning rate), and the plateau rule."""

from __future__ import annotations

import dataclasses
from typing import Any

from lora_hpo.spec.space_params import Fixed, Range, can_be
from lora_hpo.spec.spec_schema import SpaceSpec, StudySpec


def ranks(spec: StudySpec) -> list[int]:
    """Stage 1's ranks: powers of two from r_min to r_max."""
    st, out = spec.search.staged, []
    r = st.r_min
    while r <= st.r_max:
        out.append(r)
        r *= 2
    return out


def _rslora(space: SpaceSpec) -> bool:
    return can_be(space.use_rslora, True)


def _stage(spec: StudySpec, name: str, space: SpaceSpec, samples: int) -> StudySpec:
    search = dataclasses.replace(
        spec.search,
        strategy="single",
        num_samples=samples,
        max_concurrent=min(spec.search.max_concurrent, samples),
    )
    tracking = dataclasses.replace(spec.tracking, experiment=spec.experiment)  # one experiment
    return dataclasses.replace(spec, name=name, space=space, search=search, tracking=tracking)


def _alpha_free(space: SpaceSpec, **alpha: Any) -> SpaceSpec:
    cleared = {"lora_alpha": None, "alpha_ratio": None, "alpha_scale": None}
    return dataclasses.replace(space, **(cleared | alpha))


def stage1_spec(spec: StudySpec, r: int) -> StudySpec:
    """r fixed; the scale fixed (α = r, or rsLoRA with a fixed α); lr as the spec says."""
    st = spec.search.staged
    if _rslora(spec.space):
        space = _alpha_free(spec.space, lora_alpha=Fixed(st.rslora_alpha), use_rslora=Fixed(True))
    else:
        space = _alpha_free(spec.space, alpha_ratio=Fixed(1.0))
    space = dataclasses.replace(space, r=Fixed(r))
    return _stage(spec, f"{spec.name}-stage1-r{r}", space, st.samples_per_rank)


def stage2_spec(spec: StudySpec, r: int) -> StudySpec:
    """r fixed at the plateau; α/r (or α/√r with rsLoRA) searched with the learning rate."""
    st = spec.search.staged
    band = Range(st.ratio_low, st.ratio_high)
    if _rslora(spec.space):
        space = _alpha_free(spec.space, alpha_scale=band, use_rslora=Fixed(True))
    else:
        space = _alpha_free(spec.space, alpha_ratio=band)
    space = dataclasses.replace(space, r=Fixed(r))
    return _stage(spec, f"{spec.name}-stage2", space, st.stage2_samples)


def gain(prev: float, cur: float, mode: str) -> float:
    """Relative improvement of ``cur`` over ``prev`` (positive is better)."""
    delta = (cur - prev) if mode == "max" else (prev - cur)
    return delta / abs(prev) if prev else delta


def plateau(scores: dict[int, float], tolerance: float, mode: str) -> int:
    """The smallest rank whose score is within ``tolerance`` (relative) of the best."""
    best = max(scores.values()) if mode == "max" else min(scores.values())
    return min(r for r, s in scores.items() if gain(s, best, mode) <= tolerance)
