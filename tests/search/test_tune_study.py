"""Studies on a real Ray runtime: ASHA rungs, concurrency, divergence, worker kill, driver kill
and resume, logical GPUs, and runtime bad input."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import torch  # noqa: F401  (before ray)
import yaml
from ray.tune import Callback

from lora_hpo.cli.main import main
from lora_hpo.search.optuna_export import optuna_url
from lora_hpo.search.study_runner import run_study
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import tiny_study
from tests.live_driver import LiveDriver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    return peak


SPANS: dict[str, list[float]] = {}  # trial id -> [start, end] as the driver saw them


class Spans(Callback):  # type: ignore[misc]
    """When each trial started and ended, on the driver (module-level store: Tune keeps its
    own copies of callbacks)."""

    def setup(self, **info: Any) -> None:
        SPANS.clear()

    def on_trial_start(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        SPANS[trial.trial_id] = [time.monotonic(), math.inf]

    def on_trial_complete(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        SPANS[trial.trial_id][1] = time.monotonic()

    on_trial_error = on_trial_complete


def _spans() -> list[tuple[float, float]]:
    return [(start, end) for start, end in SPANS.values()]


def _history(study_dir: str) -> dict[str, list[dict[str, Any]]]:
    """trial id -> every result it reported, read from Tune's result.json files."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in Path(study_dir).glob("*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            out.setdefault(rows[0]["trial_id"], []).extend(rows)
    return out


def test_asha_stops_at_rungs_and_concurrency_holds(
    local_ray: None, tiny_assets: Path, tmp_path: Path
) -> None:
    spec = parse_spec(tiny_study(tiny_assets, **{"search.num_samples": 6}))
    result = run_study(spec, storage_path=str(tmp_path), tracking=False, callbacks=[Spans()])
    assert len(result.trials) == 6
    assert result.counts.get("stopped_early", 0) >= 1
    rungs = {5, 10}  # grace 5, reduction factor 2, max_t 20: rungs at 5 and 10
    for t in result.trials:
        if t.status == "stopped_early":
            assert t.metrics["step"] in rungs, t.metrics["step"]
    assert len(SPANS) == 6 and _max_overlap(_spans()) <= spec.search.max_concurrent
    assert result.best is not None and Path(result.best.checkpoint or "").is_dir()
    # only a few adapter checkpoints are kept per trial
    for trial_dir in Path(result.path).glob("tune_trainable_*"):
        assert len(list(trial_dir.glob("checkpoint_*"))) <= 2


def test_a_diverging_trial_does_not_stop_the_study(
    local_ray: None, tiny_assets: Path, tmp_path: Path
) -> None:
    data = tiny_study(
        tiny_assets,
        **{
            "search.num_samples": 4,
            "search.scheduler": {"type": "none"},
            "search.sampler": "random",
        },
    )
    data["space"]["learning_rate"] = {"choices": [10.0, 3e-3]}  # seeded: both are drawn
    spec = parse_spec(data)
    result = run_study(spec, storage_path=str(tmp_path), tracking=False)
    statuses = sorted(t.status for t in result.trials)
    assert "diverged" in statuses and "completed" in statuses, statuses
    diverged = [t for t in result.trials if t.status == "diverged"]
    assert all(t.metrics["step"] < spec.training.max_steps for t in diverged)


def test_a_fully_fixed_space_runs_its_one_config(
    local_ray: None, tiny_assets: Path, tmp_path: Path
) -> None:
    """Nothing to search (Optuna refuses an empty space): num_samples runs of the config."""
    data = tiny_study(tiny_assets, **{"search.num_samples": 2, "training.max_steps": 10})
    data["space"] = {"r": 4, "lora_alpha": 8.0, "learning_rate": 3e-3}
    spec = parse_spec(data)
    result = run_study(spec, storage_path=str(tmp_path), tracking=False)
    assert len(result.trials) == 2
    for t in result.trials:
        assert (t.params["r"], t.params["lora_alpha"], t.params["learning_rate"]) == (4, 8.0, 3e-3)
        assert t.status == "completed" and t.metrics["step"] == 10


def test_a_lone_trial_trains_on_the_idle_slots_threads(
    local_ray: None, tiny_assets: Path, tmp_path: Path
) -> None:
    """Two trials, two slots of 1 CPU on a 2-CPU node: one diverges early, the searcher is
    done, so the idle slot's thread is lent to the other, whose steps then count 2 slots. The
    other runs 200 steps, so it outlives the diverging one even if that one's worker boots
    seconds later (at 20 steps CI once saw it finish first, never alone)."""
    data = tiny_study(
        tiny_assets,
        **{
            "training.max_steps": 200,
            "training.eval_every": 10,
            "search.num_samples": 2,
            "search.scheduler": {"type": "none"},
            "search.sampler": "random",
            "search.seed": 1,
        },
    )
    data["space"]["learning_rate"] = {"choices": [10.0, 3e-3]}  # seeded: both are drawn
    result = run_study(parse_spec(data), storage_path=str(tmp_path), tracking=False)
    assert sorted(t.status for t in result.trials) == ["completed", "diverged"]
    (done,) = (t for t in result.trials if t.status == "completed")
    rows = _history(result.path)[done.trial_id]
    assert rows[-1]["threads"] == 2, [r["threads"] for r in rows]


class KillOnce:
    """A Tune callback that SIGKILLs the worker of the first trial to report step 10."""

    def __init__(self) -> None:
        self.killed: str | None = None

    def setup(self, **info: Any) -> None: ...

    def __getattr__(self, name: str) -> Any:  # every other Callback hook is a no-op
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def on_trial_result(
        self, iteration: int, trials: Any, trial: Any, result: Any, **k: Any
    ) -> None:
        if self.killed is None and result.get("step") == 10:
            self.killed = trial.trial_id
            os.kill(result["pid"], signal.SIGKILL)


def test_killed_worker_is_retried_from_its_checkpoint(
    local_ray: None, tiny_assets: Path, tmp_path: Path
) -> None:
    from ray.tune import Callback

    class Killer(KillOnce, Callback):  # type: ignore[misc]
        pass

    killer = Killer()
    data = tiny_study(
        tiny_assets, **{"search.num_samples": 2, "search.scheduler": {"type": "none"}}
    )
    spec = parse_spec(data)
    result = run_study(spec, storage_path=str(tmp_path), callbacks=[killer], tracking=False)
    assert killer.killed is not None
    assert all(t.status == "completed" for t in result.trials), result.counts
    killed = next(t for t in result.trials if t.trial_id == killer.killed)
    assert killed.metrics["iterations_since_restore"] < killed.metrics["training_iteration"]
    rows = _history(result.path)[killer.killed]
    seen = [(r["step"], r["iterations_since_restore"]) for r in rows]
    assert rows[-1]["step"] == spec.training.max_steps, seen
    # Each run of the trial restarts its iteration count. The retried run must start after
    # step 5, the first checkpoint; a restart from step 0 would report step 5 a second time.
    # (Tune re-copies result.json from storage when a trial restarts, so rows reported just
    # before the kill may be missing; only the runs' first rows are compared.)
    firsts = [r["step"] for r in rows if r["iterations_since_restore"] == 1]
    assert firsts.count(5) <= 1 and any(step > 5 for step in firsts), seen


def test_logical_gpus_fractional_trials_run_four_at_a_time(
    local_ray: None, tiny_assets: Path, tmp_path: Path
) -> None:
    data = tiny_study(
        tiny_assets,
        **{
            "search.num_samples": 4,
            "search.max_concurrent": 4,
            "search.scheduler": {"type": "none"},
            "resources": {"cpu": 0.5, "gpu": 0.5},
            "training.max_steps": 40,  # long enough that staggered starts still overlap
        },
    )
    result = run_study(
        parse_spec(data), storage_path=str(tmp_path), tracking=False, callbacks=[Spans()]
    )
    history = _history(result.path)
    assert len(history) == 4
    devices = {rows[-1]["cuda_visible_devices"] for rows in history.values()}
    assert devices <= {"0", "1"} and devices, devices
    # Whole GPUs would allow 2 at once; half GPUs allow 4. Starts are staggered by worker
    # start-up, so the measured peak can miss 4 by one on a loaded machine, never exceed it.
    assert 2 < _max_overlap(_spans()) <= 4


def test_more_gpus_than_the_cluster_is_a_clear_error(
    local_ray: None, tiny_assets: Path, tmp_path: Path
) -> None:
    spec = parse_spec(tiny_study(tiny_assets, **{"resources.gpu": 4}))
    with pytest.raises(UsageError, match=r"resources\.gpu: each trial asks for 4 GPU"):
        run_study(spec, storage_path=str(tmp_path), tracking=False)


def test_unwritable_storage_path_exits_2(tiny_assets: Path, tmp_path: Path, capsys: Any) -> None:
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_study(tiny_assets)))
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rc = main(["run", str(spec_file), "--storage-path", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert rc == 2 and "--storage-path: cannot write" in err and "Traceback" not in err


def test_unreachable_address_exits_2(tiny_assets: Path, tmp_path: Path) -> None:
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_study(tiny_assets)))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lora_hpo.cli",
            "run",
            str(spec_file),
            "--address",
            "127.0.0.1:1",
            "--storage-path",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--address: cannot reach a Ray cluster at '127.0.0.1:1'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_driver_kill_then_resume(tiny_assets: Path, tmp_path: Path) -> None:
    data = tiny_study(
        tiny_assets,
        **{"search.num_samples": 6, "training.max_steps": 30, "search.scheduler": {"type": "none"}},
    )

    def finished(history: dict[str, list[dict[str, Any]]]) -> set[str]:
        return {t for t, rows in history.items() if rows[-1]["step"] == 30}

    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    storage = tmp_path / "results"
    cli = [sys.executable, "-m", "lora_hpo.cli"]
    # in tmp_path: the study's default MLflow store (./mlflow.db) is not the checkout's
    driver = LiveDriver([*cli, "run", str(spec_file), "--storage-path", str(storage)], tmp_path)
    # kill -9 once the live view shows two trials finished (storage lags by the sync period)
    driver.kill_when(lambda s: sum(st == "completed" for _, st in s.values()) >= 2, 180)
    assert len([t for t, (_, st) in driver.steps().items() if st == "completed"]) < 6
    before = _history(str(storage / "tiny"))
    proc = subprocess.run(
        [*cli, "resume", "tiny", "--storage-path", str(storage)],
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = _history(str(storage / "tiny"))
    assert len(after) == 6  # total trials == num_samples
    # A trial launched in the instant before the kill, not yet in the experiment checkpoint,
    # can leave an empty directory behind; every directory with results is a distinct trial.
    results = (storage / "tiny").glob("tune_trainable_*/result.json")
    ids = [p.parent.name.split("_")[2] for p in results if p.stat().st_size]
    assert len(ids) == len(set(ids)) == 6  # no trial id appears twice
    unfinished = {t: [r["step"] for r in after[t]] for t in set(after) - finished(after)}
    assert not unfinished, (unfinished, proc.stdout[-3000:])  # every trial ran to the end
    for tid in finished(before):  # finished trials were kept, not re-run
        assert after[tid][: len(before[tid])] == before[tid]
        # A trial whose last report raced the kill is restored from its final checkpoint and
        # only re-reports step 30; it trains no further step.
        steps_before, steps_after = ([r["step"] for r in h[tid]] for h in (before, after))
        assert steps_after[: len(steps_before)] == steps_before
        assert set(steps_after[len(steps_before) :]) <= {30}
    # the kept Optuna study holds each trial once, with what it ended as
    import optuna

    study = optuna.load_study(study_name="tiny", storage=optuna_url(str(storage / "tiny")))
    kept = {t.user_attrs["trial_id"]: t for t in study.trials}
    assert set(kept) == set(after) and len(study.trials) == 6
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    assert f"Optuna study: optuna-dashboard {optuna_url(str(storage / 'tiny'))}" in proc.stdout
