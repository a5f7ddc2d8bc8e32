"""Node loss: on a multi-node Ray cluster with shared storage, a worker node is removed in the
middle of a study; its trials resume on the other node from their checkpoints, and the study
ends with num_samples trials and one MLflow run each."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch  # noqa: F401  (before ray)
from ray.tune import Callback

from lora_hpo.search.study import run_study
from lora_hpo.spec.loader import parse_spec
from lora_hpo.tracking.study import StudyTracking
from tests.conftest import tiny_study

pytestmark = pytest.mark.slow
STEPS = 120


def _rows(study: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for path in study.glob("*/result.json"):
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        if rows:
            out.setdefault(rows[0]["trial_id"], []).extend(rows)
    return out


_CLUSTER: dict[str, Any] = {}  # the in-process cluster: Tune pickles callbacks, keep it out


class LoseANode(Callback):  # type: ignore[misc]
    """Removes the node of the first trial to report step 10 (once)."""

    lost: str | None = None

    def on_trial_result(
        self, iteration: int, trials: Any, trial: Any, result: Any, **_: Any
    ) -> None:
        if LoseANode.lost is None and result.get("step") == 10:
            node = next(w for w in _CLUSTER["workers"] if w.node_id == result["node_id"])
            LoseANode.lost = node.node_id
            _CLUSTER["cluster"].remove_node(node, allow_graceful=False)


def test_trials_of_a_lost_node_resume_on_the_other(
    tiny_assets: Path, tmp_path: Path, mlflow_server: Any
) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    _CLUSTER.update(cluster=cluster, workers=workers)
    over = {
        "search.num_samples": 4,
        "search.scheduler": {"type": "none"},
        "search.max_failures": 3,
        # long enough after step 10 that the trial cannot finish before its node is gone
        "training.max_steps": STEPS,
    }
    spec = parse_spec(tiny_study(tiny_assets, name="node-loss", **over))
    ray.init(address=cluster.address, logging_level="ERROR")
    try:
        result = run_study(
            spec,
            storage_path=str(tmp_path / "shared"),
            tracking=StudyTracking(mlflow_server.uri),
            callbacks=[LoseANode()],
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    rows = _rows(tmp_path / "shared" / "node-loss")
    nodes = {t: [r["node_id"][:8] for r in rs] for t, rs in rows.items()}
    print(
        f"lost node {LoseANode.lost and LoseANode.lost[:8]}; trial -> nodes per report: {nodes}",
        file=sys.__stderr__,
    )
    assert LoseANode.lost is not None
    assert len(result.trials) == 4 and all(t.status == "completed" for t in result.trials)
    moved = [
        t
        for t, rs in rows.items()
        if {r["node_id"] for r in rs} >= {LoseANode.lost} and rs[-1]["node_id"] != LoseANode.lost
    ]
    assert moved, nodes  # a trial that ran on the lost node finished on the other one
    for t in moved:
        steps = [r["step"] for r in rows[t]]
        assert steps[-1] == STEPS and steps.count(5) == 1, steps  # resumed, not restarted at 0
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.uri)
    exp = client.get_experiment_by_name("node-loss")
    trials = client.search_runs([exp.experiment_id], "tags.`lora_hpo.role` = 'trial'")
    ids = [r.data.tags["lora_hpo.trial_id"] for r in trials]
    assert len(ids) == 4 and len(set(ids)) == 4 and all(r.info.status == "FINISHED" for r in trials)
