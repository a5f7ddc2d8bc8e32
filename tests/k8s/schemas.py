"""Schema validation of rendered documents, strict enough that a misspelt field fails.

Core kinds: kubernetes-validate in strict mode (unknown fields are errors). RayCluster and
RayJob: jsonschema against the KubeRay 1.7.0 CRDs from the repository's
``../shared/kuberay-crds/``, with ``additionalProperties: false`` added to every object schema
that lists its properties and does not preserve unknown fields.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO
from tests.k8s.render import Doc, where

CRD_DIR = REPO.parent / "shared" / "kuberay-crds"
CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml"}
RAY_KINDS = set(CRD_FILES)
K8S_VERSION = kubernetes_validate.latest_version()


def close(schema: Any) -> None:
    """Add additionalProperties: false wherever an object lists its properties."""
    if isinstance(schema, list):
        for item in schema:
            close(item)
        return
    if not isinstance(schema, dict):
        return
    open_ = schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and not open_ and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    for key in ("properties", "patternProperties"):
        for sub in schema.get(key, {}).values():
            close(sub)
    for key in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "not"):
        close(schema.get(key))


@functools.cache
def crd_validator(kind: str) -> jsonschema.Draft202012Validator:
    path = CRD_DIR / CRD_FILES[kind]
    if not path.is_file():
        pytest.fail(f"KubeRay CRD {path} is missing: the tests read the CRDs from ../shared/")
    with path.open() as f:
        crd = yaml.load(f, Loader=yaml.CSafeLoader)
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = v1["schema"]["openAPIV3Schema"]
    close(schema)
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


def errors(doc: Doc) -> list[str]:
    """Schema errors of one rendered document, whatever its kind."""
    return crd_errors(doc) if doc["kind"] in RAY_KINDS else k8s_errors(doc)


def invalid(docs: list[Doc]) -> dict[str, list[str]]:
    """{kind/name: errors} for the documents that fail validation."""
    found = {where(d): errors(d) for d in docs}
    return {k: v for k, v in found.items() if v}
