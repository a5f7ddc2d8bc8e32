"""The RayJob that ``k8s/`` ships, as pods of the two-disk harness (``tests/pods.py``).

Everything comes from what ``kubectl kustomize k8s/base`` renders: the entrypoint, the head's
and the workers' ``rayStartParams`` and environment (``env`` and ``envFrom``, with each
``secretKeyRef`` and ``configMapKeyRef`` resolved), the submitter's environment, and the
ConfigMap mounted at ``/specs``. The Secrets are ``k8s/secrets.example.yaml`` with test values;
the service names in the environment (MLflow's, the S3 endpoint's) resolve to the harness's
servers, which listen at the ports the manifests name. To that, the harness adds only what
KubeRay adds to a Ray container (token auth, ``RAY_ADDRESS``) and what a container image
gives (``PATH``, ``HOME``).

The study a test runs is its own (the ConfigMap's file, replaced as a user would: "for
another study, edit study.yaml"), since the shipped study trains MiniLM for 32 x 200 steps.
"""

from __future__ import annotations

import posixpath
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.conftest import tiny_study
from tests.k8s.render import BASE, K8S, Doc, load_docs, named, of_kind, render
from tests.pods import DASHBOARD, S3_KEYS, Harness, Pod


def example_secrets(token: str) -> dict[tuple[str, str], str]:
    """(Secret, key) -> value: the example Secrets, with the S3 server's keys and the Ray
    token of the harness."""
    values = {
        ("lora-hpo-storage", "access-key-id"): S3_KEYS["AWS_ACCESS_KEY_ID"],
        ("lora-hpo-storage", "secret-access-key"): S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        ("lora-hpo-ray-auth", "auth_token"): token,
    }
    out = {}
    for doc in load_docs(K8S / "secrets.example.yaml"):
        for key in doc["stringData"]:
            name = doc["metadata"]["name"]
            out[(name, key)] = values.get((name, key), f"test-{name}-{key}")
    return out


def container_env(
    container: Doc, docs: list[Doc], secret: dict[tuple[str, str], str]
) -> dict[str, str]:
    """A container's environment as the kubelet would set it."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = named(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {})
            env.update({source.get("prefix", "") + k: str(v) for k, v in data.items()})
        else:
            name = source["secretRef"]["name"]
            env.update(
                {source.get("prefix", "") + k: v for (n, k), v in secret.items() if n == name}
            )
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var["valueFrom"]
        if "secretKeyRef" in ref:
            key = (ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
            value = secret.get(key)
        else:
            cm = named(docs, "ConfigMap", ref["configMapKeyRef"]["name"])
            value = cm.get("data", {}).get(ref["configMapKeyRef"]["key"])
        if value is not None:
            env[var["name"]] = str(value)
    return env


def service_hosts(env: dict[str, str]) -> set[str]:
    """The host names of the URLs in an environment (the Services the pods talk to)."""
    hosts = {urlsplit(v).hostname for v in env.values() if v.startswith(("http://", "https://"))}
    return {h for h in hosts if h and h not in ("localhost", "127.0.0.1")}


@dataclass
class ShippedJob:
    """The shipped RayJob on the harness: start its pods, submit its entrypoint."""

    harness: Harness
    entrypoint: str
    head_env: dict[str, str]
    worker_env: dict[str, str]
    submitter_env: dict[str, str]
    head_params: dict[str, str]
    worker_params: dict[str, str]
    specs: Path  # the host folder mounted at /specs on the head (the study ConfigMap)
    storage: str  # LORA_HPO_STORAGE, as the ConfigMap names it
    submissions: list[str] = field(default_factory=list)

    def write_study(self, name: str, **overrides: Any) -> str:
        """Put a tiny study over the harness's image model in the ConfigMap; its name."""
        image = self.harness.image
        data = tiny_study(image, **overrides) | {"name": name}
        (self.specs / "study.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        return name

    def up(self, workers: int) -> None:
        """A live head, and exactly ``workers`` worker pods (extra ones are stopped)."""
        h = self.harness
        if h.head() is None:
            h.kill_pods()
            h.start_head(self.head_env, self.head_params, self.specs)
        running = h.workers()
        for pod in running[workers:]:
            pod.stop()
        for _ in range(workers - len(running)):
            self.add_worker()

    def add_worker(self) -> Pod:
        """One more worker pod (standing in for the autoscaler)."""
        return self.harness.add_worker(self.worker_env, self.worker_params)

    def fresh_cluster(self) -> None:
        """Every pod killed at once, then a new head with no workers: what a RayJob retry
        gets after its head pod died."""
        self.harness.kill_pods()
        self.up(workers=0)

    def submit(self) -> Pod:
        """The submitter pod, running the command KubeRay gives it (a new submission id per
        attempt, as KubeRay gives each retry)."""
        job_id = f"bbc-minilm-{secrets.token_hex(4)}"
        self.submissions.append(job_id)
        address = DASHBOARD
        script = (
            f"if ! ray job status --address {address} {job_id} >/dev/null 2>&1 ; then"
            f" ray job submit --address {address} --submission-id {job_id} --"
            f" {self.entrypoint} ; fi"
        )
        return self.harness.pod("submitter", ["bash", "-ce", script], self.submitter_env)

    def head_pod(self) -> Pod:
        pod = self.harness.head()
        assert pod is not None, "the Ray head pod is not running"
        return pod


def mlflow_server_args() -> list[str]:
    """The ``--allowed-hosts`` flag the shipped MLflow Deployment runs with: the Host headers
    of in-cluster clients (``lora-hpo-mlflow:5000``) pass the server's security check."""
    deployment = named(render(BASE), "Deployment", "lora-hpo-mlflow")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return [a for a in args if a.startswith("--allowed-hosts=")]


def ray_params(group: Doc) -> dict[str, str]:
    """``ray start`` flags of a group: its rayStartParams, and num-cpus from the container's
    CPU limit where they name none (as KubeRay sets it)."""
    params = {k: str(v) for k, v in group.get("rayStartParams", {}).items()}
    limits = group["template"]["spec"]["containers"][0].get("resources", {}).get("limits", {})
    if "num-cpus" not in params and "cpu" in limits:
        params["num-cpus"] = str(limits["cpu"])
    return params


def shipped_job(harness: Harness) -> ShippedJob:
    """The rendered RayJob of ``k8s/base`` on ``harness`` (no pod started yet)."""
    docs = render(BASE)
    (job,) = of_kind(docs, "RayJob")
    spec, cluster = job["spec"], job["spec"]["rayClusterSpec"]
    secret = example_secrets(harness.token)
    head_group, (worker_group,) = cluster["headGroupSpec"], cluster["workerGroupSpecs"]
    head = container_env(head_group["template"]["spec"]["containers"][0], docs, secret)
    worker = container_env(worker_group["template"]["spec"]["containers"][0], docs, secret)
    submitter_container = spec["submitterPodTemplate"]["spec"]["containers"][0]
    submitter = container_env(submitter_container, docs, secret)
    harness.add_hosts(service_hosts(head) | service_hosts(worker))
    base = harness.base_env()
    (study_path,) = [a for a in shlex.split(spec["entrypoint"]) if a.endswith(".yaml")]
    specs = harness.image / "specs"
    specs.mkdir()
    assert posixpath.dirname(study_path) == "/specs", spec["entrypoint"]
    return ShippedJob(
        harness=harness,
        entrypoint=spec["entrypoint"],
        head_env={**base, **head, **harness.ray_env()},
        worker_env={**base, **worker, **harness.ray_env()},
        submitter_env={**base, **submitter},
        head_params=ray_params(head_group),
        worker_params=ray_params(worker_group),
        specs=specs,
        storage=named(docs, "ConfigMap", "lora-hpo-storage")["data"]["LORA_HPO_STORAGE"],
    )
