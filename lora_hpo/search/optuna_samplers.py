"""The Optuna sampler of a study, by the name its spec gives (``spec.registries.SAMPLERS``):
Optuna's own, or lora-hpo's ``lora`` sampler with the study's prior (``lora_prior``)."""

from __future__ import annotations

from typing import Any

from lora_hpo.spec.spec_schema import SpaceSpec, StudySpec


def make_sampler(name: str, seed: int, space: SpaceSpec | None = None, prior: Any = None) -> Any:
    """The sampler registered under ``name``, seeded; ``lora`` needs the study's space (and
    takes its prior; none: uniform and incumbent draws only)."""
    import optuna

    if name == "lora":
        from lora_hpo.search.lora_sampler import LoraSampler

        if space is None:
            raise ValueError("the lora sampler needs the study's space")
        return LoraSampler(space, prior, seed=seed)
    factories = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
    }
    if name not in factories:
        raise KeyError(f"sampler must be one of {sorted([*factories, 'lora'])}, but got {name!r}")
    return factories[name]()  # type: ignore[no-untyped-call]


def study_sampler(spec: StudySpec, step_size: float | None = None) -> Any:
    """The sampler the study's spec names, with its seed (and, for ``lora``, its prior; a
    warm start's ``step_size`` moves the prior's centre there)."""
    import dataclasses

    from lora_hpo.search.lora_prior import lora_prior

    name = spec.search.sampler
    prior = lora_prior(spec) if name == "lora" else None
    if prior is not None and step_size is not None:
        prior = dataclasses.replace(prior, step_size=step_size)
    return make_sampler(name, spec.search.seed, spec.space, prior)
