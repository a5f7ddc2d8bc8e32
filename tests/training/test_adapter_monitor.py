"""Adapter norm without forming BA, and the divergence rule."""

from __future__ import annotations

import math

import torch

from lora_hpo.spec.spec_schema import MonitorSpec
from lora_hpo.training.adapter_monitor import DivergenceWatch, frobenius_ba, searchable


def test_frobenius_matches_the_dense_product() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(8, 300), torch.randn(200, 8)
    dense = torch.linalg.norm(1.5 * b @ a).item()
    assert math.isclose(frobenius_ba(a, b, 1.5), dense, rel_tol=1e-4)


def test_zero_b_gives_zero_norm() -> None:
    assert frobenius_ba(torch.randn(4, 16), torch.zeros(16, 4), 2.0) == 0.0


def test_non_finite_loss_diverges() -> None:
    watch = DivergenceWatch(MonitorSpec())
    assert "train_loss is nan" in (watch.check({"train_loss": math.nan}) or "")


def test_norm_growth_and_loss_blowup() -> None:
    rules = MonitorSpec(norm_growth=10, loss_blowup=2, relative_norm=100)
    watch = DivergenceWatch(rules)
    assert watch.check({"adapter_norm_max": 1.0, "eval_loss": 1.0}) is None
    assert watch.check({"adapter_norm_max": 5.0, "eval_loss": 1.5}) is None
    assert "grew 11x" in (watch.check({"adapter_norm_max": 11.0, "eval_loss": 1.0}) or "")
    watch = DivergenceWatch(rules)
    watch.check({"eval_loss": 1.0})
    assert "eval_loss rose" in (watch.check({"eval_loss": 2.5}) or "")


def test_relative_norm_limit() -> None:
    watch = DivergenceWatch(MonitorSpec(relative_norm=5))
    assert watch.check({"adapter_norm_rel_max": 0.3}) is None
    assert "base weight norm" in (watch.check({"adapter_norm_rel_max": 7.0}) or "")


def test_searcher_gets_a_finite_worst_value() -> None:
    assert searchable(math.nan, "min") == 1e9
    assert searchable(math.inf, "max") == 0.0
    assert searchable(0.7, "max") == 0.7
