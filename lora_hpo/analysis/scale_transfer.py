"""``lora-hpo transfer``: carry a tuned config to a model of another size.

A rough rule: r scales by √(d_new/d_old), rounded to a power of two. α/r is kept (it acts as a
learning-rate multiplier), and the learning rate is searched in a window around the source's,
leaning lower for a larger model. The result is a recommendation plus a ready spec that
narrows the search around it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_hpo.spec.registries import DEMO_MODELS
from lora_hpo.spec.space_params import Choices, Fixed, Range
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_schema import ModelSpec, StudySpec

R_MAX = 1024
LR_WINDOW = 3.0
RSLORA_MIN_R = 8


@dataclass(frozen=True)
class SourceConfig:
    r: int
    lora_alpha: float
    use_rslora: bool
    learning_rate: float
    hidden_size: int


@dataclass(frozen=True)
class Recommendation:
    r: int
    raw_r: float
    alpha_ratio: float
    lora_alpha: float
    use_rslora: bool
    lr_low: float
    lr_high: float
    notes: tuple[str, ...]


def round_pow2(x: float) -> int:
    """The power of two nearest to ``x`` in log scale (ties go up), at least 1."""
    if x <= 0 or not math.isfinite(x):
        raise ValueError(f"rank must be a positive finite number, but got {x}")
    return max(1, int(2 ** math.floor(math.log2(x) + 0.5)))


def transfer_rank(r: int, d_old: int, d_new: int) -> tuple[int, float]:
    """(r × √(d_new/d_old) rounded to a power of two and bounded to [1, min(1024, d_new)], raw)."""
    for name, value in (("r", r), ("d_old", d_old), ("d_new", d_new)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, but got {value}")
    raw = r * math.sqrt(d_new / d_old)
    bound = min(R_MAX, d_new)
    return max(1, min(round_pow2(raw), 2 ** int(math.log2(bound)))), raw


def recommend(src: SourceConfig, d_new: int) -> Recommendation:
    r, raw = transfer_rank(src.r, src.hidden_size, d_new)
    ratio = src.lora_alpha / src.r
    center = src.learning_rate * math.sqrt(src.hidden_size / d_new)  # larger model: lower lr
    lr_low, lr_high = center / LR_WINDOW, center * LR_WINDOW
    notes = [
        f"r: {src.r} x sqrt({d_new}/{src.hidden_size}) = {raw:.1f} -> {r} (nearest power of two)",
        f"alpha/r kept at {ratio:g} (alpha = {ratio * r:g}): it acts as a learning-rate multiplier",
        f"learning rate: search [{lr_low:.2g}, {lr_high:.2g}], a x{LR_WINDOW:g} window around"
        f" {src.learning_rate:.2g} x sqrt({src.hidden_size}/{d_new}) = {center:.2g}; with alpha/r"
        " fixed the optimum moves little with rank, and larger models want somewhat lower rates",
    ]
    rslora = src.use_rslora and r >= RSLORA_MIN_R
    if src.use_rslora and not rslora:
        notes.append(f"rsLoRA turned off: it misbehaves at r < {RSLORA_MIN_R} (r = {r})")
    elif r >= 64 and not src.use_rslora:
        notes.append("consider rsLoRA at r >= 64: alpha/sqrt(r) keeps the update scale stable")
    else:
        notes.append(f"rsLoRA {'kept on' if rslora else 'off'}, as in the source")
    return Recommendation(r, raw, ratio, ratio * r, rslora, lr_low, lr_high, tuple(notes))


def hidden_size_of(model: str) -> tuple[int, ModelSpec | None]:
    """Hidden size of a target given as a number, a demo name, a local dir or a hub id."""
    if model.isdigit():
        return int(model), None
    if model in DEMO_MODELS:
        return DEMO_MODELS[model].hidden_size, ModelSpec(demo=model)
    path = Path(model)
    if (path / "config.json").is_file():
        return _config_hidden(json.loads((path / "config.json").read_text()), model), ModelSpec(
            path=str(path)
        )
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"--target: cannot read the config of {model!r} ({exc.__class__.__name__}); give its"
            " hidden size as a number, a demo name or a local directory"
        ) from None
    return _config_hidden(config.to_dict(), model), ModelSpec(hub=model)


def _config_hidden(config: dict[str, Any], model: str) -> int:
    for key in ("hidden_size", "d_model", "n_embd", "dim"):
        if isinstance(config.get(key), int):
            return int(config[key])
    raise UsageError(f"--target: {model!r} has no hidden_size/d_model/n_embd in its config")


def transferred_spec(spec: StudySpec, rec: Recommendation, model: ModelSpec | None) -> StudySpec:
    """The source spec, narrowed around the recommendation (and pointed at the target)."""
    ranks = sorted({max(1, rec.r // 2), rec.r, min(R_MAX, rec.r * 2)})
    if rec.use_rslora:
        ranks = [r for r in ranks if r >= RSLORA_MIN_R] or [rec.r]
    space = dataclasses.replace(
        spec.space,
        r=Choices(tuple(ranks)),
        lora_alpha=None,
        alpha_scale=None,
        alpha_ratio=Range(rec.alpha_ratio / 2, rec.alpha_ratio * 2),
        use_rslora=Fixed(rec.use_rslora),
        learning_rate=Range(rec.lr_low, rec.lr_high, log=True),
        step_size=None,
    )
    search = dataclasses.replace(spec.search, strategy="single")
    return dataclasses.replace(
        spec,
        name=f"{spec.name}-transfer",
        space=space,
        search=search,
        model=model or spec.model,
    )


def source_from_study(study_dir: str) -> tuple[StudySpec, SourceConfig]:
    """The spec and best trial of a finished study, read from its Ray results directory (a
    local path or a URI)."""
    from lora_hpo.search.study_storage import read_results, spec_file
    from lora_hpo.spec.search_space import derive
    from lora_hpo.spec.spec_loader import load_spec

    spec = load_spec(spec_file(study_dir))
    best: tuple[float, dict[str, Any]] | None = None
    sign = -1 if spec.mode == "max" else 1
    for rows in read_results(study_dir):
        for row in rows:
            if spec.metric in row and (best is None or sign * float(row[spec.metric]) < best[0]):
                best = (sign * float(row[spec.metric]), dict(row["config"]))
    if best is None:
        raise UsageError(f"--study: {study_dir!r} has no trial that reported {spec.metric}")
    p = derive(spec.space, best[1])
    hidden, _ = hidden_size_of(_model_ref(spec.model))
    return spec, SourceConfig(p.r, p.lora_alpha, p.use_rslora, p.learning_rate, hidden)


def _model_ref(model: ModelSpec) -> str:
    return model.demo or model.path or model.hub or ""
