"""The RayJob that k8s/ ships, run as Kubernetes would run it, on pods that share no disk
(``tests/k8s/shipped.py`` on ``tests/pods.py``): its rendered entrypoint, submitted by a
submitter pod with KubeRay's command, on a head pod with the rendered environment and a
cluster that scales from zero (a worker pod joins when the study asks the autoscaler). The
study keeps everything in the bucket the manifests name (moto's S3 server), and a third
process that shares nothing with the pods but the tracking URI and the bucket finds the best
configs and exports the champion. A retry after the head pod died continues the study from
the bucket: finished trials kept, no MLflow run duplicated or left RUNNING."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from tests.live_driver import ROW
from tests.pods import Pod, wait_until

pytestmark = pytest.mark.slow
JOB_S = 600


def statuses(pod: Pod) -> dict[str, tuple[int, str]]:
    """trial id -> (last step, status) from the study's live view in the job's logs."""
    out = {}
    for line in pod.output().splitlines():
        found = ROW.search(line)
        if found and found.group(2) != "-":
            out[found.group(1)] = (int(found.group(2)), found.group(3))
    return out


def scale_from_zero(shipped: Any, submitter: Pod) -> Pod:
    """Stand in for the autoscaler: one worker pod once the study asks for one."""
    wait_until(
        lambda: "asked the autoscaler" in submitter.output() or not submitter.alive(),
        JOB_S,
        "the study to ask the autoscaler for a worker",
    )
    assert submitter.alive(), submitter.output()[-3000:]
    return shipped.add_worker()


def finished(submitter: Pod) -> str:
    submitter.proc.wait(timeout=JOB_S)
    out = submitter.output()
    assert submitter.proc.returncode == 0, out[-4000:]
    return out


def trial_runs(shipped: Any, name: str) -> list[Any]:
    runs = shipped.harness.mlflow_runs(name)
    return [r for r in runs if r.data.tags.get("lora_hpo.role") == "trial"]


def test_the_shipped_rayjob_runs_its_study_on_pods_and_a_third_process_reads_the_results(
    shipped: Any,
) -> None:
    shipped.up(workers=0)  # the shipped worker group starts at zero replicas
    name = shipped.write_study(
        "rayjob-on-pods", **{"training.max_steps": 20, "search.scheduler": {"type": "none"}}
    )
    submitter = shipped.submit()
    scale_from_zero(shipped, submitter)
    out = finished(submitter)
    assert f"study directory: {shipped.storage}/{name}" in out, out[-3000:]
    keys = shipped.harness.s3_keys(f"studies/{name}/")
    assert f"studies/{name}/lora_hpo_spec.yaml" in keys
    assert f"studies/{name}/lora_hpo_mlflow.json" in keys  # the tracker's state, in the bucket
    assert any(k.endswith("/adapter_model.safetensors") for k in keys)
    trials = trial_runs(shipped, name)
    assert len(trials) == 4 and all(r.info.status == "FINISHED" for r in trials), out[-3000:]
    assert shipped.harness.champion(name) is not None

    # a laptop: its own pod, sharing nothing with the cluster but MLflow (and the bucket)
    env = shipped.harness.base_env() | {
        k: v for k, v in shipped.head_env.items() if k.startswith(("MLFLOW_", "AWS_"))
    }
    script = (
        f"lora-hpo best --experiment {name} --json > best.json"
        f" && lora-hpo export --experiment {name} --out bundle"
        " && test -f bundle/adapter_model.safetensors && test -f bundle/lora_hpo_spec.yaml"
        " && cat best.json"
    )
    laptop = shipped.harness.pod("laptop", ["sh", "-c", script], env)
    laptop.proc.wait(timeout=300)
    assert laptop.proc.returncode == 0, laptop.output()[-3000:]
    text = laptop.output()
    best = json.loads(text[text.index("[") :])
    assert len(best) >= 1 and {"r", "lora_alpha", "learning_rate"} <= set(best[0]["params"])


def test_a_retry_after_the_head_pod_died_continues_the_study_from_the_bucket(
    shipped: Any,
) -> None:
    shipped.up(workers=0)
    samples, steps = 6, 60
    name = shipped.write_study(
        "rayjob-retry",
        **{
            "search.num_samples": samples,
            "training.max_steps": steps,
            "search.scheduler": {"type": "none"},
        },
    )
    first = shipped.submit()
    scale_from_zero(shipped, first)

    def midway() -> bool:  # two trials done, and another one past its first checkpoints
        done = {t for t, (_, s) in statuses(first).items() if s == "completed"}
        rows = shipped.harness.s3_results(f"studies/{name}/")
        return len(done) >= 2 and any(
            rs[-1]["step"] >= 10 for t, rs in rows.items() if t not in done
        )

    wait_until(midway, JOB_S, "two trials done and a third past step 10", poll=0.5)
    # that third trial's checkpoint counts for the retry once Tune's experiment snapshot in the
    # bucket knows it: wait for a snapshot written after the results that showed it
    prefix = f"studies/{name}/"
    seen = max(
        t for k, t in shipped.harness.s3_modified(prefix).items() if k.endswith("/result.json")
    )

    def snapshot_after() -> bool:
        written = shipped.harness.s3_modified(prefix)
        return any("experiment_state" in k and t > seen for k, t in written.items())

    wait_until(snapshot_after, JOB_S, "an experiment snapshot newer than those results", poll=0.5)
    done_first = {t for t, (_, s) in statuses(first).items() if s == "completed"}
    shipped.fresh_cluster()  # the head pod dies; KubeRay retries on a fresh cluster
    second = shipped.submit()
    new_node = scale_from_zero(shipped, second).node_id
    out = finished(second)
    assert f"continuing study {name!r}" in out, out[-3000:]
    rows = shipped.harness.s3_results(f"studies/{name}/")
    steps = {t: [(r["step"], r["node_id"] == new_node) for r in rs] for t, rs in rows.items()}
    print(
        f"done before the retry: {sorted(done_first)}; (step, retry) {steps}", file=sys.__stderr__
    )
    assert len(rows) == samples  # (a killed driver's last result.json rows may be unsynced)
    for trial in done_first:  # finished trials are kept: nothing of them ran again
        assert all(r["node_id"] != new_node for r in rows[trial]), trial
    resumed = [  # cut short in the first attempt, continued from a checkpoint in the retry
        t
        for t, rs in rows.items()
        if rs[0]["node_id"] != new_node
        and any(r["node_id"] == new_node and r["step"] > rs[0]["step"] for r in rs)
        and not any(r["node_id"] == new_node and r["step"] == rs[0]["step"] for r in rs)
    ]
    assert resumed, steps
    trials = trial_runs(shipped, name)
    ids = [r.data.tags["lora_hpo.trial_id"] for r in trials]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == samples  # one run per trial
    assert all(r.info.status == "FINISHED" for r in trials)
    assert all(r.data.tags["status"] == "completed" for r in trials)  # each ran to max_steps
    studies = [
        r for r in shipped.harness.mlflow_runs(name) if r.data.tags.get("lora_hpo.role") == "study"
    ]
    assert len(studies) == 1 and studies[0].info.status == "FINISHED"
    assert shipped.harness.champion(name) is not None
