"""The tabular simulator (bench.tabular: grid, table, engine, methods, summary, simulate) on a
synthetic table in the recorder's format: the grid's invariants, snapping through the real
parametrisation, budget and concurrency accounting, ASHA (Ray Tune's own scheduler, as the
product builds it) and its stops, the staged strategy's own decisions, and the command's
outputs. Timings are never asserted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.tabular import engine, grid, methods, simulate, summary
from bench.tabular.engine import Run, StudyPlan, run_study
from bench.tabular.table import Table
from lora_hpo.spec.search_space import derive
from tests.bench.tabular_synth import write_synthetic


@pytest.fixture(scope="module")
def table_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("tab"), ("minilm-bbc", "smollm2-instruct"))


@pytest.fixture(scope="module")
def table(table_path: Path) -> Table:
    return Table.load("minilm-bbc", table_path)


def test_grid_has_150_configs_per_task_and_the_default_on_it() -> None:
    for task in grid.TASKS:
        cfgs = grid.configs(grid.task_settings(task))
        assert len(cfgs) >= 150 and len({c.id for c in cfgs}) == len(cfgs)
        first = cfgs[0]
        assert (first.r, first.r * first.alpha_ratio, first.use_rslora) == (8, 16.0, False)
        assert first.learning_rate == 2e-4
        spec = grid.trial_spec(task, grid.task_settings(task))
        assert spec.resources.cpu == 1


def test_table_oracle_and_default(table: Table) -> None:
    _, value = table.oracle()
    finals = [v for c in table.curves if (v := table.final(c)) is not None]
    assert value == max(finals) and table.regret(value) == 0
    assert table.default() in table.curves
    assert table.regret(None) == math.inf


def test_snap_is_nearest_in_log_space_and_clipped(table: Table) -> None:
    assert table.snap(8, 16.0, False, 2.1e-4) == "r8-a2-rs0-lr0.0002"
    assert table.snap(16, 16.0 * 1.3, True, 1e-1) == "r16-a1-rs1-lr0.007812"
    assert table.snap(4, 0.1, False, 1e-6) == "r4-a0.5-rs0-lr0.0002"


def test_step_size_space_derives_lr_from_the_scale(table: Table) -> None:
    spec = methods.task_spec("minilm-bbc", table.settings, "step", {})
    assert spec.space.step_size is not None and spec.space.learning_rate is None
    p = derive(spec.space, {"r": 16, "alpha_ratio": 2.0, "use_rslora": True, "step_size": 0.03})
    assert p.scaling == pytest.approx(8.0) and p.learning_rate == pytest.approx(0.00375)
    assert table.snap(p.r, p.lora_alpha, p.use_rslora, p.learning_rate) == "r16-a2-rs1-lr0.003125"


def plain_run(table: Table, sampler: str, asha: bool, seed: int = 0) -> Run:
    space = methods.task_spec("minilm-bbc", table.settings, "lr", {}).space
    run = Run(table, budget=640)
    run_study(run, StudyPlan(space, sampler, seed, table.settings["asha"] if asha else None))
    return run


def test_budget_and_trial_steps_without_asha(table: Table) -> None:
    run = plain_run(table, "random", asha=False)
    assert sum(f.steps for f in run.finished) == run.used
    assert all(f.steps == 40 or f.status == "diverged" for f in run.finished)
    used_at_start = [u for u, _ in run.trace]
    assert used_at_start == sorted(used_at_start)
    assert run.used >= 640 and len(run.finished) <= 640 // 10  # no trial starts past B


def test_asha_is_rays_scheduler_with_the_products_arguments(table: Table) -> None:
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    from lora_hpo.search.tune_study import scheduler

    ours = engine.asha_scheduler(table, table.settings["asha"])
    product = scheduler(grid.trial_spec("minilm-bbc", table.settings))
    assert isinstance(ours, ASHAScheduler) and isinstance(product, ASHAScheduler)
    same = ("_time_attr", "_max_t", "_reduction_factor", "_stop_last_trials")
    assert [getattr(ours, a) for a in same] == [getattr(product, a) for a in same]
    rungs = [[m for m, _ in s._brackets[0]._rungs] for s in (ours, product)]
    assert rungs[0] == rungs[1] == [40, 20]
    assert ours._metric_op == 1.0 and engine.STOP == TrialScheduler.STOP


def test_asha_stops_trials_at_its_rung_only(table: Table) -> None:
    run = plain_run(table, "random", asha=True)
    stopped = [f for f in run.finished if f.status == "stopped_early"]
    assert stopped and all(f.steps == 20 for f in stopped)
    assert len(run.finished) > len(plain_run(table, "random", asha=False).finished)


def test_two_trials_at_once(table: Table) -> None:
    run = plain_run(table, "random", asha=False)
    # when the first trial ends (40 steps), the second one has run alongside it, a third not
    assert 40 < run.trace[0][0] <= 80


def test_same_seed_same_run_other_seed_other_run(table: Table) -> None:
    a, b, c = (plain_run(table, "tpe", True, s) for s in (3, 3, 4))
    assert [f.config for f in a.finished] == [f.config for f in b.finished]
    assert [f.config for f in a.finished] != [f.config for f in c.finished]


def test_staged_runs_the_rank_sweep_then_stage2(table: Table) -> None:
    run = methods.simulate(table, "staged", 0, 32 * 40)
    configs = [f.config for f in run.finished]
    # stage 1 with rsLoRA possible: alpha fixed at 16, so alpha/r = 16 / r at r = 4, 8, ...
    assert all(c.startswith("r4-a4-rs1-") for c in configs[:3])
    assert all(c.startswith("r8-a2-rs1-") for c in configs[3:6])
    assert run.used >= 32 * 40  # stage 2 runs until the budget


def test_summary_goals_and_quantiles() -> None:
    q = summary.quantiles([[math.inf, 1.0], [math.inf, 3.0], [2.0, 2.0]])
    assert q["median"][0] == math.inf and q["median"][1] == 2.0
    assert summary.first_at_or_below([3.0, 1.0, 0.5], [10, 20, 30], 1.0) == 20


def test_command_writes_json_markdown_and_figures(table_path: Path, tmp_path: Path) -> None:
    figs = tmp_path / "figs"
    simulate.main(["--seeds", "2", "--table", str(table_path), "--out", str(tmp_path),
                   "--methods", "random,lora+curve,tpe_step,staged+asha", "--jobs", "1",
                   "--figures-to", str(figs)])  # fmt: skip
    data = json.loads((tmp_path / "tabular.json").read_text())
    t = data["tasks"]["minilm-bbc"]
    assert set(t["methods"]) == {"random", "lora+curve", "tpe_step", "staged+asha"}
    assert len(t["methods"]["random"]["median"]) == len(t["grid"]) and t["grid"][-1] == 1280
    assert set(t["goals"]) == {"a", "a5", "b", "gap"} and t["best_method"] in t["methods"]
    assert (
        t["default_method"] == "lora+curve" and "steps_to_random_best" in t["methods"]["lora+curve"]
    )
    assert t["default"]["regret"] > 0
    md = (tmp_path / "tabular.md").read_text()
    assert md.startswith("## Search quality on the tabular benchmark")
    names = {"regret-minilm-bbc.png", "heatmap-minilm-bbc.png", "heatmap-smollm2-instruct.png"}
    assert names <= {p.name for p in figs.iterdir()}


def test_keep_joins_tasks_simulated_apart(table_path: Path, tmp_path: Path) -> None:
    base = ["--seeds", "1", "--table", str(table_path), "--methods", "random", "--jobs", "1"]
    simulate.main([*base, "--tasks", "minilm-bbc", "--out", str(tmp_path / "a")])
    simulate.main([*base, "--tasks", "smollm2-instruct", "--out", str(tmp_path / "b"),
                   "--keep", str(tmp_path / "a" / "tabular.json")])  # fmt: skip
    data = json.loads((tmp_path / "b" / "tabular.json").read_text())
    assert set(data["tasks"]) == {"minilm-bbc", "smollm2-instruct"}
    assert "### smollm2-instruct" in (tmp_path / "b" / "tabular.md").read_text()


def test_keep_merges_methods_simulated_apart(table_path: Path, tmp_path: Path) -> None:
    base = ["--seeds", "2", "--table", str(table_path), "--jobs", "1", "--tasks", "minilm-bbc"]
    simulate.main([*base, "--methods", "random", "--out", str(tmp_path / "a")])
    simulate.main([*base, "--methods", "lora+curve", "--out", str(tmp_path / "b"),
                   "--keep", str(tmp_path / "a" / "tabular.json")])  # fmt: skip
    t = json.loads((tmp_path / "b" / "tabular.json").read_text())["tasks"]["minilm-bbc"]
    assert set(t["methods"]) == {"random", "lora+curve"} and t["default_method"] == "lora+curve"
    assert set(t["goals"]) == {"a", "a5", "b", "gap"}
    random = t["methods"]["random"]
    assert random["steps_to_random_best"] is not None and random["steps_to_random_best"] <= 1280
