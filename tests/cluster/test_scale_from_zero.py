"""Scale from zero, end to end with real processes, in a private network namespace (Ray turns
127.0.0.1 into the host's address; alone in a namespace, loopback is the only one): a head with
no CPUs and token auth, as KubeRay's shape ships it; a study submitted with ``lora-hpo submit
--wait``; a worker node that joins 25 s later, standing in for the autoscaler. The job asks
for capacity, waits, runs, and ends SUCCEEDED with its runs in a real ``mlflow server``; its
trials saw the worker settings the job carried."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lora_hpo.spec.env import WORKER_ENV
from tests.conftest import tiny_study
from tests.mlflow_server import MlflowServer, free_port

pytestmark = pytest.mark.slow
JOIN_AFTER_S = 25


@pytest.fixture
def netns() -> Iterator[list[str]]:
    name = f"lhz{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    try:
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "pids", name], capture_output=True)
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", name], check=False)


def _ray(wrap: list[str], env: dict[str, str], root: Path, *args: str) -> None:
    ray_bin = str(Path(sys.executable).with_name("ray"))
    log = (root / f"ray-{len(list(root.glob('ray-*.log')))}.log").open("wb")
    cmd = [*wrap, ray_bin, "start", "--disable-usage-stats", "--temp-dir", str(root / "ray"), *args]
    assert (
        subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=180).returncode
        == 0
    )


def test_a_study_submitted_to_a_cluster_with_no_workers_runs_once_one_joins(
    netns: list[str], tiny_assets: Path
) -> None:
    root = Path(tempfile.mkdtemp(prefix="lhz-", dir="/tmp"))  # short: Ray's socket paths
    home = root / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    env |= {"HOME": str(home), "RAY_AUTH_MODE": "token", "HF_HUB_OFFLINE": "1"}
    gcs, dash = free_port(), free_port()
    try:
        _ray(
            netns,
            env,
            root,
            "--head",
            "--num-cpus",
            "0",
            "--port",
            str(gcs),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(dash),
        )
        server = MlflowServer(root / "mlflow", wrap=netns)
        (root / "mlflow").mkdir()
        server.start()
        spec = root / "zero.yaml"
        spec.write_text(
            yaml.safe_dump(
                tiny_study(
                    tiny_assets,
                    name="from-zero",
                    **{"training.max_steps": 10, "search.scheduler": {"type": "none"}},
                )
            )
        )
        submit = [
            *netns,
            sys.executable,
            "-m",
            "lora_hpo.cli",
            "submit",
            str(spec),
            "--wait",
            "--address",
            f"http://127.0.0.1:{dash}",
            "--python",
            sys.executable,
            "--storage-path",
            str(root / "results"),
            "--tracking-uri",
            server.uri,
            "--wait-for-resources",
            "5m",
        ]
        started = time.monotonic()
        job = subprocess.Popen(
            submit, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(JOIN_AFTER_S)
        _ray(netns, env, root, "--address", f"127.0.0.1:{gcs}", "--num-cpus", "2")
        out, err = job.communicate(timeout=600)
        took = time.monotonic() - started
        print(
            f"submit -> SUCCEEDED in {took:.0f} s (a worker joined after {JOIN_AFTER_S} s)",
            file=sys.__stderr__,
        )
        assert job.returncode == 0, out[-3000:] + err[-3000:]
        assert "SUCCEEDED" in err and "asked the autoscaler" in out, out[-3000:]
        _check_runs_and_settings(server, root / "results" / "from-zero")
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(
                [*netns, str(Path(sys.executable).with_name("ray")), "stop", "--force"],
                env=env,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)


def _check_runs_and_settings(server: MlflowServer, study: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{server.db}")
    exp = client.get_experiment_by_name("from-zero")
    runs = client.search_runs([exp.experiment_id], "tags.`lora_hpo.role` = 'trial'")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    for path in study.glob("*/result.json"):
        row: dict[str, Any] = json.loads(path.read_text().splitlines()[-1])
        for key, value in WORKER_ENV.items():
            assert row[f"env_{key}"] == value, row  # the job's runtime_env reached the trial
