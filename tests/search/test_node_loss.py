"""Node loss on pods that share no disk (the shipped RayJob's cluster on the two-pod harness):
the worker pod dies in the middle of a study, a new one joins, and the trials it ran resume on
the new pod from their checkpoints in the bucket; the study ends with num_samples trials and
one MLflow run each."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.live_driver import LiveDriver
from tests.pods import MLFLOW, wait_until

pytestmark = pytest.mark.slow
STEPS = 120


def test_trials_of_a_lost_worker_pod_resume_from_the_bucket_on_a_new_one(shipped: Any) -> None:
    shipped.up(workers=1)
    (lost,) = shipped.harness.workers()
    name = shipped.write_study(
        "node-loss",
        **{
            "search.num_samples": 4,
            "search.scheduler": {"type": "none"},
            "search.max_failures": 3,
            # long enough after step 10 that the trial cannot finish before its pod is gone
            "training.max_steps": STEPS,
        },
    )
    argv = ["lora-hpo", "run", "/specs/study.yaml", "--tracking-uri", MLFLOW]
    driver = LiveDriver([*shipped.head_pod().enter(), *argv], env=shipped.head_env)
    reported = lambda: shipped.harness.s3_results(f"studies/{name}/")  # noqa: E731
    wait_until(
        lambda: (
            any(r["step"] >= 10 for rs in reported().values() for r in rs)
            or driver.proc.poll() is not None
        ),
        300,
        "a trial to report step 10",
        poll=0.5,
    )
    lost.kill()
    shipped.add_worker()
    assert driver.proc.wait(timeout=600) == 0, "".join(driver.lines)[-3000:]
    rows = shipped.harness.s3_results(f"studies/{name}/")
    nodes = {t: [(r["step"], r["node_id"][:8]) for r in rs] for t, rs in rows.items()}
    print(
        f"lost {lost.node_id[:8]}; trial -> (step, node) per report: {nodes}", file=sys.__stderr__
    )
    moved = [
        t
        for t, rs in rows.items()
        if rs[0]["node_id"] == lost.node_id and rs[-1]["node_id"] != lost.node_id
    ]
    assert moved, nodes  # a trial that ran on the lost pod finished on the new one
    resumed = [
        t for t in moved if next(r for r in rows[t] if r["node_id"] != lost.node_id)["step"] > 5
    ]
    assert resumed, nodes  # from its checkpoint in the bucket, not from step 0
    runs = shipped.harness.mlflow_runs(name)
    trials = [r for r in runs if r.data.tags.get("lora_hpo.role") == "trial"]
    ids = [r.data.tags["lora_hpo.trial_id"] for r in trials]
    assert len(ids) == 4 and len(set(ids)) == 4 and all(r.info.status == "FINISHED" for r in trials)
    assert all(r.data.tags["status"] == "completed" for r in trials), [r.data.tags for r in trials]
