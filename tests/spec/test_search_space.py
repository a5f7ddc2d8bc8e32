"""The compiled Optuna space: every sampled config satisfies the spec; α derives correctly."""

from __future__ import annotations

import copy
import math
from typing import Any

import optuna
import pytest

from lora_hpo.spec.search_space import compile_space, derive, describe
from lora_hpo.spec.space_params import can_be
from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import BASE_SPEC

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _spec(space: dict[str, Any]) -> Any:
    data = copy.deepcopy(BASE_SPEC)
    data["space"] = space
    return parse_spec(data)


SPACES = {
    "ratio": {
        "r": {"low": 1, "high": 64, "log": True},
        "alpha_ratio": {"low": 0.5, "high": 4.0},
        "use_rslora": False,
        "learning_rate": {"low": 1e-5, "high": 2e-3, "log": True},
        "lora_dropout": {"low": 0.0, "high": 0.2},
        "target_modules": {"choices": ["attention", ["query", "value"]]},
    },
    "scale": {
        "r": {"choices": [8, 16, 32]},
        "alpha_scale": {"low": 1.0, "high": 8.0},
        "use_rslora": {"choices": [True, False]},
        "learning_rate": {"low": "1e-5", "high": "1e-3", "log": True},
    },
    "absolute": {
        "r": {"low": 4, "high": 32, "step": 4},
        "lora_alpha": {"choices": [8, 16, 32]},
        "learning_rate": 2e-4,
        "adapter": {"choices": ["lora", "adalora"]},
    },
}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_1000_samples_satisfy_the_spec(name: str) -> None:
    spec = _spec(SPACES[name])
    dists = compile_space(spec.space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(1000):
        trial = study.ask(dists)
        params = derive(spec.space, trial.params)
        for field in ("r", "use_rslora", "learning_rate", "lora_dropout", "adapter"):
            value = getattr(params, field)
            assert can_be(getattr(spec.space, field), value), (field, value)
        if spec.space.alpha_ratio is not None:
            assert can_be(spec.space.alpha_ratio, trial.params.get("alpha_ratio", 0) or 0) or (
                "alpha_ratio" not in trial.params
            )
            assert math.isclose(params.lora_alpha, trial.params["alpha_ratio"] * params.r)
        elif spec.space.alpha_scale is not None:
            expected = trial.params["alpha_scale"] * math.sqrt(params.r)
            assert math.isclose(params.lora_alpha, expected)
        else:
            assert params.lora_alpha == trial.params["lora_alpha"]
        expected_scale = params.lora_alpha / (
            math.sqrt(params.r) if params.use_rslora else params.r
        )
        assert math.isclose(params.scaling, expected_scale)
        study.tell(trial, 0.0)


def test_module_lists_round_trip_through_categoricals() -> None:
    spec = _spec(SPACES["ratio"])
    dist = compile_space(spec.space)["target_modules"]
    assert list(dist.choices) == ["attention", "query,value"]  # type: ignore[attr-defined]
    params = derive(
        spec.space,
        {
            "r": 8,
            "alpha_ratio": 1.0,
            "learning_rate": 1e-4,
            "lora_dropout": 0.0,
            "target_modules": "query,value",
        },
    )
    assert params.target_modules == ("query", "value")


def test_fixed_params_are_not_distributions() -> None:
    spec = _spec(SPACES["absolute"])
    dists = compile_space(spec.space)
    assert "learning_rate" not in dists
    assert isinstance(dists["r"], optuna.distributions.IntDistribution)
    assert dists["r"].step == 4  # type: ignore[attr-defined]


def test_describe_lists_derived_rule() -> None:
    rows = describe(_spec(SPACES["scale"]).space)
    assert ("lora_alpha", "derived", "lora_alpha = alpha_scale * sqrt(r)") in rows
