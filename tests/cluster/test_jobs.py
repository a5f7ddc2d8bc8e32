"""Ray clusters: a study spread over a real multi-node cluster, and ``lora-hpo submit`` through
the Jobs API of a real ``ray start`` head with token auth (plus the checks that need no Ray)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch  # noqa: F401  (before ray)
import yaml

from lora_hpo.cli.main import main
from lora_hpo.cluster import jobs, payload
from lora_hpo.spec.env import JOB_ENV, WORKER_ENV
from lora_hpo.spec.errors import UsageError
from lora_hpo.spec.loader import parse_spec
from tests.conftest import tiny_study
from tests.mlflow_server import MlflowServer, free_port

# --- no Ray needed ---------------------------------------------------------------------------


def test_secrets_never_reach_the_runtime_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD", "RAY_AUTH_TOKEN"):
        monkeypatch.setenv(name, "s3cr3t")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    env = payload.job_env("name: x\n", payload.tracking_uri(None))
    assert set(env) == {payload.SPEC_ENV, "MLFLOW_TRACKING_URI", *WORKER_ENV}
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
    with pytest.raises(UsageError, match="--tracking-uri: holds a password"):
        payload.tracking_uri("http://user:pw@mlflow:5000")


def test_entrypoint_names_the_python_and_quotes() -> None:
    cmd = payload.entrypoint('"/opt/my venv/bin/python"', "/mnt/shared results")
    assert cmd == (
        "'/opt/my venv/bin/python' -m lora_hpo.cli.job --storage-path '/mnt/shared results'"
    )
    assert payload.entrypoint("uv run python", None) == "uv run python -m lora_hpo.cli.job"
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
    from lora_hpo.cli.job import main as entry

    monkeypatch.setenv(JOB_ENV, "")  # the entry sets it for its process; undone after the test
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

    from lora_hpo.search.study import run_study

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


# --- a real `ray start` head with the Jobs API and token auth --------------------------------


@dataclass
class RayHead:
    url: str
    token_file: Path
    home: Path
    marker: str


def _our_pids(marker: str) -> list[int]:
    """Processes whose environment carries this cluster's marker (daemons, workers, drivers)."""
    pids = []
    for env_file in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in env_file.read_bytes():
                pids.append(int(env_file.parent.name))
        except OSError:
            continue
    return [p for p in pids if p != os.getpid()]


def _kill_ours(marker: str, pgid: int) -> None:
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        for pid in _our_pids(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while _our_pids(marker) and time.monotonic() < deadline:
            time.sleep(0.2)


def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    """``ray start --head`` with token auth, its token in a private HOME, dashboard on loopback;
    torn down by its own process group and marker, never by ``ray stop``."""
    root = Path(tempfile.mkdtemp(prefix="lhr-", dir="/tmp"))  # short: Ray's socket paths
    home, marker = root / "home", f"lora-hpo-test-{secrets.token_hex(6)}"
    (home / ".ray").mkdir(parents=True)
    token_file = home / ".ray" / "auth_token"
    token_file.write_text(secrets.token_hex(32))
    drop = ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "MLFLOW_TRACKING_URI")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {"HOME": str(home), "RAY_AUTH_MODE": "token", "LORA_HPO_TEST_CLUSTER": marker}
    port = free_port()
    ray_bin = Path(sys.executable).with_name("ray")
    cmd = [
        str(ray_bin), "start", "--head", "--disable-usage-stats", "--num-cpus", "2",
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(port),
        "--port", str(free_port()), "--ray-client-server-port", str(free_port()),
        "--dashboard-agent-listen-port", str(free_port()), "--temp-dir", str(root / "ray"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, cwd=root, start_new_session=True,
        stdout=(root / "start.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert proc.wait(timeout=120) == 0, (root / "start.log").read_text()[-3000:]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while _get(f"{url}/api/version", token_file.read_text()) != 200:
            assert time.monotonic() < deadline, "the dashboard did not answer in 60 s"
            time.sleep(0.5)
        yield RayHead(url, token_file, home, marker)
    finally:
        _kill_ours(marker, proc.pid)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def as_client(ray_head: RayHead, monkeypatch: pytest.MonkeyPatch) -> RayHead:
    """This process as a client of the head: token from RAY_AUTH_TOKEN_PATH, nothing else."""
    for name in ("RAY_AUTH_TOKEN", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(ray_head.token_file))
    return ray_head


@pytest.mark.slow
def test_requests_without_the_token_are_refused(
    as_client: RayHead, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    assert _get(f"{as_client.url}/api/jobs/") == 401
    assert _get(f"{as_client.url}/api/jobs/", "wrong") == 403
    assert _get(f"{as_client.url}/api/jobs/", as_client.token_file.read_text()) == 200
    # A fresh process, as a user runs it: Ray caches its auth mode per process, and an earlier
    # ray.init in this test process would have fixed it at "token".
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN_PATH"}
    env["RAY_AUTH_MODE"] = "disabled"  # the client sends no token at all
    cmd = [sys.executable, "-m", "lora_hpo.cli", "status", "raysubmit_x", "--address"]
    done = subprocess.run([*cmd, as_client.url], env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "requires an auth token (401)" in done.stderr and "Traceback" not in done.stderr
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "wrong")
    assert main(["logs", "raysubmit_x", "--address", as_client.url]) == 2
    err = capsys.readouterr().err
    assert "rejected the auth token from RAY_AUTH_TOKEN" in err and "Traceback" not in err


@pytest.mark.slow
def test_unknown_job_id_exits_2(as_client: RayHead, capsys: Any) -> None:
    for command in ("status", "logs", "stop"):
        assert main([command, "raysubmit_nope", "--address", as_client.url]) == 2
        err = capsys.readouterr().err
        assert "JOB_ID: no job 'raysubmit_nope'" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: Any) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    yield server
    server.stop()


@pytest.mark.slow
def test_submit_wait_runs_the_study_as_a_job(
    as_client: RayHead, mlflow_server: MlflowServer, tiny_assets: Path, tmp_path: Path, capsys: Any
) -> None:
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_study(tiny_assets, name="job-tiny")))
    storage = tmp_path / "results"
    argv = [
        "submit", str(spec_file), "--address", as_client.url, "--wait",
        "--set", "search.num_samples=3", "--storage-path", str(storage),
        "--tracking-uri", mlflow_server.uri, "--python", sys.executable,
    ]  # fmt: skip
    start = time.monotonic()
    rc = main(argv)
    took = time.monotonic() - start
    out, err = capsys.readouterr()
    job_id = out.splitlines()[0]
    print(f"submit -> SUCCEEDED in {took:.1f} s ({job_id})", file=sys.__stderr__)
    assert rc == 0, err[-3000:] + out[-3000:]
    assert f"{job_id}: SUCCEEDED" in err
    assert "best adapter:" in out  # the driver's own summary, streamed back
    trials = list((storage / "job-tiny").glob("tune_trainable_*"))
    assert len(trials) == 3
    assert main(["status", job_id, "--address", as_client.url]) == 0
    assert "SUCCEEDED" in capsys.readouterr().out
    _assert_mlflow_runs(mlflow_server.uri, "job-tiny", 3)


def _assert_mlflow_runs(uri: str, experiment: str, n: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r} at {uri}"
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(children) == n, [r.data.tags for r in runs]
    assert all(r.info.status == "FINISHED" for r in runs)
