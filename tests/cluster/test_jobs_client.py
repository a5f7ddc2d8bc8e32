"""Ray clusters: a study spread over a real multi-node cluster, and ``lora-hpo submit`` through
the Jobs API of a real ``ray start`` head with token auth (plus the checks that need no Ray)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import torch  # noqa: F401  (before ray)
import yaml

from lora_hpo.cli.main import main
from lora_hpo.cluster import job_payload as payload
from lora_hpo.cluster import jobs_client as jobs
from lora_hpo.search.ray_runtime import WORKER_ENV
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_loader import parse_spec
from lora_hpo.spec.uri_credentials import credential_in
from tests.conftest import tiny_study
from tests.pods import DASHBOARD, MLFLOW

# --- no Ray needed ---------------------------------------------------------------------------


def test_secrets_never_reach_the_runtime_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD", "RAY_AUTH_TOKEN"):
        monkeypatch.setenv(name, "s3cr3t")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    env = payload.job_env("name: x\n", payload.tracking_uri(None))
    assert set(env) == {payload.SPEC_ENV, "MLFLOW_TRACKING_URI", *WORKER_ENV, *payload.STOP_WAIT}
    assert int(env["RAY_JOB_STOP_WAIT_TIME_S"]) >= 30  # lora-hpo stop: time to drain
    assert "s3cr3t" not in json.dumps(env)
    assert env["TUNE_FUNCTION_THREAD_TIMEOUT_S"] == WORKER_ENV["TUNE_FUNCTION_THREAD_TIMEOUT_S"]
    assert base64.urlsafe_b64decode(env[payload.SPEC_ENV]).decode() == "name: x\n"
    assert all(not payload.looks_secret(n) for n in payload.PASSED_ENV)
    for name in ("HF_TOKEN", "AWS_ACCESS_KEY_ID", "MLFLOW_TRACKING_PASSWORD", "API_KEY"):
        assert payload.looks_secret(name), name


def test_tracking_uri_rules(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://localhost:5000")  # a port-forward
    assert payload.tracking_uri(None) is None  # the cluster keeps its own
    assert "names this machine" in capsys.readouterr().err
    assert payload.tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"  # explicit
    for uri in (
        "http://user:pw@mlflow:5000",
        "http://user@mlflow:5000",
        "https://mlflow:5000/?token=abc",
        "https://mlflow:5000/?X-Amz-Signature=abc",
    ):
        with pytest.raises(UsageError, match="--tracking-uri: the URI holds a credential"):
            payload.tracking_uri(uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://admin:pw@mlflow.example")
    with pytest.raises(UsageError, match="MLFLOW_TRACKING_URI: the URI holds a credential"):
        payload.tracking_uri(None)
    assert credential_in("s3://bucket/studies?region=us-east-1") == ""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--storage-path: a study submitted to a cluster keeps its results"),
        (["--storage-path", "results"], "--storage-path: a relative path ('results')"),
        (["--storage-path", "s3://k:s@bucket/x"], "--storage-path: the URI holds a credential"),
        (
            ["--storage-path", "s3://b/x", "--set", "tracking.tracking_uri=http://u:p@mlflow:5000"],
            "tracking.tracking_uri: must hold no credential, as spec files get committed",
        ),
        (
            ["--storage-path", "/mnt/nfs", "--set", "tracking.tracking_uri=https://m/?api_key=x"],
            "tracking.tracking_uri: must hold no credential, as spec files get committed and"
            " shared, but it holds the query parameter 'api_key'",
        ),
    ],
    ids=["no storage", "relative", "storage creds", "tracking creds", "token parameter"],
)
def test_submit_refuses_storage_nodes_cannot_share_and_credentials_in_uris(
    extra: list[str], message: str, tiny_assets: Path, tmp_path: Path, capsys: Any
) -> None:
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_study(tiny_assets)))
    rc = main(["submit", str(spec_file), "--address", "http://127.0.0.1:1", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "127.0.0.1:1" not in err, err  # before the cluster
    assert "Traceback" not in err


def test_a_token_over_plain_http_to_another_host_gets_one_warning(capsys: Any) -> None:
    token = jobs.Token("t0k3n", "RAY_AUTH_TOKEN")
    jobs.warn_plain_http("http://ray-head.example:8265", token)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "plain http://" in err and "t0k3n" not in err
    for quiet in ("https://ray-head.example:8265", "http://127.0.0.1:8265", "http://localhost:1"):
        jobs.warn_plain_http(quiet, token)
    jobs.warn_plain_http("http://ray-head.example:8265", None)
    assert capsys.readouterr().err == ""


def test_entrypoint_names_the_python_and_quotes() -> None:
    cmd = payload.entrypoint('"/opt/my venv/bin/python"', "/mnt/shared results")
    assert cmd == (
        "'/opt/my venv/bin/python' -m lora_hpo.cli.job_entry --storage-path '/mnt/shared results'"
    )
    assert payload.entrypoint("uv run python", None) == "uv run python -m lora_hpo.cli.job_entry"
    assert payload.submission_id("my study/1").startswith("lora-hpo-my-study-1-")


def test_token_lookup_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home\n")
    assert jobs.auth_token() is None  # the default file needs RAY_AUTH_MODE=token, as in Ray
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    token = jobs.auth_token()
    assert token is not None and token.value == "from-home"
    assert token.source.startswith("~/.ray/auth_token")
    (tmp_path / "t").write_text("from-path")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "t"))
    assert jobs.auth_token().value == "from-path"  # type: ignore[union-attr]
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert jobs.auth_token().value == "from-env"  # type: ignore[union-attr]
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    with pytest.raises(UsageError, match="RAY_AUTH_MODE=token: no Ray auth token"):
        jobs.auth_token()


def test_submit_checks_the_spec_before_the_cluster(
    tiny_assets: Path, tmp_path: Path, capsys: Any
) -> None:
    spec_file = tmp_path / "bad.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_study(tiny_assets, **{"search.num_samples": 0})))
    rc = main(["submit", str(spec_file), "--address", "http://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert rc == 2 and "search.num_samples: must be >= 1" in err and "127.0.0.1:1" not in err


def test_job_entry_point_needs_the_embedded_spec(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from lora_hpo.cli.job_entry import main as entry

    monkeypatch.delenv(payload.SPEC_ENV, raising=False)
    assert entry([]) == 2 and "submit studies with `lora-hpo submit`" in capsys.readouterr().err
    bad = yaml.safe_dump({"name": "x", "task": "nope"})
    monkeypatch.setenv(payload.SPEC_ENV, base64.urlsafe_b64encode(bad.encode()).decode())
    assert entry([]) == 2 and "task" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "x", "--address", "http://127.0.0.1:1"], "cannot reach the Ray dashboard"),
        (["logs", "x", "--address", "127.0.0.1:8265"], "must be the dashboard URL"),
        (["stop", "x"], "--address: not given"),
    ],
)
def test_bad_addresses_exit_2(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# --- a multi-node cluster in one process ----------------------------------------------------


@pytest.mark.slow
def test_trials_spread_over_nodes_and_checkpoint_to_shared_storage(
    tiny_assets: Path, tmp_path: Path
) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from lora_hpo.search.study_runner import run_study

    nodes = 3
    ray_cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for _ in range(nodes - 1):
            ray_cluster.add_node(num_cpus=1)
        ray_cluster.wait_for_nodes()
        ray.init(address=ray_cluster.address, logging_level="ERROR")
        node_ids = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        head = ray_cluster.head_node.node_id
        assert len(node_ids) == nodes
        overrides = {"num_samples": nodes, "max_concurrent": nodes, "scheduler": {"type": "none"}}
        data = tiny_study(tiny_assets, **{f"search.{k}": v for k, v in overrides.items()})
        data["training"]["max_steps"] = 10
        shared = tmp_path / "shared"
        result = run_study(parse_spec(data), storage_path=str(shared), tracking=False)
    finally:
        ray.shutdown()
        ray_cluster.shutdown()
    ran_on = {}
    for trial_dir in Path(result.path).glob("tune_trainable_*"):
        rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
        ran_on[rows[0]["trial_id"]] = {r["node_id"] for r in rows}
        assert sorted(trial_dir.glob("checkpoint_*")), f"no checkpoint under {trial_dir}"
    role = {n: "head" if n == head else "worker" for n in node_ids}
    print({t: [f"{role[n]} {n[:12]}" for n in ns] for t, ns in ran_on.items()}, file=sys.__stderr__)
    assert len(ran_on) == nodes
    used = set().union(*ran_on.values())
    assert used <= node_ids and len(used) >= 2, used
    for t in result.trials:
        assert t.status == "completed" and t.checkpoint, t
        assert Path(t.checkpoint).resolve().is_relative_to(shared.resolve())


# --- the Jobs API of the shipped cluster: two pods, token auth (tests/pods.py) ----------------


def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def as_client(shipped: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """This process as a client of the harness's head: token from RAY_AUTH_TOKEN_PATH, nothing
    else (its calls go ``inside()`` the pods' network)."""
    shipped.up(workers=0)
    token_file = tmp_path / "auth_token"
    token_file.write_text(shipped.harness.token)
    for name in ("RAY_AUTH_TOKEN", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    return shipped


@pytest.mark.slow
def test_requests_without_the_token_are_refused(
    as_client: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    harness = as_client.harness
    with harness.inside():
        assert _get(f"{DASHBOARD}/api/jobs/") == 401
        assert _get(f"{DASHBOARD}/api/jobs/", "wrong") == 403
        assert _get(f"{DASHBOARD}/api/jobs/", harness.token) == 200
    # A fresh process, as a user runs it: Ray caches its auth mode per process, and an earlier
    # ray.init in this test process would have fixed it at "token".
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN_PATH"}
    env["RAY_AUTH_MODE"] = "disabled"  # the client sends no token at all
    cmd = [sys.executable, "-m", "lora_hpo.cli", "status", "raysubmit_x", "--address", DASHBOARD]
    done = subprocess.run([*harness.wrap, *cmd], env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "requires an auth token (401)" in done.stderr and "Traceback" not in done.stderr
    monkeypatch.setenv("RAY_AUTH_TOKEN", "wrong")
    with harness.inside():
        assert main(["logs", "raysubmit_x", "--address", DASHBOARD]) == 2
    err = capsys.readouterr().err
    assert "rejected the auth token from RAY_AUTH_TOKEN" in err and "Traceback" not in err


@pytest.mark.slow
def test_unknown_job_id_exits_2(as_client: Any, capsys: Any) -> None:
    with as_client.harness.inside():
        for command in ("status", "logs", "stop"):
            assert main([command, "raysubmit_nope", "--address", DASHBOARD]) == 2
            err = capsys.readouterr().err
            assert "JOB_ID: no job 'raysubmit_nope'" in err and "Traceback" not in err


SECRETS = {  # what a user's laptop holds; none of it may reach the job (README, "Secrets")
    "HF_TOKEN": "hf_lorahpoFAKEtoken0123456789",
    "AWS_SECRET_ACCESS_KEY": "aws-FAKE-secret-0123456789",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-FAKE-password-0123",
}


@pytest.mark.slow
def test_submit_wait_runs_the_study_on_a_shared_mount_and_keeps_secrets_off_the_job(
    shipped: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """``lora-hpo submit --wait`` from a laptop pod whose environment holds credentials, with
    ``--storage-path`` on a mount every pod shares (as NFS would be): the job succeeds, its
    results are on the mount, and the job the cluster shows (runtime_env, entrypoint,
    metadata) holds none of the laptop's credentials."""
    shipped.up(workers=1)
    harness = shipped.harness
    name = shipped.write_study("job-nfs", **{"search.num_samples": 3})
    env = harness.base_env() | harness.ray_env() | SECRETS
    env |= {"MLFLOW_TRACKING_USERNAME": "me", "MLFLOW_TRACKING_URI": MLFLOW}
    submit = [
        "lora-hpo", "submit", str(shipped.specs / "study.yaml"), "--wait",
        "--address", DASHBOARD, "--storage-path", str(harness.shared),
        "--tracking-uri", shipped.head_env["MLFLOW_TRACKING_URI"],
    ]  # fmt: skip
    laptop = harness.pod("laptop", submit, env)
    assert laptop.proc.wait(timeout=600) == 0, laptop.output()[-3000:]
    out = laptop.output()
    job_id = re.findall(r"^(lora-hpo-job-nfs-[0-9a-f]+)$", out, re.MULTILINE)[0]  # submit's stdout
    assert f"{job_id}: SUCCEEDED" in out and "best adapter:" in out, out[-3000:]
    assert len(list((harness.shared / name).glob("tune_trainable_*"))) == 3
    trials = [r for r in harness.mlflow_runs(name) if r.data.tags.get("lora_hpo.role") == "trial"]
    assert len(trials) == 3 and all(r.info.status == "FINISHED" for r in trials)
    from ray.job_submission import JobSubmissionClient

    with harness.inside():
        client = JobSubmissionClient(
            DASHBOARD, headers={"Authorization": f"Bearer {harness.token}"}
        )
        info = client.get_job_info(job_id)
        monkeypatch.setenv("RAY_AUTH_TOKEN", harness.token)
        capsys.readouterr()
        assert main(["status", job_id, "--address", DASHBOARD, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)  # ``status --json``: the job as Ray shows it
    assert (status["job_id"], status["status"], status["study"]) == (job_id, "SUCCEEDED", name)
    assert status["message"] == (info.message or None)
    assert status["start_time"] and status["end_time"] and status["start_time"] < status["end_time"]
    shown = json.dumps([info.runtime_env, info.entrypoint, info.metadata])
    spec_text = base64.urlsafe_b64decode(info.runtime_env["env_vars"][payload.SPEC_ENV]).decode()
    for value in [*SECRETS.values(), harness.token]:
        assert value not in shown and value not in spec_text
    assert set(info.runtime_env["env_vars"]) == {
        payload.SPEC_ENV,
        "MLFLOW_TRACKING_URI",
        *WORKER_ENV,
        *payload.STOP_WAIT,
    }
