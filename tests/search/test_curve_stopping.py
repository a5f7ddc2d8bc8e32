"""The learning-curve stopper: its rule on curves, and in a real Ray Tune study (the
scheduler a spec's ``scheduler: {type: curve}`` gives) where a trial that cannot reach the
incumbent stops and one that still can runs on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lora_hpo.search.curve_stopping import CurveStopper

pytestmark = pytest.mark.slow


class _Trial:
    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


def _feed(
    stopper: CurveStopper, tid: str, curve: list[tuple[int, float]], metric: str = "acc"
) -> list[str]:
    trial = _Trial(tid)
    return [stopper.on_trial_result(None, trial, {"step": t, metric: v}) for t, v in curve]


def test_nothing_stops_before_a_trial_has_completed() -> None:
    stopper = CurveStopper("step", max_t=40, min_t=10, metric="acc", mode="max")
    assert set(_feed(stopper, "a", [(10, 0.1), (20, 0.1), (30, 0.1)])) == {"CONTINUE"}


def test_a_curve_that_cannot_reach_the_incumbent_stops_one_that_can_runs_on() -> None:
    stopper = CurveStopper("step", max_t=40, min_t=10, metric="acc", mode="max")
    _feed(stopper, "best", [(10, 0.5), (20, 0.7), (30, 0.8), (40, 0.9)])
    # gaining 0.01 a step at 20: 0.5 + 0.2 at 40 < 0.9
    assert _feed(stopper, "slow", [(10, 0.4), (20, 0.5)]) == ["CONTINUE", "STOP"]
    # gaining 0.03 a step: 0.6 + 0.6 at 40 > 0.9, so it runs on
    assert _feed(stopper, "steep", [(10, 0.3), (20, 0.6)]) == ["CONTINUE", "CONTINUE"]
    # min_t: nothing stops before step 10, however bad
    assert _feed(stopper, "early", [(5, 0.0)]) == ["CONTINUE"]


def test_for_a_loss_lower_wins_and_nan_is_ignored() -> None:
    stopper = CurveStopper("step", max_t=12, min_t=4, metric="loss", mode="min")
    _feed(stopper, "done", [(4, 2.0), (8, 1.0), (12, 0.8)], "loss")
    assert _feed(stopper, "flat", [(4, 3.0), (8, 2.9)], "loss") == ["CONTINUE", "STOP"]
    nan = float("nan")
    assert _feed(stopper, "nan", [(4, nan), (8, nan)], "loss") == ["CONTINUE"] * 2


def _curve(config: dict[str, Any]) -> None:
    from ray import tune

    for step in range(10, 41, 10):
        tune.report({"step": step, "acc": config["gain"] * step})


def test_in_a_real_tune_study(tmp_path: Path) -> None:
    import ray
    from ray import tune

    from lora_hpo.search.tune_study import scheduler
    from lora_hpo.spec.spec_loader import parse_spec
    from tests.conftest import tiny_study

    raw = tiny_study(tmp_path, **{"training.max_steps": 40, "training.eval_every": 10})
    raw["search"]["scheduler"] = {"type": "curve", "grace_period": 10}
    sched = scheduler(parse_spec(raw, "tiny.yaml"))
    assert isinstance(sched, CurveStopper)
    ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        space = {"gain": tune.grid_search([0.02, 0.005, 0.019])}  # one at a time, in this order
        run = tune.RunConfig(name="curve", storage_path=str(tmp_path / "r"), verbose=0)
        config = tune.TuneConfig(metric="acc", mode="max", scheduler=sched,
                                 max_concurrent_trials=1)  # fmt: skip
        grid = tune.Tuner(_curve, param_space=space, tune_config=config, run_config=run).fit()
    finally:
        ray.shutdown()
    steps = {r.config["gain"]: r.metrics["step"] for r in grid}
    # at step 20, optimistic lines to 40: 0.1 + 0.005 x 20 = 0.2, and 0.38 + 0.019 x 20 = 0.76,
    # both short of the incumbent's 0.8: stopped there
    assert steps == {0.02: 40, 0.005: 20, 0.019: 20}
