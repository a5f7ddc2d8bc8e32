"""strategy: staged, on a deterministic fake objective with a known rank plateau."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import optuna
import pytest

from lora_hpo.search.strategies.staged_study import StagedState, plateau, ranks, run_staged
from lora_hpo.spec.search_space import compile_space, derive
from lora_hpo.spec.space_params import Fixed, Range
from lora_hpo.spec.spec_errors import SpecError
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.spec.spec_schema import StudySpec
from tests.conftest import BASE_SPEC

optuna.logging.set_verbosity(optuna.logging.WARNING)
RANK_LOSS = {8: 1.30, 16: 1.10, 32: 1.095, 64: 1.094}  # plateau at r=16 for a 1% tolerance


def _spec(**staged: Any) -> StudySpec:
    data = copy.deepcopy(BASE_SPEC)
    data["search"].update(
        metric="eval_loss",
        mode="min",
        strategy="staged",
        staged={
            "r_min": 8,
            "r_max": 64,
            "plateau_tolerance": 0.01,
            "samples_per_rank": 3,
            "stage2_samples": 30,
            **staged,
        },
    )
    return parse_spec(data)


def objective(r: int, ratio: float, lr: float) -> float:
    """Known optimum: the rank plateau at 16, alpha/r = 1.5, lr = 1e-3 (lr range in BASE_SPEC)."""
    return RANK_LOSS[r] + 0.05 * math.log(ratio / 1.5) ** 2 + 0.01 * math.log(lr / 5e-4) ** 2


class FakeRunner:
    """Runs each stage with Optuna on the fake objective, recording the stage specs."""

    def __init__(self) -> None:
        self.stages: list[StudySpec] = []
        self.samples: dict[str, list[Any]] = {}

    def __call__(self, stage: StudySpec) -> float:
        self.stages.append(stage)
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
        dists = compile_space(stage.space)
        for _ in range(stage.search.num_samples):
            trial = study.ask(dists)
            p = derive(stage.space, trial.params)
            self.samples.setdefault(stage.name, []).append(p)
            study.tell(trial, objective(p.r, p.alpha_ratio, p.learning_rate))
        return float(study.best_value)


def test_stage1_finds_the_plateau_and_stage2_searches_around_it(tmp_path: Path) -> None:
    spec, runner, said = _spec(), FakeRunner(), []
    state = run_staged(spec, runner, tmp_path / "state.json", said.append)
    names = [s.name for s in runner.stages]
    assert names == ["t-stage1-r8", "t-stage1-r16", "t-stage1-r32", "t-stage2"]  # r=64 skipped
    for stage in runner.stages[:3]:
        assert stage.space.alpha_ratio == Fixed(1.0)  # scale held fixed: alpha = r
        assert stage.search.num_samples == 3 and stage.search.max_concurrent <= 3
    assert state.plateau_rank == 16
    assert "rank plateau at r=16: r=32 improved eval_loss by only 0.5%" in state.decision
    assert state.decision in said
    stage2 = runner.stages[-1]
    assert stage2.space.r == Fixed(16) and stage2.space.alpha_ratio == Range(0.5, 4.0)
    picked = runner.samples["t-stage2"]
    assert {p.r for p in picked} == {16}
    assert all(0.5 <= p.alpha_ratio <= 4.0 for p in picked)
    best = min(picked, key=lambda p: objective(p.r, p.alpha_ratio, p.learning_rate))
    assert best.alpha_ratio >= 1.0 and best.alpha_ratio <= 2.2  # homed in on alpha/r = 1.5


def test_rslora_stage1_fixes_alpha_and_stage2_searches_the_scale(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["space"]["use_rslora"] = True
    data["space"]["r"] = 8
    data["search"].update(
        metric="eval_loss",
        mode="min",
        strategy="staged",
        staged={"r_min": 8, "r_max": 16, "rslora_alpha": 12},
    )
    runner = FakeRunner()
    run_staged(parse_spec(data), runner, tmp_path / "s.json", lambda _: None)
    assert runner.stages[0].space.lora_alpha == Fixed(12.0)
    assert runner.stages[-1].space.alpha_scale == Range(0.5, 4.0)


def test_resume_skips_finished_ranks(tmp_path: Path) -> None:
    spec, path = _spec(), tmp_path / "state.json"
    StagedState(scores={8: 1.30, 16: 1.10}).save(path)  # the driver died during r=32
    runner = FakeRunner()
    state = run_staged(spec, runner, path, lambda _: None)
    assert [s.name for s in runner.stages] == ["t-stage1-r32", "t-stage2"]
    assert state.plateau_rank == 16


def test_a_worse_larger_rank_is_called_no_improvement(tmp_path: Path) -> None:
    spec, path = _spec(), tmp_path / "state.json"
    StagedState(scores={8: 1.00, 16: 1.05}).save(path)  # r=16 is 5% worse
    state = run_staged(spec, FakeRunner(), path, lambda _: None)
    assert state.plateau_rank == 8
    assert "rank plateau at r=8: r=16 did not improve eval_loss (-5.0%)" in state.decision


def test_no_plateau_uses_the_best_rank(tmp_path: Path) -> None:
    spec = _spec(r_max=16)
    state = run_staged(spec, FakeRunner(), tmp_path / "s.json", lambda _: None)
    assert state.plateau_rank == 16 and "no plateau up to r=16" in state.decision


def test_ranks_and_plateau_helpers() -> None:
    assert ranks(_spec()) == [8, 16, 32, 64]
    assert plateau({8: 0.80, 16: 0.90, 32: 0.905}, 0.01, "max") == 16


@pytest.mark.parametrize(
    ("staged", "field"),
    [
        ({"r_min": 12}, "search.staged.r_min"),
        ({"r_min": 32, "r_max": 16}, "search.staged"),
        ({"plateau_tolerance": 1.5}, "search.staged.plateau_tolerance"),
        ({"ratio_low": 4, "ratio_high": 1}, "search.staged"),
    ],
)
def test_bad_staged_settings(staged: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=f"{field}: "):
        _spec(**staged)


@pytest.mark.slow
def test_small_real_staged_study_end_to_end(tiny_assets: Path, tmp_path: Path) -> None:
    import ray

    from lora_hpo.search.study_runner import run_study
    from tests.conftest import tiny_study

    data = tiny_study(tiny_assets, **{"training.max_steps": 10, "search.max_concurrent": 1})
    data["search"].update(
        metric="eval_loss",
        mode="min",
        strategy="staged",
        staged={
            "r_min": 4,
            "r_max": 16,
            "samples_per_rank": 1,
            "stage2_samples": 2,
            "plateau_tolerance": 0.5,
        },  # a loose tolerance: the toy curve flattens fast
    )
    spec = parse_spec(data)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        result = run_study(spec, storage_path=str(tmp_path), tracking=False)
    finally:
        ray.shutdown()
    state = StagedState.load(tmp_path / "tiny" / "lora_hpo_staged.json")
    assert state.done and state.plateau_rank in (4, 8, 16)
    assert result.decision == state.decision and "r=" in result.decision
    assert len(result.trials) == 2
    assert {t.params["r"] for t in result.trials} == {state.plateau_rank}
    assert (tmp_path / "tiny-stage1-r4").is_dir() and (tmp_path / "tiny-stage2").is_dir()


def test_the_rank_sweep_judges_each_rank_by_its_completed_trials_only() -> None:
    """A trial ASHA stopped at step 20 can show a better value than any completed at step 40
    (here eval_loss early in a noisy run); the sweep compares ranks at the same step."""
    from lora_hpo.search.strategies.staged_study import stage_score
    from lora_hpo.search.study_result import StudyResult, TrialSummary

    data = copy.deepcopy(BASE_SPEC)
    data["search"] |= {"metric": "eval_loss", "mode": "min"}
    spec = parse_spec(data)
    trials = [
        TrialSummary("a", "stopped_early", {}, {"eval_loss": 0.5, "step": 10}, None),
        TrialSummary("b", "completed", {}, {"eval_loss": 0.9, "step": 20}, None),
        TrialSummary("c", "diverged", {}, {"eval_loss": 0.1, "step": 5}, None),
        TrialSummary("d", "completed", {}, {"eval_loss": 0.7, "step": 20}, None),
    ]
    result = StudyResult(spec, "/nowhere", trials, 1.0)
    assert stage_score(result, rank_sweep=True) == 0.7
    assert stage_score(result, rank_sweep=False) == 0.5  # stage 2: the shared rule as it is
    none_done = StudyResult(spec, "/nowhere", trials[:1], 1.0)
    assert stage_score(none_done, rank_sweep=True) is None
