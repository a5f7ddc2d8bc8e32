"""The rendered Ray resources: the GPU overlay, Ray versions, the image, autoscaling with token
auth, and the RayJob's cluster being the RayCluster plus the study mount."""

from __future__ import annotations

import copy
import importlib.metadata
import re
from pathlib import Path

import pytest

from tests.k8s.render import (
    BASE,
    GPU,
    K8S,
    KUSTOMIZATION_IDS,
    KUSTOMIZATIONS,
    Doc,
    pod_specs,
    ray_cluster_specs,
    ray_templates,
    render,
)

kustomizations = pytest.mark.parametrize("kdir", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def image_version(image: str) -> str:
    match = re.search(r":[^:/]*?(\d+\.\d+\.\d+)", image)
    assert match, f"no x.y.z version in the tag of {image}"
    return match.group(1)


def test_the_gpu_overlay_gives_every_worker_a_gpu_and_the_heads_none() -> None:
    for kdir, gpus in ((BASE, False), (GPU, True)):
        for where, spec in ray_cluster_specs(render(kdir)):
            for group, template in ray_templates(spec):
                pod = template["spec"]
                (c,) = pod["containers"]
                limits = c["resources"]["limits"]
                want = gpus and group != "head"
                assert ("nvidia.com/gpu" in limits) == want, f"{kdir.name} {where} {group}"
                if want:
                    assert limits["nvidia.com/gpu"] == c["resources"]["requests"]["nvidia.com/gpu"]
                    assert c["image"].endswith("-gpu")
                    assert GPU_TOLERATION in pod["tolerations"]


@kustomizations
def test_ray_versions_agree_with_the_installed_ray(kdir: Path) -> None:
    ray = importlib.metadata.version("ray")
    docs = render(kdir)
    for where, spec in ray_cluster_specs(docs):
        assert spec["rayVersion"] == ray, where
    ray_pods = [(w, p) for w, p in pod_specs(docs) if w.startswith(("RayCluster", "RayJob"))]
    images = {c["image"] for _, pod in ray_pods for c in pod["containers"]}
    assert images
    assert {i: image_version(i) for i in images} == dict.fromkeys(images, ray)


def test_the_dockerfile_builds_on_the_same_ray_torch_first_as_user_ray() -> None:
    text = (K8S / "Dockerfile").read_text()
    ray = importlib.metadata.version("ray")
    assert f"ARG RAY_VERSION={ray}\n" in text
    assert "ARG BASE_IMAGE=rayproject/ray:${RAY_VERSION}-py311\n" in text
    assert "ARG TORCH_VERSION=2.13.0\n" in text
    torch_at, package_at = text.index('"torch==${TORCH_VERSION}"'), text.index("pip install /src")
    assert torch_at < package_at
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert set(users) <= {"ray", "1000"}
    assert users[-1] == "1000"


@kustomizations
def test_ray_clusters_autoscale_use_token_auth_and_keep_ray_tmp_on_an_empty_dir(kdir: Path) -> None:
    for where, spec in ray_cluster_specs(render(kdir)):
        assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0", where
        assert spec["enableInTreeAutoscaling"] is True, where
        assert spec["authOptions"]["mode"] == "token", where
        for group in spec["workerGroupSpecs"]:
            assert 0 <= group["minReplicas"] <= group["maxReplicas"], where
            assert group["maxReplicas"] > 0, where
        for group, template in ray_templates(spec):
            volumes = {v["name"]: v for v in template["spec"]["volumes"]}
            (c,) = template["spec"]["containers"]
            (tmp,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp/ray"]
            assert "emptyDir" in volumes[tmp["name"]], f"{where} {group}"


def _without_study_mount(spec: Doc) -> Doc:
    spec = copy.deepcopy(spec)
    pod = spec["headGroupSpec"]["template"]["spec"]
    pod["volumes"] = [v for v in pod["volumes"] if v["name"] != "study"]
    for c in pod["containers"]:
        c["volumeMounts"] = [m for m in c["volumeMounts"] if m["mountPath"] != "/specs"]
    return spec


@kustomizations
def test_the_rayjob_cluster_is_the_raycluster_plus_the_study_mount(kdir: Path) -> None:
    specs = dict(ray_cluster_specs(render(kdir)))
    assert _without_study_mount(specs["RayJob/bbc-minilm"]) == specs["RayCluster/lora-hpo"]
