"""Which Linear modules a target-module preset or list means for a model, given the model's
own module names: a name matches when it is the wanted name or ends with ``.`` + it. Task
heads are never targeted by a preset. The training layer feeds it the loaded model's
names; the memory estimate feeds it the names in the weight files' headers."""

from __future__ import annotations

from lora_hpo.spec.registries import TARGET_PRESETS
from lora_hpo.spec.spec_errors import UsageError

HEADS = ("classifier", "score", "lm_head", "pooler", "cls")  # never targeted by presets


def is_head(name: str) -> bool:
    return any(part in HEADS for part in name.split("."))


def match_targets(names: list[str], target: str | tuple[str, ...]) -> list[str] | str:
    """The module names to adapt among ``names`` (heads excluded by the caller), or
    "all-linear"; a UsageError naming the model's own names when nothing matches."""
    if target == "all-linear":
        return "all-linear"
    wanted = TARGET_PRESETS.get(target, ()) if isinstance(target, str) else target
    matched = sorted({w for w in wanted for n in names if n == w or n.endswith("." + w)})
    missing = [] if isinstance(target, str) else [w for w in wanted if w not in matched]
    if not matched or missing:
        leaves = sorted({n.split(".")[-1] for n in names})
        what = f"preset {target!r}" if isinstance(target, str) else f"{missing or list(wanted)}"
        raise UsageError(
            f"space.target_modules: {what} matches no module of this model; its Linear modules"
            f" are named {leaves} (full names like {names[:3]})"
        )
    return matched


def adapted_names(names: list[str], target: str | tuple[str, ...]) -> list[str]:
    """The full names of the modules the adapter wraps (every non-head one for all-linear)."""
    body = [n for n in names if not is_head(n)]
    matched = match_targets(body, target)
    if matched == "all-linear":
        return body
    return [n for n in body if any(n == w or n.endswith("." + w) for w in matched)]
