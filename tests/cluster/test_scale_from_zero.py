"""Scale from zero on pods that share no disk (the shipped RayJob's cluster on the two-pod
harness): a study submitted from a laptop pod to a head with no CPUs and no workers asks the
autoscaler and waits; a worker pod joins (standing in for the autoscaler); the study's storage
path is one only the head pod sees, so the study is refused within seconds of the join, before
any trial runs, naming --storage-path. (The same cluster running a study to the end from zero
workers: tests/k8s/test_rayjob_on_pods.py.)"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from tests.pods import DASHBOARD, wait_until

pytestmark = pytest.mark.slow
REFUSED_WITHIN_S = 30


def test_a_study_is_refused_once_the_first_worker_joins_when_it_cannot_read_the_storage(
    shipped: Any,
) -> None:
    shipped.up(workers=0)
    name = shipped.write_study("zero-head-disk")
    harness = shipped.harness
    env = harness.base_env() | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": harness.token}
    submit = [
        "lora-hpo", "submit", str(shipped.specs / "study.yaml"), "--wait",
        "--address", DASHBOARD, "--tracking-uri", shipped.head_env["MLFLOW_TRACKING_URI"],
        # absolute, so `submit` takes it as a shared mount; only the head pod has it
        "--storage-path", "/tmp/work/results",
    ]  # fmt: skip
    laptop = harness.pod("laptop", submit, env)
    wait_until(
        lambda: "asked the autoscaler" in laptop.output() or not laptop.alive(),
        300,
        "the study to ask the autoscaler",
    )
    assert laptop.alive(), laptop.output()[-3000:]
    shipped.add_worker()
    joined = time.monotonic()
    laptop.proc.wait(timeout=300)
    took = time.monotonic() - joined
    out = laptop.output()
    print(f"refused {took:.1f} s after the first worker joined", file=sys.__stderr__)
    assert laptop.proc.returncode == 1 and "FAILED" in out, out[-3000:]  # the job failed
    assert "exit code 2" in out, out[-3000:]  # with the driver's bad-input status
    assert "--storage-path: 1 of 1 trial nodes cannot read '/tmp/work/results'" in out
    assert "Traceback" not in out
    assert took < REFUSED_WITHIN_S
    trials = [r for r in harness.mlflow_runs(name) if r.data.tags.get("lora_hpo.role")]
    assert trials == []  # no trial started
