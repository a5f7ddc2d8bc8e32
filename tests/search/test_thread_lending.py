"""Idle slots lent at a study's tail (lora_hpo.search.thread_lending): the count per live trial, and
where lending is safe to know."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import torch  # noqa: F401  (before ray)

from lora_hpo.search.thread_lending import ThreadLending, budget, one_node_total
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.training.trial_threads import read_count
from tests.conftest import tiny_study


def test_nothing_is_lent_while_the_searcher_may_make_trials() -> None:
    assert budget(live=1, made=3, num_samples=8, own=1, total=2) == 1


def test_the_slots_are_split_over_the_trials_left() -> None:
    assert budget(live=1, made=8, num_samples=8, own=1, total=2) == 2
    assert budget(live=2, made=8, num_samples=8, own=1, total=2) == 1
    assert budget(live=1, made=4, num_samples=4, own=2, total=8) == 8
    assert budget(live=3, made=4, num_samples=4, own=2, total=8) == 2  # never below its own
    assert budget(live=0, made=4, num_samples=4, own=1, total=2) == 1


@pytest.fixture(scope="module")
def one_node_ray() -> Iterator[None]:
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.mark.slow
def test_lending_holds_only_for_cpu_unpacked_trials_on_the_drivers_node(
    one_node_ray: None, tiny_assets: Path
) -> None:
    spec = parse_spec(tiny_study(tiny_assets))  # 1 CPU a trial, 2 at once, on 2 CPUs
    assert one_node_total(spec) == 2
    assert one_node_total(parse_spec(tiny_study(tiny_assets, **{"resources.gpu": 1}))) is None
    assert one_node_total(parse_spec(tiny_study(tiny_assets, **{"search.pack": 2}))) is None
    lone = parse_spec(tiny_study(tiny_assets, **{"search.max_concurrent": 1}))
    with ThreadLending(lone) as lending:  # one slot: nothing to lend
        assert lending.threads is None and lending.callbacks == []
    with ThreadLending(spec) as lending:
        assert lending.threads is not None and lending.threads.path is not None
        assert read_count(lending.threads.path) == 1
        folder = Path(lending.threads.path).parent
    assert not folder.exists()
