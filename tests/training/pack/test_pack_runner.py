"""The pack's slots on a real engine (the tiny Llama, causal LM): reports at the eval steps
and the last one, a slot that waits for its trial before it trains on, a full pack that says
so, freed slots that take the next config, and a failure that reaches its trial."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tiny_study

pytestmark = pytest.mark.slow
CONFIG = {"r": 4, "alpha_ratio": 1.0, "learning_rate": 5e-3}


@pytest.fixture
def runner(tiny_assets: Path) -> Any:
    from lora_hpo.spec.spec_loader import parse_spec
    from lora_hpo.training.pack.pack_runner import PackRunner

    spec = parse_spec(tiny_study(tiny_assets, **{"training.max_steps": 10}))
    pack = PackRunner(spec, capacity=2, placement={"node_id": "here"})
    yield pack
    pack.stop()


def test_each_slot_reports_at_its_eval_steps_then_frees_itself(runner: Any) -> None:
    from lora_hpo.training.pack.pack_archive import unpack_folder

    assert runner.claim("t1", CONFIG, None) and runner.claim("t2", CONFIG | {"r": 8}, None)
    assert not runner.claim("t3", CONFIG, None)  # full
    steps = {"t1": [], "t2": []}
    for key in ("t1", "t2"):
        while True:
            metrics, blob = runner.next(key)
            steps[key].append(metrics["step"])
            assert metrics["node_id"] == "here" and metrics["eval_loss"] > 0
            if metrics["status"] != "running":
                break
    assert steps == {"t1": [5, 10], "t2": [5, 10]}
    folder = unpack_folder(blob, Path(runner.work.name) / "check")
    assert (folder / "adapter_model.safetensors").is_file()
    assert (folder / "adapter_config.json").is_file()
    assert runner.claim("t3", CONFIG, None)  # the finished slots were freed


def test_a_slot_waits_for_its_trial_and_a_dropped_one_takes_the_next_config(runner: Any) -> None:
    assert runner.claim("slow", CONFIG, None) and runner.claim("fast", CONFIG, None)
    first, _ = runner.next("slow")
    while runner.next("fast")[0]["status"] == "running":
        pass
    assert runner.engine.adapters["slow"].step == first["step"] == 5  # it waited
    runner.drop("slow")  # the scheduler stopped it
    assert runner.claim("next", CONFIG, None)
    metrics, _ = runner.next("next")
    assert metrics["step"] == 5 and "slow" not in runner.engine.adapters


def test_a_config_that_cannot_train_fails_its_own_trial_only(runner: Any) -> None:
    from lora_hpo.training.pack.pack_runner import PackError

    assert runner.claim("bad", {"r": 4}, None)  # no alpha_ratio: derive fails
    assert runner.claim("good", CONFIG, None)
    with pytest.raises(PackError, match="alpha_ratio"):
        runner.next("bad")
    assert runner.next("good")[0]["step"] == 5


def test_calls_from_many_threads_each_get_their_own_reports(runner: Any) -> None:
    got: dict[str, list[int]] = {}

    def trial(key: str) -> None:
        assert runner.claim(key, CONFIG, None)
        got[key] = []
        while True:
            metrics, _ = runner.next(key)
            got[key].append(metrics["step"])
            if metrics["status"] != "running":
                return

    threads = [threading.Thread(target=trial, args=(k,)) for k in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert got == {"x": [5, 10], "y": [5, 10]}


def test_a_trial_restored_from_its_last_checkpoint_reports_it_again(runner: Any) -> None:
    """Its driver died after the final report: the same record comes back, no step is run
    (re-evaluating would count no train loss and read as a divergence)."""
    assert runner.claim("t", CONFIG, None)
    while True:
        final, blob = runner.next("t")
        if final["status"] != "running":
            break
    steps = runner.steps
    assert runner.claim("t", CONFIG, blob)  # Tune restores the trial from that checkpoint
    again, _ = runner.next("t")
    assert again == final and runner.steps == steps
