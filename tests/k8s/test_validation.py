"""Every kustomization in k8s/ renders with real kustomize, and what it renders validates
strictly: core kinds with kubernetes-validate, Ray kinds against the closed KubeRay CRDs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.render import (
    BASE,
    GPU,
    K8S,
    KUSTOMIZATION_IDS,
    KUSTOMIZATIONS,
    RenderError,
    kubectl,
    kustomize,
    load_docs,
    of_kind,
    ray_cluster_specs,
    ray_templates,
    render,
    where,
)
from tests.k8s.schemas import CRD_DIR, CRD_FILES, RAY_KINDS, crd_errors, crd_validator, invalid

kustomizations = pytest.mark.parametrize("kdir", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)


def test_kubectl_with_kustomize_is_installed() -> None:
    assert Path(kubectl()).is_file()
    assert {BASE, GPU} <= set(KUSTOMIZATIONS)


def test_kuberay_crds_are_available() -> None:
    missing = [n for n in CRD_FILES.values() if not (CRD_DIR / n).is_file()]
    assert not missing, f"{missing} not in {CRD_DIR} (the repository's ../shared/kuberay-crds/)"


YAML_FILES = sorted(p for p in K8S.rglob("*") if p.suffix in {".yaml", ".yml"})


@pytest.mark.parametrize("path", YAML_FILES, ids=[str(p.relative_to(K8S)) for p in YAML_FILES])
def test_yaml_file_parses(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path} holds no document"
    assert all(isinstance(d, dict | list) for d in docs)


def test_the_base_renders_every_manifest_in_it_and_no_secret() -> None:
    rendered = {where(d) for d in render(BASE)}
    sources = [p for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml"]
    manifests = [d for p in sources for d in load_docs(p) if "kind" in d and "apiVersion" in d]
    assert manifests
    assert {where(d) for d in manifests} <= rendered
    examples = load_docs(K8S / "secrets.example.yaml")
    for kdir in KUSTOMIZATIONS:
        assert not {where(s) for s in examples} & {where(d) for d in render(kdir)}, kdir


def _named_by(kdir: Path) -> set[Path]:
    """The files a kustomization names (resources, patches, generator files), not rendered."""
    (kust,) = load_docs(kdir / "kustomization.yaml")
    names = list(kust.get("resources", [])) + [p["path"] for p in kust.get("patches", [])]
    names += [f.split("=")[-1] for g in kust.get("configMapGenerator", []) for f in g["files"]]
    return {(kdir / n).resolve() for n in names}


def test_every_yaml_file_but_the_secrets_example_is_part_of_a_kustomization() -> None:
    named_files = set().union(*(_named_by(k) for k in KUSTOMIZATIONS))
    stray = [
        p.relative_to(K8S)
        for p in YAML_FILES
        if p.name != "kustomization.yaml" and p.resolve() not in named_files
    ]
    assert stray == [Path("secrets.example.yaml")]


@kustomizations
def test_core_kinds_validate_strictly(kdir: Path) -> None:
    docs = [d for d in render(kdir) if d["kind"] not in RAY_KINDS]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "StatefulSet", "Service", "NetworkPolicy", "ConfigMap"} <= kinds
    assert invalid(docs) == {}


@kustomizations
def test_ray_resources_validate_against_the_kuberay_crds(kdir: Path) -> None:
    docs = [d for d in render(kdir) if d["kind"] in RAY_KINDS]
    assert sorted(d["kind"] for d in docs) == ["RayCluster", "RayJob"]
    assert invalid(docs) == {}


@kustomizations
def test_ray_pod_templates_validate_as_core_pod_templates(kdir: Path) -> None:
    docs = render(kdir)
    templates = [(f"{w} {g}", t) for w, s in ray_cluster_specs(docs) for g, t in ray_templates(s)]
    templates += [
        (f"{where(d)} submitter", d["spec"]["submitterPodTemplate"])
        for d in of_kind(docs, "RayJob")
    ]
    wrapped = [
        {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": at}, "template": t}
        for at, t in templates
    ]
    assert invalid(wrapped) == {}


TYPOS = [
    ("RayCluster", ["spec", "headGroupSpec"], "rayStartParams", "rayStartParam"),
    (
        "RayCluster",
        ["spec", "headGroupSpec", "template", "spec", "containers", 0],
        "imagePullPolicy",
        "imagePulPolicy",
    ),
    ("RayJob", ["spec"], "shutdownAfterJobFinishes", "shutdownAfterJobFinish"),
]


@pytest.mark.parametrize(("kind", "path", "field", "typo"), TYPOS, ids=[t[3] for t in TYPOS])
def test_a_misspelt_field_fails_validation_naming_it(
    kind: str, path: list[Any], field: str, typo: str
) -> None:
    (doc,) = of_kind(render(BASE), kind)
    assert not crd_errors(doc)
    node = doc
    for part in path:
        node = node[part]
    node[typo] = node.pop(field)
    errors = list(crd_validator(kind).iter_errors(doc))
    assert [list(e.absolute_path) for e in errors] == [path]
    assert f"'{typo}' was unexpected" in errors[0].message


# (file under k8s/, text in it, the text misspelt, kustomization to render, document it breaks)
SOURCE_TYPOS = [
    ("base/raycluster.yaml", "enableInTreeAutoscaling:", "enableInTreeAutoscalling:", "base"),
    ("base/mlflow.yaml", "readinessProbe:", "readinessProb:", "base"),
    ("base/postgres.yaml", "serviceName:", "servicename:", "overlays/gpu"),
    ("overlays/gpu/rayjob-gpu.yaml", "operator: Exists", "operater: Exists", "overlays/gpu"),
]
SOURCE_TYPO_DOCS = [
    "RayCluster/lora-hpo",
    "Deployment/lora-hpo-mlflow",
    "StatefulSet/lora-hpo-postgres",
    "RayJob/bbc-minilm",
]


@pytest.mark.parametrize(
    ("source", "field", "typo", "kdir", "broken"),
    [(*t, d) for t, d in zip(SOURCE_TYPOS, SOURCE_TYPO_DOCS, strict=True)],
    ids=[t[2].rstrip(":") for t in SOURCE_TYPOS],
)
def test_a_misspelt_field_in_a_kustomization_fails_validation_naming_it(
    tmp_path: Path, source: str, field: str, typo: str, kdir: str, broken: str
) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    path = copy / source
    text = path.read_text()
    assert text.count(field) == 1, f"{source}: {field!r} must occur once to misspell it"
    path.write_text(text.replace(field, typo))
    errors = invalid(kustomize(copy / kdir))
    assert list(errors) == [broken]
    name = typo.split(":")[0]
    assert [e for e in errors[broken] if f"'{name}' was unexpected" in e] == errors[broken]


def test_a_misspelt_kustomization_field_fails_the_render_naming_it(tmp_path: Path) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    kust = copy / "overlays" / "gpu" / "kustomization.yaml"
    kust.write_text(kust.read_text().replace("\npatches:", "\npatchez:"))
    with pytest.raises(RenderError, match="patchez"):
        kustomize(copy / "overlays" / "gpu")
