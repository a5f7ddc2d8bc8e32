"""The step-size parametrisation: the space is given as step_size = lr x s with the scale s
(alpha/r, or alpha/sqrt r with rsLoRA), and the learning rate is derived as step_size / s."""

from __future__ import annotations

import copy
import math
from typing import Any

import optuna
import pytest

from lora_hpo.spec.guardrails import guardrail_warnings
from lora_hpo.spec.search_space import compile_space, derive, describe
from lora_hpo.spec.spec_errors import SpecError
from lora_hpo.spec.spec_loader import parse_spec, spec_to_dict
from tests.conftest import BASE_SPEC

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _spec(**space: Any) -> Any:
    data = copy.deepcopy(BASE_SPEC)
    data["space"].pop("learning_rate")
    if "alpha_scale" in space or "lora_alpha" in space:
        data["space"].pop("alpha_ratio")
    data["space"].update(space)
    return parse_spec(data)


def _samples(spec: Any, n: int, seed: int = 0) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    dists, out = compile_space(spec.space), []
    for _ in range(n):
        trial = study.ask(fixed_distributions=dists)
        out.append(trial.params)
        study.tell(trial, 0.0)
    return out


@pytest.mark.parametrize("rslora", [False, True, {"choices": [False, True]}])
def test_derived_lr_times_scale_is_the_sampled_step_size(rslora: Any) -> None:
    spec = _spec(
        r={"choices": [8, 16, 64]},
        alpha_ratio={"low": 0.25, "high": 4.0, "log": True},
        use_rslora=rslora,
        step_size={"low": 1e-5, "high": 1e-2, "log": True},
    )
    assert "step_size" in compile_space(spec.space) and "learning_rate" not in compile_space(
        spec.space
    )
    for sampled in _samples(spec, 1000):
        p = derive(spec.space, sampled)
        root = math.sqrt(p.r) if p.use_rslora else p.r
        assert math.isclose(p.scaling, p.lora_alpha / root)
        assert math.isclose(p.learning_rate * p.scaling, sampled["step_size"], rel_tol=1e-12)
        assert math.isclose(p.step_size, sampled["step_size"], rel_tol=1e-12)
        assert math.isclose(p.lora_alpha, sampled["alpha_ratio"] * p.r)
        as_dict = p.as_dict()
        assert math.isclose(as_dict["learning_rate"], p.learning_rate)
        assert math.isclose(as_dict["step_size"], sampled["step_size"], rel_tol=1e-12)


def test_alpha_scale_and_absolute_alpha_derive_the_lr_too() -> None:
    for alpha in ({"alpha_scale": {"low": 1, "high": 8}}, {"lora_alpha": {"low": 4, "high": 64}}):
        spec = _spec(r={"choices": [4, 16]}, step_size={"low": 1e-4, "high": 1e-2}, **alpha)
        for sampled in _samples(spec, 200, seed=1):
            p = derive(spec.space, sampled)
            assert math.isclose(p.learning_rate * p.scaling, sampled["step_size"], rel_tol=1e-12)


def test_exactly_one_of_learning_rate_and_step_size() -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["space"]["step_size"] = {"low": 1e-4, "high": 1e-2, "log": True}
    with pytest.raises(SpecError, match="exactly one of learning_rate, step_size"):
        parse_spec(data)
    del data["space"]["step_size"], data["space"]["learning_rate"]
    with pytest.raises(SpecError, match=r"exactly one of learning_rate, step_size.*got none"):
        parse_spec(data)
    with pytest.raises(SpecError, match=r"space\.step_size\.low: a log range needs low > 0"):
        _spec(step_size={"low": 0, "high": 1e-2, "log": True})


def test_show_space_and_the_file_form_name_the_derived_lr() -> None:
    spec = _spec(step_size={"low": 1e-4, "high": 1e-2, "log": True})
    rows = {(name, kind): detail for name, kind, detail in describe(spec.space)}
    assert rows[("learning_rate", "derived")] == "learning_rate = step_size / effective_scale"
    again = parse_spec(spec_to_dict(spec))
    assert again == spec


def test_the_high_ratio_guardrail_reads_the_derived_lr() -> None:
    risky = _spec(alpha_ratio={"low": 1, "high": 4}, step_size={"low": 1e-4, "high": 8e-3})
    (warning,) = guardrail_warnings(risky)  # at alpha/r 4: lr up to 8e-3 / 4 = 2e-3
    assert "learning_rate > 3e-4 (up to 0.002 (derived from step_size))" in warning
    calm = _spec(alpha_ratio={"low": 1, "high": 4}, step_size={"low": 1e-4, "high": 1e-3})
    assert guardrail_warnings(calm) == []  # at alpha/r 4: lr at most 2.5e-4
