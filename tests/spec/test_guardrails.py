"""Guardrail warnings from the domain rules."""

from __future__ import annotations

import copy
from typing import Any

from lora_hpo.spec.guardrails import guardrail_warnings, max_alpha_ratio
from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import BASE_SPEC


def _spec(**space: Any) -> Any:
    data = copy.deepcopy(BASE_SPEC)
    data["space"].update(space)
    data["task_type"] = "classification"
    return parse_spec(data)


def test_no_warning_for_a_sane_space() -> None:
    assert guardrail_warnings(_spec()) == []


def test_rslora_below_rank_8() -> None:
    (w,) = guardrail_warnings(_spec(use_rslora=True))
    assert "rsLoRA with r < 8" in w


def test_high_ratio_with_high_lr() -> None:
    (w,) = guardrail_warnings(_spec(alpha_ratio={"low": 1, "high": 4}))
    assert "alpha/r >= 4" in w
    assert guardrail_warnings(_spec(alpha_ratio=4, learning_rate=2e-4)) == []


def test_ratio_from_absolute_alpha_and_scale() -> None:
    spec = _spec(alpha_ratio=None, lora_alpha=32)
    assert max_alpha_ratio(spec.space) == 8.0  # 32 / smallest r (4)
    spec = _spec(alpha_ratio=None, alpha_scale=4.0)
    assert max_alpha_ratio(spec.space) == 2.0  # 4 / sqrt(4)


def test_rank_outside_task_band() -> None:
    (w,) = guardrail_warnings(_spec(r={"choices": [8, 64]}))
    assert "outside the classification band 4..8" in w
