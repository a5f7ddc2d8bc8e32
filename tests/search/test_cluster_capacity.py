"""Capacity on a cluster the study joins: it asks the autoscaler for one trial's resources and
waits, with one live line, until a node can run it, or gives up with a clear error."""

from __future__ import annotations

import copy
import io
import threading
import time
from typing import Any

import pytest
import torch  # noqa: F401  (before ray)

from lora_hpo.search.cluster_capacity import WaitLine, bundle, node_fits, parse_duration, shortfall
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_loader import parse_spec
from tests.conftest import BASE_SPEC


def _spec(cpu: float = 1, gpu: float = 0) -> Any:
    data = copy.deepcopy(BASE_SPEC) | {"resources": {"cpu": cpu, "gpu": gpu}}
    return parse_spec(data)


def test_durations() -> None:
    assert [parse_duration(x) for x in ("90", "90s", "15m", "1.5h")] == [90, 90, 900, 5400]
    with pytest.raises(UsageError, match=r"--wait-for-resources: must be a duration.*'soon'"):
        parse_duration("soon")


def test_a_trial_fits_a_node_by_its_own_resources() -> None:
    nodes = [
        {"Alive": True, "Resources": {"CPU": 0.0}},  # a KubeRay head: no CPUs for trials
        {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 1.0}},  # gone
        {"Alive": True, "Resources": {"CPU": 8.0}},
    ]
    assert node_fits(nodes, bundle(_spec(cpu=4)))
    assert not node_fits(nodes, bundle(_spec(cpu=4, gpu=1)))
    assert shortfall(bundle(_spec(cpu=4, gpu=1)), {"GPU": 0.0}) == "1 GPU and 4 CPU (0 GPU free)"


def test_the_wait_line_writes_a_line_every_30_s_off_a_terminal() -> None:
    stream = io.StringIO()
    line = WaitLine(stream)
    for t in (0, 10, 31, 45, 62):
        line.show("waiting for 1 GPU (0 GPU free); asked the autoscaler", t)
    assert stream.getvalue().splitlines() == [
        "waiting for 1 GPU (0 GPU free); asked the autoscaler 0s",
        "waiting for 1 GPU (0 GPU free); asked the autoscaler 31s",
        "waiting for 1 GPU (0 GPU free); asked the autoscaler 1m02s",
    ]


class _Watched(io.StringIO):
    """A stream that sets ``seen`` once ``text`` has been written to it."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.seen = text, threading.Event()

    def write(self, s: str) -> int:
        n = super().write(s)
        if self.text in self.getvalue():
            self.seen.set()
        return n


@pytest.mark.slow
def test_a_joined_cluster_with_no_cpus_waits_for_a_worker_then_gives_up_on_gpus() -> None:
    import ray
    from ray.cluster_utils import Cluster

    from lora_hpo.search.cluster_capacity import release, wait_for_capacity

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        ray.init(address=cluster.address, logging_level="ERROR")
        stream, got = _Watched("waiting for 1 CPU (0 CPU free); asked the autoscaler"), {}
        waiter = threading.Thread(
            target=lambda: got.update(s=wait_for_capacity(_spec(cpu=1), 120, view=WaitLine(stream)))
        )
        waiter.start()
        assert stream.seen.wait(timeout=60)  # it is waiting, and says so: a worker joins later
        cluster.add_node(num_cpus=2)  # (Ray's Cluster adds nodes from the main thread only)
        waiter.join(timeout=120)
        assert not waiter.is_alive() and got["s"] > 0, got
        started = time.monotonic()
        with pytest.raises(UsageError, match=r"resources: waited 2s for a node .*1 GPU and 1 CPU"):
            wait_for_capacity(_spec(cpu=1, gpu=1), 2, view=WaitLine(io.StringIO()))
        assert time.monotonic() - started < 30
        release()
    finally:
        ray.shutdown()
        cluster.shutdown()
