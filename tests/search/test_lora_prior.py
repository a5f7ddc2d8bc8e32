"""The lora sampler's prior: its step-size centre from the model's width and the run's length,
and the rank band from the task type."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lora_hpo.search.lora_prior import REFERENCE_STEP, centre_step, lora_prior, model_width
from lora_hpo.spec.spec_loader import parse_spec


def _spec(model: dict[str, object], task_type: str | None, max_steps: int = 1000) -> object:
    raw = {
        "name": "p",
        "task": "causal-lm",
        "model": model,
        "data": {"demo": "bbc-news-text"},
        "training": {"max_steps": max_steps, "eval_every": 10},
        "space": {"r": {"choices": [8, 16]}, "alpha_ratio": 2.0, "learning_rate": 1e-4},
    }
    if task_type:
        raw["task_type"] = task_type
    return parse_spec(raw, "p.yaml")


def test_the_reference_recipe_is_the_centre_of_a_7b_class_model_over_1000_steps() -> None:
    assert centre_step(4096, 1000) == pytest.approx(REFERENCE_STEP)
    assert centre_step(None, 1000) == pytest.approx(REFERENCE_STEP)  # width unknown: reference


def test_a_narrower_model_and_a_shorter_run_take_a_larger_step() -> None:
    assert centre_step(1024, 1000) == pytest.approx(2 * REFERENCE_STEP)  # sqrt(4096 / 1024)
    assert centre_step(4096, 250) == pytest.approx(2 * REFERENCE_STEP)  # sqrt(1000 / 250)
    assert centre_step(8192, 4000) < REFERENCE_STEP


def test_width_comes_from_the_demo_registry_or_a_local_config(tmp_path: Path) -> None:
    assert model_width(_spec({"demo": "smollm2-135m"}, None)) == 576  # type: ignore[arg-type]
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"hidden_size": 2048}))
    assert model_width(_spec({"path": str(folder)}, None)) == 2048  # type: ignore[arg-type]
    (folder / "config.json").write_text("{not json")
    assert model_width(_spec({"path": str(folder)}, None)) is None  # type: ignore[arg-type]
    assert model_width(_spec({"hub": "org/model"}, None)) is None  # type: ignore[arg-type]


def test_the_prior_takes_the_task_types_rank_band() -> None:
    prior = lora_prior(_spec({"demo": "smollm2-135m"}, "domain-adaptation", 100))  # type: ignore[arg-type]
    assert prior.rank_band == (8, 16)
    assert prior.step_size == pytest.approx(REFERENCE_STEP * math.sqrt(4096 / 576) * math.sqrt(10))
    assert lora_prior(_spec({"demo": "smollm2-135m"}, None)).rank_band is None  # type: ignore[arg-type]


def test_show_space_says_where_the_prior_is_centred(capsys: pytest.CaptureFixture[str]) -> None:
    from lora_hpo.cli.main import main

    quickstart = Path(__file__).resolve().parents[2] / "search_spaces" / "quickstart.yaml"
    assert main(["show-space", str(quickstart)]) == 0
    out = capsys.readouterr().out
    centre = centre_step(384, 40)
    assert "search: sampler lora, early stopping on the learning curve (from step 20)" in out
    assert f"step size lr x scale near {centre:.2g}" in out and "ranks 4-8" in out
    assert main(["show-space", str(quickstart), "--set", "search.sampler=tpe"]) == 0
    assert "sampler tpe" in capsys.readouterr().out
