"""What a submitted study carries, and its job-side decoding. The spec is checked on the
submitting machine, then travels inside the job itself (base64 YAML in one env var), so no
``working_dir`` upload is needed: that directory can vanish under the driver when several
nodes share a host. The cluster needs lora-hpo installed; the job runs
``python -m lora_hpo.cli.job``.

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
from urllib.parse import urlsplit

from lora_hpo.spec.env import WORKER_ENV
from lora_hpo.spec.errors import UsageError

SPEC_ENV = "LORA_HPO_SPEC_B64"  # the resolved spec, read by lora_hpo.cli.job on the cluster
PASSED_ENV = ("MLFLOW_TRACKING_URI",)  # the only local env names ever put in runtime_env
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH")
JOB_MODULE = "lora_hpo.cli.job"


def looks_secret(name: str) -> bool:
    """True for env names that may hold a credential (HF_TOKEN, AWS_SECRET_ACCESS_KEY, ...)."""
    upper = name.upper()
    return upper.startswith("AWS_") or any(word in upper for word in SECRET_WORDS)


def tracking_uri(given: str | None) -> str | None:
    """--tracking-uri, else the local MLFLOW_TRACKING_URI unless it names this machine only
    (loopback or a local file): the cluster then keeps its own. Never a URI with a password."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return None
    parts = urlsplit(uri)
    if parts.password:
        raise UsageError(
            "--tracking-uri: holds a password; give the cluster MLFLOW_TRACKING_USERNAME and"
            " MLFLOW_TRACKING_PASSWORD from a Kubernetes Secret instead"
        )
    local = parts.scheme in ("", "file", "sqlite") or parts.hostname in (
        "localhost",
        "127.0.0.1",
        "::1",
    )
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
    if tracking:
        env["MLFLOW_TRACKING_URI"] = tracking
    allowed = {SPEC_ENV, *WORKER_ENV}
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
