"""The Kubernetes manifests in k8s/, checked offline.

Core kinds are validated with kubernetes-validate (strict: unknown fields fail); RayCluster and
RayJob with jsonschema against the KubeRay 1.7.0 CRDs from ``../shared/kuberay-crds/``, closed
with ``additionalProperties: false`` so that a misspelt field fails too. kustomize is not
available, so ``build`` below does the little of it that k8s/ uses (resources,
configMapGenerator, namespace, labels, JSON 6902 patches) and refuses anything else.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO

K8S = REPO / "k8s"
BASE = K8S / "base"
GPU = K8S / "overlays" / "gpu"
BUILDS = [BASE, GPU]
BUILD_IDS = ["base", "gpu"]
CRD_DIR = Path(__file__).resolve().parents[2] / "shared" / "kuberay-crds"
CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml"}
RAY_KINDS = set(CRD_FILES)
K8S_VERSION = kubernetes_validate.latest_version()
# Env var names that must come from a Secret (the _URI ones hold database passwords).
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|KEY|CREDENTIAL|BACKEND_STORE_URI|DATABASE_URI")
KUSTOMIZE_KEYS = {"apiVersion", "kind", "namespace", "labels", "resources"}
KUSTOMIZE_KEYS |= {"configMapGenerator", "generatorOptions", "patches"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

Doc = dict[str, Any]


def load_docs(path: Path) -> list[Any]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# --- a minimal kustomize ----------------------------------------------------------------------


def _config_maps(kust: Doc, kdir: Path) -> list[Doc]:
    assert kust.get("generatorOptions", {}).get("disableNameSuffixHash"), (
        f"{kdir}: hashed generator names are not rewritten inside Ray pod templates"
    )
    out = []
    for gen in kust.get("configMapGenerator", []):
        assert set(gen) <= {"name", "files"}, f"{kdir}: unsupported generator fields {gen}"
        data = {Path(f).name: (kdir / f).read_text() for f in gen["files"]}
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}})
        out[-1]["data"] = data
    return out


def _pointer(doc: Any, path: str) -> tuple[Any, Any]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last: Any = parts[-1]
    return node, int(last) if isinstance(node, list) and last != "-" else last


def apply_json6902(doc: Doc, ops: list[Doc]) -> None:
    for op in ops:
        parent, key = _pointer(doc, op["path"])
        if op["op"] == "test":
            assert parent[key] == op["value"], f"test failed at {op['path']}: {parent[key]!r}"
        elif op["op"] == "replace":
            assert key in (range(len(parent)) if isinstance(parent, list) else parent), op
            parent[key] = copy.deepcopy(op["value"])
        elif op["op"] == "add" and isinstance(parent, list):
            parent.insert(len(parent) if key == "-" else key, copy.deepcopy(op["value"]))
        elif op["op"] == "add":
            parent[key] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[key]
        else:
            raise AssertionError(f"unsupported JSON patch op {op['op']!r}")


def _targets(docs: list[Doc], target: Doc) -> list[Doc]:
    def hit(d: Doc) -> bool:
        group, _, version = d["apiVersion"].rpartition("/")
        want = (target.get("group", group), target.get("version", version), target["kind"])
        return (group, version, d["kind"]) == want and d["metadata"]["name"] == target["name"]

    return [d for d in docs if hit(d)]


@functools.cache
def _build(kdir: Path) -> tuple[Doc, ...]:
    kust = load_docs(kdir / "kustomization.yaml")[0]
    unknown = set(kust) - KUSTOMIZE_KEYS
    assert not unknown, f"{kdir}: this test cannot emulate {unknown}"
    docs: list[Doc] = []
    for res in kust.get("resources", []):
        path = (kdir / res).resolve()
        docs += copy.deepcopy(list(_build(path))) if path.is_dir() else load_docs(path)
    if "configMapGenerator" in kust:
        docs += _config_maps(kust, kdir)
    for patch in kust.get("patches", []):
        found = _targets(docs, patch["target"])
        assert len(found) == 1, f"{kdir}: patch {patch['path']} matches {len(found)} resources"
        apply_json6902(found[0], load_docs(kdir / patch["path"])[0])
    for d in docs:
        meta = d["metadata"]
        if "namespace" in kust:
            meta["namespace"] = kust["namespace"]
        for group in kust.get("labels", []):
            assert not group.get("includeSelectors")
            assert not group.get("includeTemplates")
            meta["labels"] = {**meta.get("labels", {}), **group["pairs"]}
    return tuple(docs)


def build(kdir: Path) -> list[Doc]:
    return copy.deepcopy(list(_build(kdir)))


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    (doc,) = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


# --- walking the pod specs ---------------------------------------------------------------------


def ray_cluster_specs(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    for d in docs:
        where = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] == "RayCluster":
            yield where, d["spec"]
        elif d["kind"] == "RayJob":
            yield where, d["spec"]["rayClusterSpec"]


def ray_templates(spec: Doc) -> Iterator[tuple[str, Doc]]:
    yield "head", spec["headGroupSpec"]["template"]
    for group in spec["workerGroupSpecs"]:
        yield group["groupName"], group["template"]


def pod_specs(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """Every PodSpec in the manifests, with where it is."""
    for d in docs:
        where = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] in {"Deployment", "StatefulSet", "Job"}:
            yield where, d["spec"]["template"]["spec"]
        if d["kind"] == "RayJob" and "submitterPodTemplate" in d["spec"]:
            yield f"{where} submitter", d["spec"]["submitterPodTemplate"]["spec"]
    for where, spec in ray_cluster_specs(docs):
        for group, template in ray_templates(spec):
            yield f"{where} {group}", template["spec"]


def containers(docs: list[Doc]) -> Iterator[tuple[str, Doc, Doc]]:
    """(where, container, pod-level securityContext) for every container and init container,
    plus KubeRay's autoscaler sidecar, which autoscalerOptions describes."""
    for where, pod in pod_specs(docs):
        for c in pod.get("initContainers", []) + pod["containers"]:
            yield f"{where} {c['name']}", c, pod.get("securityContext", {})
    for where, spec in ray_cluster_specs(docs):
        if spec.get("enableInTreeAutoscaling"):
            yield f"{where} autoscaler", spec.get("autoscalerOptions", {}), {}


def image_version(image: str) -> str:
    match = re.search(r":[^:/]*?(\d+\.\d+\.\d+)", image)
    assert match, f"no x.y.z version in the tag of {image}"
    return match.group(1)


# --- CRD schemas ------------------------------------------------------------------------------


def _close(schema: Any) -> None:
    """Add additionalProperties: false wherever an object lists its properties."""
    if isinstance(schema, list):
        for item in schema:
            _close(item)
        return
    if not isinstance(schema, dict):
        return
    open_ = schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and not open_ and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    for key in ("properties", "patternProperties"):
        for sub in schema.get(key, {}).values():
            _close(sub)
    for key in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "not"):
        _close(schema.get(key))


@functools.cache
def crd_validator(kind: str) -> jsonschema.Draft202012Validator:
    path = CRD_DIR / CRD_FILES[kind]
    if not path.is_file():
        pytest.fail(f"KubeRay CRD {path} is missing: the tests read the CRDs from ../shared/")
    with path.open() as f:
        crd = yaml.load(f, Loader=yaml.CSafeLoader)
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = v1["schema"]["openAPIV3Schema"]
    _close(schema)
    return jsonschema.Draft202012Validator(schema)


def crd_errors(doc: Doc) -> list[str]:
    errors = crd_validator(doc["kind"]).iter_errors(doc)
    return [f"{e.json_path}: {e.message}" for e in sorted(errors, key=lambda e: e.json_path)]


def k8s_errors(doc: Doc) -> list[str]:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'.'.join(map(str, e.path))}: {e.message}"]
    return []


# --- the tests --------------------------------------------------------------------------------


def test_kuberay_crds_are_available() -> None:
    missing = [n for n in CRD_FILES.values() if not (CRD_DIR / n).is_file()]
    assert not missing, f"{missing} not in {CRD_DIR} (the repository's ../shared/kuberay-crds/)"


YAML_FILES = sorted(p for p in K8S.rglob("*") if p.suffix in {".yaml", ".yml"})


@pytest.mark.parametrize("path", YAML_FILES, ids=[str(p.relative_to(K8S)) for p in YAML_FILES])
def test_yaml_file_parses(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path} holds no document"
    assert all(isinstance(d, dict | list) for d in docs)


def test_kustomizations_name_existing_files_and_every_base_manifest() -> None:
    named_files: set[Path] = set()
    for kust_path in K8S.rglob("kustomization.yaml"):
        kust, kdir = load_docs(kust_path)[0], kust_path.parent
        files = list(kust.get("resources", [])) + [p["path"] for p in kust.get("patches", [])]
        files += [f for g in kust.get("configMapGenerator", []) for f in g["files"]]
        for f in files:
            assert (kdir / f).exists(), f"{kust_path} names {f}, which does not exist"
            named_files.add((kdir / f).resolve())
    base_yaml = {p.resolve() for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert base_yaml <= named_files, f"not in base/kustomization.yaml: {base_yaml - named_files}"
    assert (K8S / "secrets.example.yaml").resolve() not in named_files


@pytest.mark.parametrize("kdir", BUILDS, ids=BUILD_IDS)
def test_core_kinds_validate_strictly(kdir: Path) -> None:
    docs = [d for d in build(kdir) if d["kind"] not in RAY_KINDS]
    assert {"Deployment", "StatefulSet", "Service", "NetworkPolicy", "ConfigMap"} <= {
        d["kind"] for d in docs
    }
    errors = {f"{d['kind']}/{d['metadata']['name']}": k8s_errors(d) for d in docs}
    assert not {k: v for k, v in errors.items() if v}


@pytest.mark.parametrize("kdir", BUILDS, ids=BUILD_IDS)
def test_ray_resources_validate_against_the_kuberay_crds(kdir: Path) -> None:
    docs = [d for d in build(kdir) if d["kind"] in RAY_KINDS]
    assert sorted(d["kind"] for d in docs) == ["RayCluster", "RayJob"]
    errors = {f"{d['kind']}/{d['metadata']['name']}": crd_errors(d) for d in docs}
    assert not {k: v for k, v in errors.items() if v}


@pytest.mark.parametrize("kdir", BUILDS, ids=BUILD_IDS)
def test_ray_pod_templates_validate_as_core_pod_templates(kdir: Path) -> None:
    docs = build(kdir)
    templates = [(f"{w} {g}", t) for w, s in ray_cluster_specs(docs) for g, t in ray_templates(s)]
    templates += [
        (f"{d['metadata']['name']} submitter", d["spec"]["submitterPodTemplate"])
        for d in of_kind(docs, "RayJob")
    ]
    errors = {}
    for where, template in templates:
        wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}}
        errors[where] = k8s_errors({**wrapped, "template": template})
    assert not {k: v for k, v in errors.items() if v}


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
    (doc,) = of_kind(build(BASE), kind)
    assert not crd_errors(doc)
    node = doc
    for part in path:
        node = node[part]
    node[typo] = node.pop(field)
    errors = list(crd_validator(kind).iter_errors(doc))
    assert [list(e.absolute_path) for e in errors] == [path]
    assert f"'{typo}' was unexpected" in errors[0].message


def test_the_gpu_overlay_gives_every_worker_a_gpu_and_the_heads_none() -> None:
    for kdir, gpus in ((BASE, False), (GPU, True)):
        for where, spec in ray_cluster_specs(build(kdir)):
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


@pytest.mark.parametrize("kdir", BUILDS, ids=BUILD_IDS)
def test_ray_versions_agree_with_the_installed_ray(kdir: Path) -> None:
    ray = importlib.metadata.version("ray")
    docs = build(kdir)
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


@pytest.mark.parametrize("kdir", BUILDS, ids=BUILD_IDS)
def test_ray_clusters_autoscale_use_token_auth_and_keep_ray_tmp_on_an_empty_dir(kdir: Path) -> None:
    for where, spec in ray_cluster_specs(build(kdir)):
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


@pytest.mark.parametrize("kdir", BUILDS, ids=BUILD_IDS)
def test_the_rayjob_cluster_is_the_raycluster_plus_the_study_mount(kdir: Path) -> None:
    specs = dict(ray_cluster_specs(build(kdir)))
    assert _without_study_mount(specs["RayJob/bbc-minilm"]) == specs["RayCluster/lora-hpo"]


def test_the_rayjob_runs_the_study_mounted_from_its_configmap() -> None:
    docs = build(BASE)
    (job,) = of_kind(docs, "RayJob")
    spec = job["spec"]
    assert spec["entrypoint"] == "lora-hpo run /specs/study.yaml"
    assert spec["shutdownAfterJobFinishes"] is True
    assert "clusterSelector" not in spec
    for key in ("ttlSecondsAfterFinished", "backoffLimit", "activeDeadlineSeconds"):
        assert isinstance(spec[key], int), key
    pod = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/specs"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    config_map = named(docs, "ConfigMap", volume["configMap"]["name"])
    assert "study.yaml" in config_map["data"]


def test_every_study_spec_the_manifests_name_loads() -> None:
    from lora_hpo.loader import load_spec  # the spec loader must accept what the RayJob runs

    specs = []
    for kust_path in K8S.rglob("kustomization.yaml"):
        for gen in load_docs(kust_path)[0].get("configMapGenerator", []):
            specs += [kust_path.parent / f for f in gen["files"] if f.endswith(".yaml")]
    assert specs
    for path in specs:
        load_spec(path)


def _env(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    for where, c, _ in containers(docs):
        for var in c.get("env", []):
            yield f"{where} {var['name']}", var


@pytest.mark.parametrize("kdir", BUILDS, ids=BUILD_IDS)
def test_no_secret_value_is_written_in_a_manifest(kdir: Path) -> None:
    docs = build(kdir)
    assert not of_kind(docs, "Secret")
    secret_like = [(w, v) for w, v in _env(docs) if SECRET_NAME.search(v["name"])]
    assert secret_like
    assert [w for w, v in secret_like if "secretKeyRef" not in v.get("valueFrom", {})] == []
    for where, c, _ in containers(docs):
        assert all(set(src) <= {"secretRef", "prefix"} for src in c.get("envFrom", [])), where
    for cm in of_kind(docs, "ConfigMap"):
        assert not [k for k in cm.get("data", {}) if SECRET_NAME.search(k.upper())], cm


def test_every_secret_reference_is_in_the_example_and_the_readme() -> None:
    refs = {
        (v["valueFrom"]["secretKeyRef"]["name"], v["valueFrom"]["secretKeyRef"]["key"])
        for kdir in BUILDS
        for _, v in _env(build(kdir))
        if "secretKeyRef" in v.get("valueFrom", {})
    }
    examples = load_docs(K8S / "secrets.example.yaml")
    documented = {(s["metadata"]["name"], k) for s in examples for k in s["stringData"]}
    assert refs == documented
    assert all("CHANGE_ME" in v for s in examples for v in s["stringData"].values())
    assert all("data" not in s for s in examples)
    readme = (K8S / "README.md").read_text()
    assert [name for name, _ in refs if f"secret generic {name} " not in readme] == []


@pytest.mark.parametrize("kdir", BUILDS, ids=BUILD_IDS)
def test_every_container_runs_as_non_root_with_cpu_and_memory_limits(kdir: Path) -> None:
    bad = []
    for where, c, pod_ctx in containers(build(kdir)):
        ctx = {**pod_ctx, **c.get("securityContext", {})}
        resources = c.get("resources", {})
        checks = {
            "runAsNonRoot": ctx.get("runAsNonRoot") is True,
            "runAsUser": ctx.get("runAsUser", 0) > 0,
            "allowPrivilegeEscalation": ctx.get("allowPrivilegeEscalation") is False,
            "drop ALL": "ALL" in ctx.get("capabilities", {}).get("drop", []),
            "requests": {"cpu", "memory"} <= set(resources.get("requests", {})),
            "limits": {"cpu", "memory"} <= set(resources.get("limits", {})),
        }
        bad += [f"{where}: {name}" for name, ok in checks.items() if not ok]
    assert bad == []


def test_mlflow_serves_basic_auth_with_health_probes_at_the_uri_ray_uses() -> None:
    docs = build(BASE)
    uris = {v["value"] for _, v in _env(docs) if v["name"] == "MLFLOW_TRACKING_URI"}
    (uri,) = uris
    url = urlsplit(uri)
    service = named(docs, "Service", url.hostname)
    assert url.port in [p["port"] for p in service["spec"]["ports"]]
    (deploy,) = of_kind(docs, "Deployment")
    assert deploy["spec"]["template"]["metadata"]["labels"].items() >= (
        service["spec"]["selector"].items()
    )
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    args = c["command"] + c["args"]
    assert c["command"] == ["mlflow", "server"]
    for flag in ("--app-name=basic-auth", "--host=0.0.0.0", "--workers=2"):
        assert flag in args
    assert "--artifacts-destination=s3://lora-hpo-artifacts" in args
    (hosts,) = [a.split("=", 1)[1].split(",") for a in args if a.startswith("--allowed-hosts=")]
    assert f"{url.hostname}:{url.port}" in hosts
    env = {v["name"] for v in c["env"]}
    assert {"MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_CONFIG_PATH", "MLFLOW_S3_ENDPOINT_URL"} <= env
    assert {"MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"} <= env
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/health"


def test_the_tracking_phase_applies_on_its_own() -> None:
    """README step 4 applies `-l app.kubernetes.io/component=tracking` first."""
    docs = build(BASE)
    tracking = {
        (d["kind"], d["metadata"]["name"])
        for d in docs
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "tracking"
    }
    for kind in ("Deployment", "StatefulSet"):
        for workload in of_kind(docs, kind):
            assert (kind, workload["metadata"]["name"]) in tracking
            pod = workload["spec"]["template"]["spec"]
            needs = {("ServiceAccount", pod["serviceAccountName"])}
            needs |= {
                ("ConfigMap", v["configMap"]["name"]) for v in pod["volumes"] if "configMap" in v
            }
            needs |= {
                ("ConfigMap", v["valueFrom"]["configMapKeyRef"]["name"])
                for c in pod["containers"]
                for v in c.get("env", [])
                if "configMapKeyRef" in v.get("valueFrom", {})
            }
            assert needs <= tracking
    assert not {k for k, _ in tracking} & RAY_KINDS


def test_ray_ports_are_reachable_only_from_this_namespace_and_the_operator() -> None:
    docs = build(BASE)
    (policy,) = [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels") == {"ray.io/is-ray-node": "yes"}
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    from_namespace: set[int] = set()
    for rule in policy["spec"]["ingress"]:
        ports = {p["port"] for p in rule.get("ports", [])} or {"all"}
        for peer in rule["from"]:
            if "namespaceSelector" in peer or "ipBlock" in peer:
                assert ports == {8265}, f"port(s) {ports} open to another namespace"
                labels = peer["podSelector"]["matchLabels"]
                assert labels == {"app.kubernetes.io/name": "kuberay-operator"}
            elif peer["podSelector"] == {}:
                from_namespace |= ports - {"all"}
    assert from_namespace == {6379, 8265, 10001}
