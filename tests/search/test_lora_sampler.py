"""The ``lora`` sampler in real Optuna studies: its first trial is the prior's mode, every draw
stays in the space and says which kind it was, a wrong prior is overcome by the incumbent and
random draws, and a warm start's trials (told, never run) serve as the incumbent."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest

from lora_hpo.search.lora_prior import LoraPrior
from lora_hpo.search.lora_sampler import DRAW_ATTR, LoraSampler
from lora_hpo.search.optuna_samplers import make_sampler
from lora_hpo.spec.search_space import compile_space, derive
from lora_hpo.spec.spec_loader import parse_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

LR_SPACE = {
    "r": {"choices": [4, 8, 16, 32]},
    "alpha_ratio": {"low": 0.5, "high": 4.0, "log": True},
    "use_rslora": {"choices": [False, True]},
    "learning_rate": {"low": 1e-5, "high": 1e-1, "log": True},
}
STEP_SPACE = {k: v for k, v in LR_SPACE.items() if k != "learning_rate"} | {
    "step_size": {"low": 1e-5, "high": 1.0, "log": True}
}


def _space(data: dict[str, Any]) -> Any:
    raw = {"name": "s", "task": "causal-lm", "model": {"demo": "smollm2-135m"},
           "data": {"demo": "bbc-news-text"}, "space": data}  # fmt: skip
    return parse_spec(raw, "s.yaml").space


def _run(sampler: Any, space: Any, objective: Any, n: int) -> optuna.Study:
    study = optuna.create_study(direction="minimize", sampler=sampler)
    dists = compile_space(space)
    for _ in range(n):
        trial = study.ask(fixed_distributions=dists)
        value = objective(derive(space, trial.params))
        trial.report(value, 10)
        study.tell(trial, value)
    return study


def _distance(step_opt: float) -> Any:
    return lambda p: abs(math.log10(p.step_size) - math.log10(step_opt))


@pytest.mark.parametrize("dialect", [LR_SPACE, STEP_SPACE], ids=["lr", "step_size"])
def test_the_first_trial_is_the_priors_mode(dialect: dict[str, Any]) -> None:
    space = _space(dialect)
    prior = LoraPrior(step_size=3e-3, rank_band=(8, 16))
    study = _run(LoraSampler(space, prior, seed=1), space, _distance(1e-2), 1)
    first = derive(space, study.trials[0].params)
    assert first.r == 8 and first.alpha_ratio == pytest.approx(2.0) and not first.use_rslora
    assert first.step_size == pytest.approx(3e-3)
    assert study.trials[0].system_attrs[DRAW_ATTR] == "prior"


def test_every_draw_is_in_the_space_and_says_its_kind() -> None:
    space = _space(LR_SPACE)
    study = _run(make_sampler("lora", 0, space, LoraPrior(1e-3, rank_band=(4, 8))), space,
                 _distance(1e-2), 40)  # fmt: skip
    dists = compile_space(space)
    kinds = {t.system_attrs[DRAW_ATTR] for t in study.trials}
    assert kinds == {"prior", "incumbent", "random"}
    for t in study.trials:
        assert all(dists[k]._contains(dists[k].to_internal_repr(v)) for k, v in t.params.items())
    prior_draws = [derive(space, t.params) for t in study.trials[:6]
                   if t.system_attrs[DRAW_ATTR] == "prior"]  # fmt: skip
    assert prior_draws and all(p.r in (4, 8) for p in prior_draws)  # the band
    assert all(not p.use_rslora for p in prior_draws if p.r < 8)  # no rsLoRA below r=8


def test_a_wrong_prior_costs_little() -> None:
    """The optimum two decades of step size from the prior's centre (four prior widths): the
    best of 40 trials still lands near it on most seeds, and near-optimum trials come from
    incumbent draws once the prior is seen to be wrong."""
    space = _space(STEP_SPACE)
    close, incumbent_share = 0, []
    for seed in range(10):
        sampler = LoraSampler(space, LoraPrior(step_size=1e-4), seed=seed)
        study = _run(sampler, space, _distance(1e-2), 40)
        close += study.best_value < 0.15
        late = [t.system_attrs[DRAW_ATTR] for t in study.trials[20:]]
        incumbent_share.append(late.count("incumbent") / len(late))
    assert close >= 8, close
    assert sorted(incumbent_share)[5] >= 0.4, incumbent_share


def test_without_a_prior_it_draws_uniformly_then_near_the_incumbent() -> None:
    space = _space(STEP_SPACE)
    study = _run(LoraSampler(space, None, seed=3), space, _distance(1e-2), 20)
    kinds = [t.system_attrs[DRAW_ATTR] for t in study.trials]
    assert "prior" not in kinds and set(kinds[:6]) == {"random"} and "incumbent" in kinds


def test_warm_trials_told_with_their_results_are_the_incumbent() -> None:
    space = _space(STEP_SPACE)
    dists = compile_space(space)
    study = optuna.create_study(direction="minimize", sampler=LoraSampler(space, None, seed=0))
    for step, value in ((1e-2, 0.1), (1e-4, 2.0), (1e-3, 1.0), (3e-2, 0.5), (1e-5, 3), (0.1, 2)):
        params = {"r": 8, "alpha_ratio": 2.0, "use_rslora": False, "step_size": step}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value))
    draws = []
    for _ in range(30):
        t = study.ask(fixed_distributions=dists)
        study.tell(t, 5.0)
        if study.trials[-1].system_attrs.get(DRAW_ATTR) == "incumbent":
            draws.append(derive(space, t.params).step_size)
    assert draws and sorted(math.log10(s) for s in draws)[len(draws) // 2] == pytest.approx(
        -2, abs=0.3
    )
