"""The private Ray APIs lora-hpo uses: a restored Tuner's callbacks can be replaced (on a real
Ray runtime), Tune's trainable-actor env_vars can be lifted and come back, and if Ray moves
either the error names what moved. (That trial actors then take the prestarted workers is
tested on a real local Ray in ``test_runtime.py``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch  # noqa: F401  (before ray)

from lora_hpo.search.ray_internals import RayInternalsMoved, replace_callbacks

pytestmark = pytest.mark.slow


def _one_report(config: dict[str, Any]) -> None:
    from ray import tune

    tune.report({"step": 1, "score": config["x"]})


def test_a_restored_tuner_reports_to_the_replaced_callbacks(tmp_path: Path) -> None:
    import ray
    from ray import tune

    class Seen(tune.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.ends = 0

        def on_experiment_end(self, trials: Any, **info: Any) -> None:
            self.ends += 1

    ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        first, second = Seen(), Seen()
        run = tune.RunConfig(name="x", storage_path=str(tmp_path), callbacks=[first], verbose=0)
        space = {"x": tune.grid_search([1, 2])}
        tune.Tuner(_one_report, param_space=space, run_config=run).fit()
        restored = tune.Tuner.restore(str(tmp_path / "x"), trainable=_one_report)
        replace_callbacks(restored, [second])
        restored.fit()
    finally:
        ray.shutdown()
    assert (first.ends, second.ends) == (1, 1)


def test_a_moved_internal_fails_loudly_naming_it() -> None:
    with pytest.raises(RayInternalsMoved, match=r"_local_tuner\._run_config\.callbacks moved"):
        replace_callbacks(object(), [])


def test_moved_tune_actor_env_fails_loudly_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.tune.execution import class_cache

    from lora_hpo.search.ray_internals import plain_trial_actors

    monkeypatch.delattr(class_cache, "DEFAULT_ENV_VARS")
    moved = pytest.raises(RayInternalsMoved, match=r"class_cache\.DEFAULT_ENV_VARS")
    with moved, plain_trial_actors():
        pass


def test_plain_trial_actors_restores_tunes_defaults_after_an_error() -> None:
    from lora_hpo.search.ray_internals import plain_trial_actors, tune_actor_env

    before = tune_actor_env()
    with pytest.raises(KeyError), plain_trial_actors():
        assert tune_actor_env() == {}
        raise KeyError("boom")
    assert tune_actor_env() == before
