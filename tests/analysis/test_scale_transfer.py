"""Config transfer across model scale: the arithmetic, its rounding and bounds."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from lora_hpo.analysis.scale_transfer import (
    SourceConfig,
    hidden_size_of,
    recommend,
    round_pow2,
    transfer_rank,
    transferred_spec,
)
from lora_hpo.spec.space_params import Choices, Fixed
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import BASE_SPEC


@pytest.mark.parametrize(
    ("x", "expected"),
    [(1, 1), (2.8, 2), (2.83, 4), (3, 4), (5.6, 4), (5.7, 8), (11.3, 8), (11.32, 16), (0.6, 1)],
)
def test_round_to_the_nearest_power_of_two_in_log_scale(x: float, expected: int) -> None:
    assert round_pow2(x) == expected  # the geometric midpoint of 2 and 4 is 2*sqrt(2) = 2.83


def test_rank_scales_by_sqrt_of_hidden_ratio() -> None:
    assert transfer_rank(16, 1024, 4096) == (32, 32.0)  # x sqrt(4) = x2
    assert transfer_rank(16, 4096, 1024) == (8, 8.0)
    r, raw = transfer_rank(8, 384, 576)  # MiniLM -> SmolLM2
    assert math.isclose(raw, 8 * math.sqrt(1.5)) and r == 8


def test_rank_bounds() -> None:
    assert transfer_rank(1, 8192, 64)[0] == 1  # never below 1
    assert transfer_rank(512, 64, 65536)[0] == 1024  # never above R_MAX
    assert transfer_rank(64, 64, 48)[0] == 32  # never above the target width
    with pytest.raises(ValueError, match="d_new must be >= 1, but got 0"):
        transfer_rank(8, 64, 0)


def test_recommendation_keeps_alpha_ratio_and_moves_lr() -> None:
    rec = recommend(SourceConfig(16, 32.0, False, 4e-4, 1024), 4096)
    assert rec.r == 32 and rec.alpha_ratio == 2.0 and rec.lora_alpha == 64.0
    center = 4e-4 / 2
    assert math.isclose(rec.lr_low, center / 3) and math.isclose(rec.lr_high, center * 3)
    assert any("r: 16 x sqrt(4096/1024) = 32.0 -> 32" in n for n in rec.notes)


def test_rslora_note_below_rank_8() -> None:
    rec = recommend(SourceConfig(8, 16.0, True, 2e-4, 4096), 1024)
    assert rec.r == 4 and rec.use_rslora is False
    assert any("rsLoRA turned off" in n for n in rec.notes)


def test_ready_spec_narrows_the_search() -> None:
    spec = parse_spec(copy.deepcopy(BASE_SPEC))
    rec = recommend(SourceConfig(8, 16.0, False, 1e-3, 384), 576)
    hidden, model = hidden_size_of("smollm2-135m")
    assert hidden == 576
    out = transferred_spec(spec, rec, model)
    assert out.space.r == Choices((4, 8, 16)) and out.space.use_rslora == Fixed(False)
    assert out.model.demo == "smollm2-135m" and out.name == "t-transfer"


def test_unknown_target_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--target"):
        hidden_size_of("/nonexistent/model-dir")


def test_cli_writes_a_spec_that_validates(tmp_path: Any, capsys: Any) -> None:
    from lora_hpo.cli.main import main
    from lora_hpo.spec.spec_loader import load_spec
    from tests.conftest import REPO

    out = tmp_path / "t.yaml"
    argv = [
        "transfer",
        "--r",
        "8",
        "--lora-alpha",
        "16",
        "--learning-rate",
        "2e-4",
        "--source-hidden",
        "384",
        "--spec",
        str(REPO / "search_spaces" / "quickstart.yaml"),
        "--target",
        "1536",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "r: 8 x sqrt(1536/384) = 16.0 -> 16" in capsys.readouterr().out
    spec = load_spec(out)
    assert spec.space.r == Choices((8, 16, 32))


def test_cli_needs_a_source(capsys: Any) -> None:
    from lora_hpo.cli.main import main

    assert main(["transfer", "--target", "576"]) == 2
    assert "transfer: give --study, or a config with --r" in capsys.readouterr().err
