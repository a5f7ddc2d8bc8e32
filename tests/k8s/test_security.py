"""The rendered manifests hold no secret, run every container as non-root with limits, serve
MLflow with basic auth, apply the tracking phase on its own, and fence Ray in with a
NetworkPolicy."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.k8s.render import (
    BASE,
    K8S,
    KUSTOMIZATION_IDS,
    KUSTOMIZATIONS,
    containers,
    env_vars,
    load_docs,
    named,
    of_kind,
    render,
)
from tests.k8s.schemas import RAY_KINDS

kustomizations = pytest.mark.parametrize("kdir", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
# Env var names that must come from a Secret (the _URI ones hold database passwords).
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|KEY|CREDENTIAL|BACKEND_STORE_URI|DATABASE_URI")


@kustomizations
def test_no_secret_value_is_written_in_a_manifest(kdir: Path) -> None:
    docs = render(kdir)
    assert not of_kind(docs, "Secret")
    secret_like = [(w, v) for w, v in env_vars(docs) if SECRET_NAME.search(v["name"])]
    assert secret_like
    assert [w for w, v in secret_like if "secretKeyRef" not in v.get("valueFrom", {})] == []
    maps = {cm["metadata"]["name"] for cm in of_kind(docs, "ConfigMap")}
    for where, c, _ in containers(docs):
        sources = c.get("envFrom", [])
        assert all(set(src) <= {"secretRef", "configMapRef", "prefix"} for src in sources), where
        # a ConfigMap's keys become variables: it must be one of ours, checked just below
        assert {s["configMapRef"]["name"] for s in sources if "configMapRef" in s} <= maps, where
    for cm in of_kind(docs, "ConfigMap"):
        assert not [k for k in cm.get("data", {}) if SECRET_NAME.search(k.upper())], cm


def test_every_secret_reference_is_in_the_example_and_the_readme() -> None:
    refs = {
        (v["valueFrom"]["secretKeyRef"]["name"], v["valueFrom"]["secretKeyRef"]["key"])
        for kdir in KUSTOMIZATIONS
        for _, v in env_vars(render(kdir))
        if "secretKeyRef" in v.get("valueFrom", {})
    }
    examples = load_docs(K8S / "secrets.example.yaml")
    documented = {(s["metadata"]["name"], k) for s in examples for k in s["stringData"]}
    assert refs == documented
    assert all("CHANGE_ME" in v for s in examples for v in s["stringData"].values())
    assert all("data" not in s for s in examples)
    readme = (K8S / "README.md").read_text()
    assert [name for name, _ in refs if f"secret generic {name} " not in readme] == []


@kustomizations
def test_every_container_runs_as_non_root_with_cpu_and_memory_limits(kdir: Path) -> None:
    bad = []
    for where, c, pod_ctx in containers(render(kdir)):
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
    docs = render(BASE)
    (uri,) = {v["value"] for _, v in env_vars(docs) if v["name"] == "MLFLOW_TRACKING_URI"}
    url = urlsplit(uri)
    service = named(docs, "Service", url.hostname or "")
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
    assert f"{url.hostname}.{deploy['metadata']['namespace']}.svc:{url.port}" in hosts
    env = {v["name"] for v in c["env"]}
    assert {"MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_CONFIG_PATH", "MLFLOW_S3_ENDPOINT_URL"} <= env
    assert {"MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"} <= env
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/health"


@kustomizations
def test_the_tracking_phase_applies_on_its_own(kdir: Path) -> None:
    """README step 4 applies `-l app.kubernetes.io/component=tracking` first."""
    docs = render(kdir)
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


@kustomizations
def test_every_rendered_document_is_namespaced_and_labelled_part_of_lora_hpo(kdir: Path) -> None:
    for d in render(kdir):
        assert d["metadata"]["namespace"] == "lora-hpo", d["metadata"]["name"]
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "lora-hpo"


def test_ray_ports_are_reachable_only_from_this_namespace_and_the_operator() -> None:
    docs = render(BASE)
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
