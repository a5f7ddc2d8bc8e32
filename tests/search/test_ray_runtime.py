"""The runtime: the GPU share check, when a local Ray preloads the trial modules in its
prestarted workers, and (on a real local Ray) that the slots' first trials start in those
workers with the modules already imported and the workers' settings inherited."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch  # noqa: F401  (before ray)

from lora_hpo.files.scratch_folders import OWNER
from lora_hpo.search import ray_runtime as runtime
from lora_hpo.search.ray_runtime import fits_share, preloads
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.training.preload_marks import PRELOADED_ENV
from tests.conftest import tiny_study

GIB = 1 << 30
PRELOADED = ("ray.tune", "lora_hpo.training.trainer_trial")  # what worker_preload imports


def test_a_share_that_holds_the_trial_passes() -> None:
    assert fits_share(30 * GIB, 0.5, 80 * GIB) == ""
    assert fits_share(30 * GIB, 2.0, 40 * GIB) == ""  # whole GPUs: one device's memory each


def test_a_share_too_small_names_the_field_and_the_ways_out() -> None:
    why = fits_share(30 * GIB, 0.25, 80 * GIB)
    assert why.startswith("resources.gpu: a trial gets 0.25 of a 80 GiB GPU, 20.0 GiB")
    assert "needs about 30.0 GiB" in why and "model.quantization" in why


def spec_with(tmp_path: Path, **overrides: Any) -> StudySpec:
    return parse_spec(tiny_study(tmp_path, **overrides))  # 1 CPU a trial, 2 at once


def test_cpu_trials_that_fill_the_node_preload(tmp_path: Path) -> None:
    assert preloads(spec_with(tmp_path), cpus=2)
    assert preloads(spec_with(tmp_path), cpus=4)  # half the prestarted workers take a trial
    assert preloads(spec_with(tmp_path, **{"resources.cpu": 2}), cpus=4)


def test_no_preload_where_most_prestarted_workers_would_idle(tmp_path: Path) -> None:
    assert not preloads(spec_with(tmp_path), cpus=16)  # 14 of 16 workers would hold 0.5 GiB
    assert not preloads(spec_with(tmp_path, **{"search.max_concurrent": 1}), cpus=4)


def test_no_preload_for_gpu_or_packed_trials(tmp_path: Path) -> None:
    assert not preloads(spec_with(tmp_path, **{"resources.gpu": 0.5}), cpus=2)
    assert not preloads(spec_with(tmp_path, **{"search.pack": 2}), cpus=2)


def test_no_preload_when_tune_would_give_the_actors_a_runtime_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")  # Tune copies it into each trial actor's env
    assert not preloads(spec_with(tmp_path), cpus=2)


def _entry(config: dict[str, Any]) -> None:
    """A trial that says where it runs and what its worker had imported before it."""
    from ray import tune

    tune.report(
        {
            "pid": os.getpid(),
            "preloaded": [m for m in PRELOADED if m in sys.modules],
            "env": {k: os.environ.get(k, "") for k in ("PL_DISABLE_FORK", *runtime.WORKER_ENV)},
        }
    )


def _idle_workers(want: int, timeout_s: float = 60.0) -> set[int]:
    """The pids of the workers this process's Ray prestarted (its raylet's children), once
    ``want`` of them are up."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while True:
        found = set()
        for child in psutil.Process().children(recursive=True):
            try:
                if child.name() == "ray::IDLE":
                    found.add(child.pid)
            except psutil.Error:
                continue
        if len(found) >= want or time.monotonic() > deadline:
            return found


@pytest.mark.slow
def test_a_local_ray_runs_the_first_trials_in_its_preloaded_prestarted_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray
    from ray import tune

    from lora_hpo.search.ray_internals import plain_trial_actors, propagated_env, tune_actor_env

    monkeypatch.setattr(runtime, "local_cpus", lambda: 2)  # the study fills the node: preload
    monkeypatch.setenv("RAY_ADDRESS", "local")  # Ray's word for a new local Ray, as no address
    for key in ("PL_DISABLE_FORK", *runtime.WORKER_ENV, *propagated_env()):
        monkeypatch.delenv(key, raising=False)  # a driver of its own: no env for Tune
    ray_runtime = runtime.start(None, spec_with(tmp_path))
    try:
        assert ray_runtime.local and ray_runtime.started and not ray_runtime.joined
        marker = Path(os.environ[PRELOADED_ENV])  # a scratch folder: swept if killed
        assert marker.name.startswith("lora-hpo-preloaded-")
        assert Path(f"{marker}{OWNER}").is_file()
        prestarted = _idle_workers(int(ray.cluster_resources()["CPU"]))
        assert ray_runtime.wait_preloaded() == 2  # both slots' workers are done
        run = tune.RunConfig(storage_path=str(tmp_path / "runs"), verbose=0)
        with plain_trial_actors():
            config = tune.TuneConfig(num_samples=2, max_concurrent_trials=2)
            grid = tune.Tuner(_entry, tune_config=config, run_config=run).fit()
        rows = [r.metrics for r in grid]
    finally:
        ray_runtime.close()
    assert {r["pid"] for r in rows} <= prestarted  # no worker booted for a slot
    assert all(r["preloaded"] == list(PRELOADED) for r in rows)
    expected = {**tune_actor_env(), **runtime.WORKER_ENV}  # inherited: no runtime_env
    assert all(r["env"] == expected for r in rows)
    assert tune_actor_env() == {"PL_DISABLE_FORK": "1"}  # Tune's default is back
    assert PRELOADED_ENV not in os.environ and ray_runtime.wait_preloaded() == 0
    assert not marker.exists()
