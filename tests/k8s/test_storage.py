"""The studies' storage in the rendered manifests: one bucket, named in one ConfigMap, that
every Ray pod (head and workers, of the RayCluster and of the RayJob, in the base and the GPU
overlay) reads, with the bucket's keys from a Secret; and a RayJob entrypoint that a retry can
run again (it continues the study from the bucket). That the pods then really share nothing
but this bucket: tests/k8s/test_rayjob_on_pods.py."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from tests.k8s.render import (
    KUSTOMIZATION_IDS,
    KUSTOMIZATIONS,
    named,
    of_kind,
    ray_cluster_specs,
    ray_templates,
    render,
)

kustomizations = pytest.mark.parametrize("kdir", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
STORAGE = "lora-hpo-storage"


@kustomizations
def test_every_ray_pod_reads_the_one_bucket_the_storage_configmap_names(kdir: Path) -> None:
    docs = render(kdir)
    data = named(docs, "ConfigMap", STORAGE)["data"]
    root = data["LORA_HPO_STORAGE"]
    assert root.startswith("s3://") and "AWS_ENDPOINT_URL" in data
    assert yaml.safe_dump_all(docs).count(root) == 1  # named in one place
    pods = 0
    for at, spec in ray_cluster_specs(docs):
        for group, template in ray_templates(spec):
            (container,) = template["spec"]["containers"]
            refs = [s["configMapRef"]["name"] for s in container.get("envFrom", [])]
            assert STORAGE in refs, f"{at} {group}"
            keys = {
                v["name"]: v["valueFrom"]["secretKeyRef"]
                for v in container.get("env", [])
                if "secretKeyRef" in v.get("valueFrom", {})
            }
            for name, key in (
                ("AWS_ACCESS_KEY_ID", "access-key-id"),
                ("AWS_SECRET_ACCESS_KEY", "secret-access-key"),
            ):
                assert keys[name] | {"optional": True} == {
                    "name": STORAGE,
                    "key": key,
                    "optional": True,
                }, f"{at} {group} {name}"
            pods += 1
    assert pods >= 4  # the RayCluster's and the RayJob's head and workers


@kustomizations
def test_the_rayjob_entrypoint_continues_its_study_on_a_retry(kdir: Path) -> None:
    for job in of_kind(render(kdir), "RayJob"):
        entrypoint = job["spec"]["entrypoint"]
        argv = shlex.split(entrypoint)
        assert argv[:2] == ["lora-hpo", "run"] and "--resume-if-exists" in argv
        # the storage comes from LORA_HPO_STORAGE on the head; KubeRay pastes the entrypoint
        # into the submitter pod's shell, where a $VARIABLE would expand to nothing
        assert "--storage-path" not in argv and "$" not in entrypoint
        assert job["spec"]["backoffLimit"] >= 1
