"""The ``lora`` sampler: an Optuna sampler that knows where LoRA configs work.

Each trial's config comes from one of three draws (as PriorBand mixes them):

- **prior**: the step size (lr x effective scale) from the study's log-normal prior
  (``lora_prior``), the rank from the task type's band, alpha/r near 2, no rsLoRA below r=8.
  The first trial is the prior's mode.
- **incumbent**: near the best trial so far (the trial that went deepest, then the best value):
  its step size moved by a small log-normal factor, its other values kept or moved a little.
- **random**: uniform over the space, a third of the trials after the first, so a wrong prior
  and a wrong incumbent cost little.

Until ``MIN_ENDED`` trials have ended, the draws that are not random are the prior's (as
PriorBand gives its first bracket to the prior). From then on, the prior's share against the
incumbent's is the evidence for it: the share of the top third of ended trials whose step
size lies within one prior width of the prior's centre, plus one each way. A right prior
keeps most draws; a wrong one hands them to the incumbent.

Whatever the dialect, the step size is what the draws place: with a ``learning_rate`` range
the other params are drawn first and lr = step / scale (clipped into its range); with a
``step_size`` range it is the step itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from lora_hpo.search.lora_prior import LoraPrior
from lora_hpo.spec.search_space import compile_space, derive
from lora_hpo.spec.spec_schema import SpaceSpec

RANDOM_SHARE = 1 / 3  # of the trials after the first: uniform draws
LOCAL_SIGMA = 0.1  # an incumbent draw's move, as a share of each numeric param's (log) range
STEP_LOCAL_SIGMA = 0.3  # an incumbent draw's move of the step size, decades
MIN_ENDED = 6  # incumbent draws start once this many trials have ended (the prior has those)
KEEP_CHOICE = 0.5  # an incumbent draw keeps each categorical value with this probability
DRAW_ATTR = "lora_hpo:draw"  # the trial's system attr: prior | incumbent | random


class LoraSampler(BaseSampler):
    def __init__(
        self,
        space: SpaceSpec,
        prior: LoraPrior | None,
        seed: int | None = None,
        random_share: float = RANDOM_SHARE,
        incumbent: bool = True,
    ) -> None:
        self._space = space
        self._dists = compile_space(space)
        self._prior = prior
        self._random_share = random_share
        self._incumbent = incumbent
        self._rng = np.random.RandomState(seed)
        self._random = RandomSampler(seed=seed)
        self._step_param = next(
            (p for p in ("step_size", "learning_rate") if p in self._dists), None
        )

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._dists)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        ended = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        draw = self._choose(trial.number, ended, study.direction)
        if draw == "prior" and self._prior is not None:
            params = self._from_prior(mode=trial.number == 0)
        elif draw == "incumbent":
            params = self._near(_incumbent(ended, study.direction))
        else:
            draw, params = "random", self._uniform()
        study._storage.set_trial_system_attr(trial._trial_id, DRAW_ATTR, draw)
        return params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    # -- which draw --------------------------------------------------------------------------

    def _choose(self, number: int, ended: list[FrozenTrial], direction: StudyDirection) -> str:
        prior = self._prior is not None
        if number == 0 and prior:
            return "prior"
        if self._rng.rand() < self._random_share:
            return "random"
        if len(ended) < MIN_ENDED or not self._incumbent:
            return "prior" if prior else "random"
        if not prior:
            return "incumbent"
        return "prior" if self._rng.rand() < self._prior_weight(ended, direction) else "incumbent"

    def _prior_weight(self, ended: list[FrozenTrial], direction: StudyDirection) -> float:
        """The prior's share against the incumbent's: how many of the top third of ended
        trials lie within one prior width of the prior's centre (plus one each way)."""
        assert self._prior is not None
        top = _ranked(ended, direction)[: max(1, len(ended) // 3)]
        centre, width = math.log10(self._prior.step_size), self._prior.step_sigma
        steps = [self._log_step(t.params) for t in top]
        near = sum(x is not None and abs(x - centre) <= width for x in steps)
        return (near + 1) / (len(top) + 2)

    # -- the draws ---------------------------------------------------------------------------

    def _uniform(self) -> dict[str, Any]:
        return {name: _uniform(self._rng, d) for name, d in self._dists.items()}

    def _from_prior(self, mode: bool) -> dict[str, Any]:
        assert self._prior is not None
        prior, rng = self._prior, self._rng
        params = self._uniform()
        r = self._dists.get("r")
        if r is not None:
            params["r"] = _rank(r, prior.rank_band, rng, mode)
        rank = int(params.get("r", derive(self._space, self._filled(params)).r))
        if "use_rslora" in self._dists:
            params["use_rslora"] = False if mode or rank < 8 else params["use_rslora"]
        ratio = prior.alpha_ratio * (1.0 if mode else 10 ** rng.normal(0, prior.alpha_sigma))
        if "alpha_ratio" in self._dists:
            params["alpha_ratio"] = _clip(self._dists["alpha_ratio"], ratio)
        elif "lora_alpha" in self._dists:
            params["lora_alpha"] = _clip(self._dists["lora_alpha"], ratio * rank)
        sigma = 0.0 if mode else prior.step_sigma
        return self._with_step(params, math.log10(prior.step_size) + rng.normal(0, sigma))

    def _near(self, best: FrozenTrial) -> dict[str, Any]:
        rng, params = self._rng, {}
        for name, dist in self._dists.items():
            value = best.params.get(name)
            if value is None:
                params[name] = _uniform(rng, dist)
            elif isinstance(dist, CategoricalDistribution):
                keep = rng.rand() < KEEP_CHOICE
                params[name] = value if keep else _uniform(rng, dist)
            else:
                params[name] = _moved(dist, value, rng)
        step = self._log_step(best.params)
        if step is None:
            return params
        return self._with_step(params, step + rng.normal(0, STEP_LOCAL_SIGMA))

    def _with_step(self, params: dict[str, Any], log_step: float) -> dict[str, Any]:
        """``params`` with the step size 10**log_step placed through the study's dialect."""
        name = self._step_param
        if name is None:
            return params
        step = 10**log_step
        if name == "learning_rate":
            scale = derive(self._space, self._filled(params)).scaling
            step /= scale
        params[name] = _clip(self._dists[name], step)
        return params

    def _filled(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with any unset searched value (or lr) filled, so ``derive`` can run."""
        filled = {n: _uniform(self._rng, d) for n, d in self._dists.items() if n not in params}
        return params | filled | ({"learning_rate": 1.0} if "learning_rate" in self._dists else {})

    def _log_step(self, params: dict[str, Any]) -> float | None:
        if self._step_param is None or any(n not in params for n in self._dists):
            return None
        step = derive(self._space, params).step_size
        return math.log10(step) if step > 0 else None


def _ranked(trials: list[FrozenTrial], direction: StudyDirection) -> list[FrozenTrial]:
    """The trials that went deepest first (their last reported step), then the best value. A
    trial with no reports (a warm start's, told with its final result) counts as deepest."""
    sign = -1.0 if direction == StudyDirection.MAXIMIZE else 1.0
    deepest = max((max(t.intermediate_values, default=0) for t in trials), default=0)

    def key(t: FrozenTrial) -> tuple[int, bool, float]:
        depth = max(t.intermediate_values, default=deepest)
        bad = t.value is None or not math.isfinite(t.value)
        return -depth, bad, 0.0 if bad else sign * float(t.value)  # type: ignore[arg-type]

    return sorted(trials, key=key)


def _incumbent(trials: list[FrozenTrial], direction: StudyDirection) -> FrozenTrial:
    return _ranked(trials, direction)[0]


def _uniform(rng: np.random.RandomState, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[rng.randint(len(dist.choices))]
    assert isinstance(dist, FloatDistribution) or hasattr(dist, "low")
    low, high = float(dist.low), float(dist.high)  # type: ignore[attr-defined]
    if dist.log:  # type: ignore[attr-defined]
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    return _clip(dist, value)


def _clip(dist: BaseDistribution, value: float) -> Any:
    """``value`` inside the numeric distribution (rounded to its step, an int for an int)."""
    low, high = dist.low, dist.high  # type: ignore[attr-defined]
    step = getattr(dist, "step", None)
    value = min(max(value, low), high)
    if step is not None:
        value = low + round((value - low) / step) * step
        value = min(max(value, low), high)
    return round(value) if not isinstance(dist, FloatDistribution) else float(value)


def _moved(dist: BaseDistribution, value: float, rng: np.random.RandomState) -> Any:
    """A numeric value moved by ``LOCAL_SIGMA`` of its (log) range."""
    low, high = float(dist.low), float(dist.high)  # type: ignore[attr-defined]
    if dist.log:  # type: ignore[attr-defined]
        width = math.log(high) - math.log(low)
        return _clip(dist, math.exp(math.log(value) + rng.normal(0, LOCAL_SIGMA * width)))
    return _clip(dist, value + rng.normal(0, LOCAL_SIGMA * (high - low)))


def _rank(
    dist: BaseDistribution, band: tuple[int, int] | None, rng: np.random.RandomState, mode: bool
) -> Any:
    """A rank from the task type's band (all of the space's ranks where none lies in it);
    the prior's mode takes the band's lowest rank that the space has."""
    if isinstance(dist, CategoricalDistribution):
        ranks = sorted(int(c) for c in dist.choices)  # type: ignore[arg-type]
        inside = [x for x in ranks if band is None or band[0] <= x <= band[1]] or ranks
        pick = inside[0] if mode else inside[rng.randint(len(inside))]
        return next(c for c in dist.choices if int(c) == pick)  # type: ignore[arg-type]
    low, high = int(dist.low), int(dist.high)  # type: ignore[attr-defined]
    if band is not None and band[0] <= high and band[1] >= low:
        low, high = max(low, band[0]), min(high, band[1])
    if mode:
        return _clip(dist, low)
    return _clip(dist, math.exp(rng.uniform(math.log(low), math.log(high))))
