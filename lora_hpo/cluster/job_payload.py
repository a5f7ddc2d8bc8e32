"""What a submitted study carries, and its job-side decoding. The spec is checked on the
submitting machine, then travels inside the job itself (base64 YAML in one env var), so no
``working_dir`` upload is needed: that directory can vanish under the driver when several
nodes share a host. The cluster needs lora-hpo installed; the job runs
``python -m lora_hpo.cli.job_entry``.

Only the names in ``PASSED_ENV`` reach the job's runtime_env, which the dashboard shows to
anyone who can open it; secrets reach the cluster from its own pod spec (a Kubernetes Secret).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import shlex
import sys
from typing import Any
from urllib.parse import urlsplit

from lora_hpo.search.ray_runtime import WORKER_ENV
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.uri_credentials import SECRET_WORDS, credential_in

SPEC_ENV = "LORA_HPO_SPEC_B64"  # the resolved spec, read by lora_hpo.cli.job_entry on the cluster
PASSED_ENV = ("MLFLOW_TRACKING_URI",)  # the only local env names ever put in runtime_env
JOB_MODULE = "lora_hpo.cli.job_entry"
# Ray's job supervisor reads it from the job's runtime_env: how long `lora-hpo stop` (SIGTERM)
# waits for the driver before SIGKILL. Its default, 3 s, cuts off the graceful stop (Tune's
# state saved, the tracker drained: search.driver_signals), which takes a few seconds.
STOP_WAIT = {"RAY_JOB_STOP_WAIT_TIME_S": "60"}
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
SHARED_ADVICE = (
    "give an s3:// or gs:// URI (with the bucket's credentials in every pod), or an absolute"
    " path on a mount every node shares (NFS)"
)


def looks_secret(name: str) -> bool:
    """True for env names that may hold a credential (HF_TOKEN, AWS_SECRET_ACCESS_KEY, ...)."""
    upper = name.upper()
    return upper.startswith("AWS_") or any(word in upper for word in SECRET_WORDS)


def refuse_credential(field: str, uri: str, instead: str) -> None:
    """UsageError when ``uri`` (the value of ``field``) carries a credential: what a job holds
    in its runtime_env and entrypoint is shown in the Ray dashboard."""
    found = credential_in(uri)
    if found:
        raise UsageError(
            f"{field}: the URI holds a credential ({found}); a submitted job's runtime_env and"
            f" entrypoint are shown in the Ray dashboard, so lora-hpo never puts one there."
            f" {instead}"
        )


def uri_fields(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted field, value) of every URI (``scheme://...``) in a spec's plain data."""
    if isinstance(data, dict):
        return [f for k, v in data.items() for f in uri_fields(v, f"{prefix}{k}.")]
    if isinstance(data, list):
        return [f for i, v in enumerate(data) for f in uri_fields(v, f"{prefix[:-1]}[{i}].")]
    return [(prefix[:-1], data)] if isinstance(data, str) and "://" in data else []


def check_spec_uris(file: str, data: dict[str, Any]) -> None:
    """Refuse a spec (as it would travel in the job) that holds a credential in any URI."""
    for field, uri in uri_fields(data):
        refuse_credential(
            f"{file}: {field}",
            uri,
            "Give the cluster the credential from a Kubernetes Secret (MLFLOW_TRACKING_USERNAME"
            " and MLFLOW_TRACKING_PASSWORD, AWS_*, HF_TOKEN) instead.",
        )


def shared_storage_path(given: str | None) -> str:
    """The ``--storage-path`` of a submitted study, which every node of the cluster must read:
    a URI (s3://, gs://, ...) or an absolute path (a shared mount, which the job checks on
    every trial node when it starts). None and relative paths are refused."""
    if not given:
        raise UsageError(
            "--storage-path: a study submitted to a cluster keeps its results, checkpoints and"
            f" state where every node reads them, and none was given: {SHARED_ADVICE}"
        )
    if "://" in given:
        refuse_credential("--storage-path", given, "Give the pods the bucket's credentials.")
        return given
    if not given.startswith("/"):
        raise UsageError(
            f"--storage-path: a relative path ({given!r}) would resolve on the node that runs"
            f" the job, where no other node reads it: {SHARED_ADVICE}"
        )
    return given


def tracking_uri(given: str | None) -> str | None:
    """--tracking-uri, else the local MLFLOW_TRACKING_URI unless it names this machine only
    (loopback or a local file): the cluster then keeps its own. Never a URI that holds a
    credential."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return None
    flag = "--tracking-uri" if given else "MLFLOW_TRACKING_URI"
    refuse_credential(
        flag,
        uri,
        "Give the cluster MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD from a"
        " Kubernetes Secret instead.",
    )
    parts = urlsplit(uri)
    local = parts.scheme in ("", "file", "sqlite") or parts.hostname in LOCAL_HOSTS
    if given is None and local:
        print(
            f"warning: MLFLOW_TRACKING_URI={uri!r} names this machine; not passed to the"
            " cluster (use --tracking-uri to pass it anyway)",
            file=sys.stderr,
        )
        return None
    return uri


def job_env(spec_yaml: str, tracking: str | None) -> dict[str, str]:
    """The runtime_env env_vars: the embedded spec, the settings trial workers need (a job
    ignores its driver's ``ray.init(runtime_env=...)``), and allow-listed, non-secret names."""
    env = {SPEC_ENV: base64.urlsafe_b64encode(spec_yaml.encode()).decode(), **WORKER_ENV}
    env |= STOP_WAIT
    if tracking:
        env["MLFLOW_TRACKING_URI"] = tracking
    allowed = {SPEC_ENV, *WORKER_ENV, *STOP_WAIT}
    leaked = [k for k in env if k not in allowed and (k not in PASSED_ENV or looks_secret(k))]
    if leaked:  # a programming error, never a user's: fail loudly
        raise RuntimeError(f"refusing to put {leaked} in a Ray runtime_env")
    return env


def entrypoint(python: str, storage_path: str | None, wait: str | None = None) -> str:
    """The job's shell command: the cluster's Python, named explicitly."""
    argv = [*shlex.split(python), "-m", JOB_MODULE]
    if storage_path:
        argv += ["--storage-path", storage_path]
    if wait:
        argv += ["--wait-for-resources", wait]
    return shlex.join(argv)


def submission_id(study: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", study).strip("-")[:40] or "study"
    return f"lora-hpo-{slug}-{secrets.token_hex(4)}"


def decode_spec(environ: dict[str, str] | None = None) -> str:
    """The spec YAML embedded in the job's environment; UsageError when absent or broken."""
    blob = (os.environ if environ is None else environ).get(SPEC_ENV, "")
    try:
        text = base64.urlsafe_b64decode(blob.encode()).decode() if blob else ""
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise UsageError(f"{SPEC_ENV}: not base64 YAML ({exc})") from None
    if not text:
        raise UsageError(f"{SPEC_ENV} is empty; submit studies with `lora-hpo submit`")
    return text
