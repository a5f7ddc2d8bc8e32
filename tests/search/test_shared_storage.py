"""Storage every trial node reads, on pods that share no disk (the shipped RayJob's cluster on
the two-pod harness): a study whose storage root only the head pod sees is refused in seconds,
exit 2, before any trial runs, with the message naming --storage-path and what to give."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.pods import HEAD, MLFLOW

pytestmark = pytest.mark.slow
REFUSED_WITHIN_S = 30


def test_a_study_whose_trial_nodes_cannot_read_its_storage_is_refused_in_seconds(
    shipped: Any,
) -> None:
    shipped.up(workers=1)
    name = shipped.write_study("no-shared-disk")
    # as the issue found it: `lora-hpo run` on the head, no --storage-path, no bucket
    env = {k: v for k, v in shipped.head_env.items() if k != "LORA_HPO_STORAGE"}
    argv = ["lora-hpo", "run", "/specs/study.yaml", "--address", HEAD, "--tracking-uri", MLFLOW]
    rc, out, took = shipped.head_pod().run(argv, env, timeout=300)
    print(f"refused in {took:.1f} s:\n{out[-1500:]}", file=sys.__stderr__)
    assert rc == 2, out[-3000:]
    assert took < REFUSED_WITHIN_S
    assert "--storage-path" in out and "s3://" in out and "every node shares" in out
    assert "/tmp/work/lora-hpo-results" in out and "Traceback" not in out
    trials = [r for r in shipped.harness.mlflow_runs(name) if r.data.tags.get("lora_hpo.role")]
    assert trials == []  # refused before any trial (or its run) started
