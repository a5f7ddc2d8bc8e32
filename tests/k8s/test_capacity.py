"""The rendered Ray clusters against the studies the manifests ship: the study a RayJob mounts
loads as a lora-hpo spec, one trial of it fits a worker pod, and the clusters have the
scale-from-zero shape (a head with 0 CPUs, workers from 0 replicas, the in-tree autoscaler)
that lets lora-hpo ask the autoscaler for the trials' resources."""

from __future__ import annotations

import math
import posixpath
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from lora_hpo.spec.spec_loader import load_spec, parse_spec
from lora_hpo.spec.spec_schema import StudySpec
from tests.conftest import REPO
from tests.k8s.render import (
    BASE,
    GPU,
    K8S,
    KUSTOMIZATION_IDS,
    KUSTOMIZATIONS,
    Doc,
    named,
    of_kind,
    ray_cluster_specs,
    render,
    where,
)

kustomizations = pytest.mark.parametrize("kdir", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)


def study_text(docs: list[Doc], job: Doc) -> str:
    """The spec file a RayJob's entrypoint runs, read from the ConfigMap mounted on its head."""
    (path,) = [a for a in shlex.split(job["spec"]["entrypoint"]) if a.endswith((".yaml", ".yml"))]
    pod = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mounts = pod["containers"][0]["volumeMounts"]
    (mount,) = [m for m in mounts if m["mountPath"] == posixpath.dirname(path)]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "items" not in volume["configMap"], where(job)
    config_map = named(docs, "ConfigMap", volume["configMap"]["name"])
    key = posixpath.basename(path)
    assert key in config_map.get("data", {}), f"{where(config_map)} has no {key}"
    return str(config_map["data"][key])


def shipped_studies(docs: list[Doc]) -> list[tuple[str, Any]]:
    """(RayJob, the parsed YAML of its study) for every RayJob in a render."""
    return [(where(job), yaml.safe_load(study_text(docs, job))) for job in of_kind(docs, "RayJob")]


def study_specs(docs: list[Doc]) -> list[tuple[str, StudySpec]]:
    return [(at, parse_spec(data, f"{at} study")) for at, data in shipped_studies(docs)]


def quantity(value: Any) -> float:
    """A Kubernetes CPU/GPU quantity ("8", "500m", 1) or a rayStartParams number."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def pod_resources(group: Doc) -> dict[str, float]:
    """What Ray advertises for one pod of a group: rayStartParams, else the Ray container's
    limits (else requests), as KubeRay derives them; GPUs are nvidia.com/gpu."""
    params = group.get("rayStartParams", {})
    resources = group["template"]["spec"]["containers"][0].get("resources", {})
    amounts = {**resources.get("requests", {}), **resources.get("limits", {})}
    cpu = params.get("num-cpus", amounts.get("cpu", 0))
    gpu = params.get("num-gpus", amounts.get("nvidia.com/gpu", 0))
    return {"cpu": quantity(cpu), "gpu": quantity(gpu)}


def largest_worker(spec: Doc) -> tuple[str, dict[str, float], int]:
    groups = [(pod_resources(g), g) for g in spec["workerGroupSpecs"]]
    have, group = max(groups, key=lambda rg: (rg[0]["gpu"], rg[0]["cpu"]))
    return group["groupName"], have, group["maxReplicas"]


def trials_per_pod(have: dict[str, float], study: StudySpec) -> int:
    wants = {"cpu": study.resources.cpu, "gpu": study.resources.gpu}
    return min(math.floor(have[k] / w + 1e-9) for k, w in wants.items() if w > 0)


def test_the_rayjob_runs_the_study_mounted_from_its_configmap() -> None:
    docs = render(BASE)
    (job,) = of_kind(docs, "RayJob")
    spec = job["spec"]
    assert spec["entrypoint"] == "lora-hpo run /specs/study.yaml --resume-if-exists"
    assert spec["shutdownAfterJobFinishes"] is True
    assert "clusterSelector" not in spec
    for key in ("ttlSecondsAfterFinished", "backoffLimit", "activeDeadlineSeconds"):
        assert isinstance(spec[key], int), key
    assert named(docs, "ConfigMap", "lora-hpo-study")["data"]["study.yaml"] == study_text(docs, job)


@kustomizations
def test_every_study_the_manifests_ship_loads(kdir: Path) -> None:
    studies = study_specs(render(kdir))
    assert studies
    assert all(spec.name for _, spec in studies)


@kustomizations
def test_the_largest_worker_group_fits_one_trial_of_every_shipped_study(kdir: Path) -> None:
    docs = render(kdir)
    studies = study_specs(docs)
    clusters = list(ray_cluster_specs(docs))
    assert studies and clusters
    for at, spec in clusters:
        group, have, _ = largest_worker(spec)
        for job, study in studies:
            want = {"cpu": study.resources.cpu, "gpu": study.resources.gpu}
            short = {k: (w, have[k]) for k, w in want.items() if w > have[k]}
            assert not short, f"{at} group {group} cannot hold one trial of {job}: {short}"


@kustomizations
def test_at_max_scale_the_workers_hold_max_concurrent_trials(kdir: Path) -> None:
    docs = render(kdir)
    for at, spec in ray_cluster_specs(docs):
        group, have, max_replicas = largest_worker(spec)
        for job, study in study_specs(docs):
            room = trials_per_pod(have, study) * max_replicas
            assert room >= study.search.max_concurrent, f"{at} {group} vs {job}: {room} trials"


@kustomizations
def test_clusters_scale_from_zero_behind_a_head_with_no_cpus(kdir: Path) -> None:
    for at, spec in ray_cluster_specs(render(kdir)):
        head = spec["headGroupSpec"]
        assert head["rayStartParams"].get("num-cpus") == "0", at
        assert quantity(head["rayStartParams"].get("num-gpus", 0)) == 0, at
        assert spec["enableInTreeAutoscaling"] is True, at
        assert spec["workerGroupSpecs"], at
        for group in spec["workerGroupSpecs"]:
            assert group["minReplicas"] == 0, f"{at} {group['groupName']}"
            assert group.get("replicas", 0) == 0, f"{at} {group['groupName']}"


def test_the_gpu_overlay_ships_the_base_study_with_gpus() -> None:
    ((base_job, base),) = shipped_studies(render(BASE))
    ((gpu_job, gpu),) = shipped_studies(render(GPU))
    assert base_job == gpu_job
    assert base.pop("resources")["gpu"] == 0
    assert gpu.pop("resources")["gpu"] > 0
    assert base == gpu


def test_the_cluster_the_readme_deploys_fits_the_study_it_submits() -> None:
    readme = (K8S / "README.md").read_text()
    assert "kubectl apply -k k8s/overlays/gpu\n" in readme
    files = re.findall(r"lora-hpo submit (\S+)", readme)
    assert files
    (spec,) = [s for at, s in ray_cluster_specs(render(GPU)) if at == "RayCluster/lora-hpo"]
    group, have, _ = largest_worker(spec)
    for name in files:
        study = load_spec(REPO / name)
        assert study.resources.cpu <= have["cpu"], f"{name}: {group} has {have}"
        assert study.resources.gpu <= have["gpu"], f"{name}: {group} has {have}"
