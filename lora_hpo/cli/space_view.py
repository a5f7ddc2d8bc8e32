"""What ``lora-hpo show-space`` prints, as text lines and as one JSON document: the compiled
space, the search (sampler, early stopping, where the lora sampler's prior is centred) and the
memory estimate per trial. Imports neither torch nor Ray."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lora_hpo.cli.text_table import format_table
from lora_hpo.spec.pack_checks import explain_pack

if TYPE_CHECKING:
    from lora_hpo.spec.memory_estimate import Shape
    from lora_hpo.spec.spec_schema import StudySpec

NOT_LOCAL = "memory per trial: estimated by the preflight of `lora-hpo run` (model not local)"


def text(spec: StudySpec) -> str:
    from lora_hpo.spec.search_space import describe

    lines = [
        f"study {spec.name!r}: {spec.task}, metric {spec.metric} ({spec.mode})",
        format_table(["param", "kind", "detail"], describe(spec.space)),
        search_line(spec),
        memory_line(spec),
    ]
    packing = explain_pack(spec.search, spec.resources)
    return "\n".join([*lines, packing] if packing else lines)


def document(spec: StudySpec) -> dict[str, Any]:
    """``text``'s facts, structured."""
    return {
        "study": spec.name,
        "task": spec.task,
        "metric": spec.metric,
        "mode": spec.mode,
        "params": params(spec),
        "search": search(spec),
        "memory": memory(spec),
        "packing": explain_pack(spec.search, spec.resources),
    }


def params(spec: StudySpec) -> list[dict[str, Any]]:
    """Each param: a searched one with its Optuna distribution, a fixed one with its value,
    a derived one with its rule (the rows of ``describe``)."""
    from lora_hpo.spec.search_space import compile_space, describe, fixed

    out: list[dict[str, Any]] = []
    for name, compiled in compile_space(spec.space).items():
        dist: Any = compiled  # Categorical (choices), or Int / Float (a range)
        if hasattr(dist, "choices"):
            shape: dict[str, Any] = {"choices": list(dist.choices)}
        else:
            shape = {"low": dist.low, "high": dist.high, "log": dist.log, "step": dist.step}
        out.append({"name": name, "kind": type(dist).__name__, **shape})
    out += [{"name": n, "kind": "fixed", "value": v} for n, v in fixed(spec.space).items()]
    out += [{"name": n, "kind": k, "rule": d} for n, k, d in describe(spec.space) if k == "derived"]
    return out


def search(spec: StudySpec) -> dict[str, Any]:
    sch = spec.search.scheduler
    stopping: dict[str, Any] = {"type": sch.type}
    if sch.type != "none":
        stopping["grace_period"] = sch.grace_period
    if sch.type == "asha":
        stopping["reduction_factor"] = sch.reduction_factor
    out: dict[str, Any] = {"sampler": spec.search.sampler, "early_stopping": stopping}
    if spec.search.sampler == "lora":
        from lora_hpo.search.lora_prior import lora_prior, model_width

        prior = lora_prior(spec)
        out["prior"] = {
            "step_size": prior.step_size,  # lr x effective scale
            "step_sigma": prior.step_sigma,  # in decades (x/÷ 10^sigma)
            "hidden_size": model_width(spec),  # None: the 7B reference
            "max_steps": spec.training.max_steps,
            "rank_band": list(prior.rank_band) if prior.rank_band else None,
            "alpha_ratio": prior.alpha_ratio,
        }
    return out


def search_line(spec: StudySpec) -> str:
    """The sampler and early stopping; for the lora sampler, where its prior is centred."""
    sch = spec.search.scheduler
    stop = {"asha": f"ASHA (grace {sch.grace_period}, rf {sch.reduction_factor:g})",
            "curve": f"on the learning curve (from step {sch.grace_period})",
            "none": "none"}[sch.type]  # fmt: skip
    line = f"search: sampler {spec.search.sampler}, early stopping {stop}"
    prior = search(spec).get("prior")
    if prior is None:
        return line
    band, width = prior["rank_band"], prior["hidden_size"]
    ranks = f"ranks {band[0]}-{band[1]}" if band else "any rank"
    size = f"hidden size {width}" if width else "hidden size unknown: the 7B reference"
    return (
        f"{line}; prior: step size lr x scale near {prior['step_size']:.2g}"
        f" (x/÷ 10^{prior['step_sigma']:g}; {size}, {prior['max_steps']} steps), {ranks},"
        f" alpha/r near {prior['alpha_ratio']:g}"
    )


def _shape(spec: StudySpec) -> Shape | None:
    """The model's shape from its folder's headers (no torch), when the folder is here."""
    from lora_hpo.spec.memory_estimate import shape_from_folder

    folder: Path | None = Path(spec.model.path) if spec.model.path else None
    if spec.model.demo is not None:
        from lora_hpo.training.demo_assets import existing_model_dir

        folder = existing_model_dir(spec.model.demo)
    return shape_from_folder(folder) if folder is not None else None


def memory_line(spec: StudySpec) -> str:
    """The per-trial memory estimate, when the model folder is on this machine; else where it
    will be estimated."""
    from lora_hpo.spec.memory_estimate import describe_memory

    shape = _shape(spec)
    return NOT_LOCAL if shape is None else describe_memory(spec, shape)


def memory(spec: StudySpec) -> dict[str, Any]:
    """``memory_line``'s numbers, in bytes; ``estimated: false`` when the model is not here."""
    import dataclasses

    from lora_hpo.spec.memory_estimate import (
        describe_memory,
        estimate_for,
        packed_estimate,
        planned_dtype,
    )
    from lora_hpo.spec.space_params import bounds

    shape = _shape(spec)
    if shape is None:
        return {"estimated": False, "line": NOT_LOCAL}
    e = estimate_for(spec, shape)
    quant = spec.model.quantization
    out = {
        "estimated": True,
        "line": describe_memory(spec, shape),
        "dtype": f"{quant.bits}-bit" if quant else planned_dtype(spec),
        "r": int(bounds(spec.space.r)[1]),
        "batch_size": spec.training.batch_size,
        "max_length": spec.data.max_length,
        **{f"{k}_bytes": v for k, v in dataclasses.asdict(e).items() if k != "checkpointing"},
        "gradient_checkpointing": e.checkpointing,
        "total_bytes": e.total,
    }
    k = spec.search.pack
    if k > 1:
        packed = packed_estimate(e, k)
        out["pack"] = {"size": k, "total_bytes": packed.total, "unpacked_total_bytes": k * e.total}
    return out
