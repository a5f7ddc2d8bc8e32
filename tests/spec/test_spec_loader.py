"""Loader: overrides, YAML quirks, round trip, spec hash."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from lora_hpo.spec.space_params import Choices, Fixed, Range
from lora_hpo.spec.spec_errors import SpecError
from lora_hpo.spec.spec_loader import load_spec, parse_spec, spec_hash, spec_to_dict
from tests.conftest import BASE_SPEC, REPO


def test_parses_the_three_param_shapes() -> None:
    spec = parse_spec(copy.deepcopy(BASE_SPEC))
    assert spec.space.r == Choices((4, 8))
    assert spec.space.alpha_ratio == Range(0.5, 2.0)
    assert spec.space.use_rslora == Fixed(False)
    assert spec.metric == "eval_accuracy" and spec.mode == "max"


def test_yaml_exponent_without_dot_is_a_number() -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["space"]["learning_rate"] = {"low": "1e-5", "high": "2e-3", "log": True}
    assert parse_spec(data).space.learning_rate == Range(1e-5, 2e-3, log=True)


def test_overrides_are_applied_and_checked() -> None:
    spec = parse_spec(copy.deepcopy(BASE_SPEC), overrides=["training.max_steps=40", "space.r=16"])
    assert spec.training.max_steps == 40
    assert spec.space.r == Fixed(16)
    with pytest.raises(SpecError, match=r"training\.max_steps: must be an integer"):
        parse_spec(copy.deepcopy(BASE_SPEC), overrides=["training.max_steps=abc"])
    with pytest.raises(SpecError, match="--set: must look like key=value"):
        parse_spec(copy.deepcopy(BASE_SPEC), overrides=["oops"])


def test_round_trip_and_hash(tmp_path: Any) -> None:
    spec = load_spec(REPO / "search_spaces" / "quickstart.yaml")
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(spec_to_dict(spec)))
    again = load_spec(path)
    assert again == spec
    assert spec_hash(again) == spec_hash(spec)
    changed = parse_spec(spec_to_dict(spec), overrides=["training.seed=1"])
    assert spec_hash(changed) != spec_hash(spec)


def test_specs_are_frozen() -> None:
    spec = parse_spec(copy.deepcopy(BASE_SPEC))
    with pytest.raises(AttributeError):
        spec.training.max_steps = 3  # type: ignore[misc]
