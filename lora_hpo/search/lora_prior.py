"""Where a LoRA study's good configs are expected before any trial runs: a prior over the
effective step size (lr x alpha/r, or lr x alpha/sqrt r with rsLoRA), over the rank (the task
type's rank band) and over alpha/r. The ``lora`` sampler (``lora_sampler``) draws from it,
mixed with draws near the incumbent and uniform ones, so a wrong prior costs a few trials.

The step-size centre is a rule from published LoRA recipes, not a fit to any table:

- the reference: lr 2e-4 at alpha/r = 2 (step 4e-4) for a 7B-class model (hidden size 4096)
  over about 1,000 optimizer steps, the recipe of the LoRA and QLoRA tutorials;
- a narrower model takes a larger step: x sqrt(4096 / hidden size), Adam's learning rate
  falling with width as muP and the published per-size recipes have it;
- a shorter run takes a larger step: x sqrt(1000 / max_steps), as the best constant learning
  rate rises when the training horizon shrinks.

The prior is wide (``STEP_SIGMA`` decades either side), and it is only a prior.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from lora_hpo.spec.registries import DEMO_MODELS, RANK_BANDS
from lora_hpo.spec.spec_schema import StudySpec

REFERENCE_STEP = 4e-4  # lr 2e-4 x alpha/r 2: the tutorial recipe for 7B-class models
REFERENCE_WIDTH = 4096  # their hidden size
REFERENCE_STEPS = 1000  # their run length, in optimizer steps
STEP_SIGMA = 0.5  # the prior's width over log10(step size)
ALPHA_RATIO = 2.0  # alpha = 2r, the common rule
ALPHA_SIGMA = 0.25  # decades


@dataclass(frozen=True)
class LoraPrior:
    step_size: float  # the centre of the log-normal prior over lr x effective scale
    step_sigma: float = STEP_SIGMA
    rank_band: tuple[int, int] | None = None  # the task type's ranks; None: any
    alpha_ratio: float = ALPHA_RATIO
    alpha_sigma: float = ALPHA_SIGMA


def model_width(spec: StudySpec) -> int | None:
    """The base model's hidden size where it is known without loading it: a demo model's, or
    a local folder's config.json; None for a hub model (the reference width is used)."""
    m = spec.model
    if m.demo is not None and m.demo in DEMO_MODELS:
        return DEMO_MODELS[m.demo].hidden_size
    if m.path is not None:
        try:
            config = json.loads((Path(m.path) / "config.json").read_text())
        except (OSError, ValueError):
            return None
        width = config.get("hidden_size") or config.get("n_embd") or config.get("d_model")
        return int(width) if isinstance(width, int) and width > 0 else None
    return None


def centre_step(width: int | None, max_steps: int) -> float:
    """The prior's centre for a model of hidden size ``width`` trained ``max_steps`` steps."""
    w = width or REFERENCE_WIDTH
    return REFERENCE_STEP * math.sqrt(REFERENCE_WIDTH / w) * math.sqrt(REFERENCE_STEPS / max_steps)


def lora_prior(spec: StudySpec) -> LoraPrior:
    """The study's prior, from its model, run length and task type."""
    band = RANK_BANDS.get(spec.task_type) if spec.task_type else None
    return LoraPrior(centre_step(model_width(spec), spec.training.max_steps), rank_band=band)
