"""The simulated study: one Optuna study over a lora-hpo space, replayed on the table.

Event-driven, with the concurrency of a real study (two trials at once): a trial's reports
arrive at its eval steps, at its start time plus the cumulative step time the table recorded,
and events are handled in time order. Each report goes to Ray Tune's own ``ASHAScheduler``,
built with the product's arguments (``lora_hpo.search.tune_study.scheduler``: ``time_attr="step"``)
and fed through its public ``on_trial_add`` / ``on_trial_result`` / ``on_trial_complete`` as
Tune's controller feeds it; and to the Optuna trial as OptunaSearch does (``report`` while it
runs, ``tell`` with the last value when it ends). A freed slot asks the sampler for the next
trial at once. Sampled params go through ``lora_hpo.spec.search_space.derive`` and snap to
the nearest grid point. A ``Run`` (one search, possibly several studies) counts trial-steps
and keeps the incumbent, chosen by lora-hpo's ranking rule, after every trial that ends.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.tabular.table import WORST, Table
from lora_hpo.search.optuna_samplers import make_sampler
from lora_hpo.spec.search_space import compile_space, derive
from lora_hpo.spec.spec_schema import SpaceSpec
from lora_hpo.spec.trial_outcome import ranked, trial_status

MAX_TRIALS = 1000  # per study
METRIC = "value"  # the metric's key in the results the scheduler gets
STOP = "STOP"  # ray.tune.schedulers.TrialScheduler.STOP (tests/bench checks it)


@dataclass
class Finished:
    trial_id: str
    config: str
    status: str  # completed | stopped_early | diverged | failed
    value: float  # the raw metric of the trial's last report
    steps: int


@dataclass
class Run:
    """One simulated search: its clock, trial-steps, finished trials and incumbent trace."""

    table: Table
    budget: int  # no trial starts once this many trial-steps are used
    clock: float = 0.0
    used: int = 0
    steps: dict[str, int] = field(default_factory=dict)
    finished: list[Finished] = field(default_factory=list)
    trace: list[tuple[int, float | None]] = field(default_factory=list)  # (trial-steps, best)
    count: int = 0

    def new_id(self) -> str:
        self.count += 1
        return f"{self.count:05d}"

    def advance(self, trial: str, step: int) -> None:
        self.used += step - self.steps.get(trial, 0)
        self.steps[trial] = step

    def best(self, trials: list[Finished] | None = None) -> Finished | None:
        """The best trial by lora-hpo's ranking rule (None when none ranks)."""
        top = ranked(
            self.finished if trials is None else trials,
            lambda f: (f.trial_id, f.status, f.value),
            self.table.mode,
        )
        return top[0] if top else None

    def finish(self, done: Finished) -> None:
        self.finished.append(done)
        best = self.best()
        self.trace.append((self.used, best.value if best else None))


@dataclass(frozen=True)
class StudyPlan:
    space: SpaceSpec
    sampler: str
    seed: int
    asha: dict[str, Any] | None  # grace_period, reduction_factor (type: curve); None: none
    trials: int | None = None  # None: until the run's budget is used
    concurrency: int = 2
    prior: Any = None  # the lora sampler's prior (lora_hpo.search.lora_prior.LoraPrior)
    options: dict[str, Any] = field(default_factory=dict)  # the lora sampler's, for ablations


@dataclass
class _Trial:
    """A simulated trial; also the stand-in for Tune's ``Trial``: the scheduler reads only its
    ``trial_id`` (and never the controller, passed as None)."""

    trial_id: str
    config: str
    optuna: Any
    start: float
    k: int = 0  # index of the next report


def asha_scheduler(table: Table, asha: dict[str, Any]) -> Any:
    """Ray Tune's ASHA with the product's arguments (``lora_hpo.search.tune_study.scheduler``),
    or with ``type: curve`` the product's learning-curve stopper; metric and mode, which Tune
    passes on from the study, given here."""
    from ray.tune.schedulers import ASHAScheduler

    from lora_hpo.search.curve_stopping import CurveStopper

    if asha.get("type") == "curve":
        return CurveStopper(
            "step", table.max_steps, asha["grace_period"], metric=METRIC, mode=table.mode
        )
    return ASHAScheduler(
        time_attr="step",
        metric=METRIC,
        mode=table.mode,
        max_t=table.max_steps,
        grace_period=asha["grace_period"],
        reduction_factor=asha["reduction_factor"],
    )


def searchable(value: float, mode: str) -> float:
    """What the searcher and ASHA see: the value, or the worst for NaN (as lora-hpo does)."""
    return value if math.isfinite(value) else WORST[mode]


class _Study:
    def __init__(self, run: Run, plan: StudyPlan) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.run, self.plan, self.table = run, plan, run.table
        direction: Literal["maximize", "minimize"] = (
            "maximize" if self.table.mode == "max" else "minimize"
        )
        if plan.options:
            from lora_hpo.search.lora_sampler import LoraSampler

            sampler = LoraSampler(plan.space, plan.prior, seed=plan.seed, **plan.options)
        else:
            sampler = make_sampler(plan.sampler, plan.seed, plan.space, plan.prior)
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.dists = compile_space(plan.space)
        self.asha = asha_scheduler(self.table, plan.asha) if plan.asha else None
        self.heap: list[tuple[float, int, _Trial]] = []
        self.launched, self.seq = 0, 0
        self.mine: list[Finished] = []

    def _can_launch(self) -> bool:
        limit = MAX_TRIALS if self.plan.trials is None else min(self.plan.trials, MAX_TRIALS)
        more = self.launched < limit  # the cap ends a run of failed (zero-step) trials
        return more and self.run.used < self.run.budget

    def _push(self, trial: _Trial) -> None:
        point = self.table.curves[trial.config][trial.k]
        self.seq += 1
        heapq.heappush(self.heap, (trial.start + point.time, self.seq, trial))

    def fill(self) -> None:
        while len(self.heap) < self.plan.concurrency and self._can_launch():
            ot = self.study.ask(fixed_distributions=self.dists)
            p = derive(self.plan.space, ot.params)
            config = self.table.snap(p.r, p.lora_alpha, p.use_rslora, p.learning_rate)
            self.launched += 1
            trial = _Trial(self.run.new_id(), config, ot, self.run.clock)
            if self.asha is not None:
                self.asha.on_trial_add(None, trial)
            self._push(trial)

    def step(self) -> None:
        """Handle the next report in time order."""
        import optuna

        clock, _, trial = heapq.heappop(self.heap)
        self.run.clock = clock
        curve = self.table.curves[trial.config]
        point = curve[trial.k]
        self.run.advance(trial.trial_id, point.step)
        value = searchable(point.value, self.table.mode)
        result = {"step": point.step, METRIC: value}
        stop = self.asha is not None and self.asha.on_trial_result(None, trial, result) == STOP
        if trial.k + 1 < len(curve) and not stop and point.status == "running":
            trial.optuna.report(value, trial.k + 1)  # OptunaSearch: training_iteration
            trial.k += 1
            self._push(trial)
            return
        if self.asha is not None:
            self.asha.on_trial_complete(None, trial, result)
        if point.status == "failed":
            self.study.tell(trial.optuna, state=optuna.trial.TrialState.FAIL)
            status = "failed"
        else:
            self.study.tell(trial.optuna, value)
            last = {"step": point.step, "status": point.status}
            status = trial_status("TERMINATED", last, self.table.max_steps)
        done = Finished(trial.trial_id, trial.config, status, point.value, point.step)
        self.mine.append(done)
        self.run.finish(done)
        self.fill()


def run_study(run: Run, plan: StudyPlan, completed_only: bool = False) -> Finished | None:
    """Run one simulated study inside ``run``; its best trial (None when none ranks), among
    its completed trials only with ``completed_only`` (the staged rank sweep's rule)."""
    study = _Study(run, plan)
    study.fill()
    while study.heap:
        study.step()
    if completed_only:
        return run.best([f for f in study.mine if f.status == "completed"])
    return run.best(study.mine)
