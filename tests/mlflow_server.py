"""A real ``mlflow server`` process for tests: SQLite backend, proxied artifacts, a free
loopback port; it can be stopped and started again on the same port and database."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """``wrap``: a command prefix to start it under (e.g. ``ip netns exec NS``); the health
    check then runs under it too."""

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        wrap: list[str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        """``args``: more ``mlflow server`` flags (e.g. ``--allowed-hosts``)."""
        self.root = root
        self.wrap = list(wrap or [])
        self.args = list(args or [])
        self.port = port or free_port()
        self.db = root / "mlflow.db"
        self.artifacts = root / "artifacts"
        self.log = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_s = 0.0  # how long the first start took

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start the server and wait for /health; the seconds it took."""
        t0 = time.monotonic()
        mlflow = Path(sys.executable).with_name("mlflow")
        cmd = [
            str(mlflow), "server", "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.db}",
            "--artifacts-destination", str(self.artifacts),
            "--host", "127.0.0.1", "--port", str(self.port), *self.args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no huey job workers: ~6 fewer
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([*self.wrap, *cmd], stdout=log, stderr=log, env=env)
        while time.monotonic() - t0 < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited; see {self.log}")
            if self.healthy():
                return time.monotonic() - t0
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy in {START_TIMEOUT_S} s; see {self.log}")

    def healthy(self) -> bool:
        if self.wrap:
            probe = f"import urllib.request as u; u.urlopen('{self.uri}/health', timeout=1)"
            done = subprocess.run([*self.wrap, sys.executable, "-c", probe], capture_output=True)
            return done.returncode == 0
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> float:
        """SIGTERM the server (it stops its workers) and wait; the seconds it took."""
        t0 = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        return time.monotonic() - t0


FAKE_TOKEN = "hf_lorahpoFAKEtoken0123456789abcdef"  # planted in HF_TOKEN; must reach no store


@dataclass
class TrackedStudy:
    spec: Any
    result: Any  # lora_hpo.search.study_result.StudyResult
    tracker: Any  # lora_hpo.tracking.mlflow_tracker.MLflowTracker
    uri: str
    marks: dict[str, float]  # down, restart, up (the outage), end (of the study)
    told: str  # what the tracker told the user (stderr)


_SHARED: dict[str, TrackedStudy] = {}


@contextmanager
def local_ray_with_token() -> Iterator[None]:
    """A fresh local Ray (never a ``ray start`` cluster found on the machine), started with
    HF_TOKEN=FAKE_TOKEN in the environment, so its workers have the token too."""
    import ray
    import torch  # noqa: F401  (torch before ray)

    old = os.environ.get("HF_TOKEN")
    os.environ["HF_TOKEN"] = FAKE_TOKEN
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("HF_TOKEN", None)
        else:
            os.environ["HF_TOKEN"] = old


def shared_study(server: MlflowServer, assets: Path) -> TrackedStudy:
    """One small tracked study per server, run once and shared by the test modules (its runs
    stay in MLflow, its checkpoints on disk). The server is stopped for 30 s while it runs.
    The caller has Ray initialised with HF_TOKEN=FAKE_TOKEN in its environment; the tracking
    URI given as ``--tracking-uri`` would be (a spec file may hold none with a credential)
    carries the token too, as a password. Adapters: the top 2; the champion is registered as
    an MLflow model (``champion_model.champion_folder``), as the CLI does."""
    if server.uri in _SHARED:
        return _SHARED[server.uri]
    from lora_hpo.analysis.champion_model import champion_folder
    from lora_hpo.search.study_runner import run_study
    from lora_hpo.spec.spec_loader import parse_spec
    from lora_hpo.tracking.study_tracking import StudyTracking
    from tests.conftest import tiny_study

    uri = f"http://lora:{FAKE_TOKEN}@127.0.0.1:{server.port}"
    tracking = {"log_adapters": "top-k", "top_k": 2}
    spec = parse_spec(tiny_study(assets, name="tracked", tracking=tracking))
    stream = io.StringIO()
    tracking = StudyTracking(
        uri, flush_timeout_s=240, stream=stream, model_folder=champion_folder
    )  # the champion as an MLflow model, as the CLI registers it

    def logging() -> bool:
        box = tracking.trackers[0].outbox if tracking.trackers else None
        return box is not None and box.stats["sent"] >= 3

    marks: dict[str, float] = {}
    thread = threading.Thread(target=outage, args=(server, logging, 30, marks), daemon=True)
    thread.start()
    storage = str(server.root / "results")
    result = run_study(spec, storage_path=storage, tracking=tracking)
    marks["end"] = time.time()
    thread.join(timeout=180)
    study = TrackedStudy(spec, result, tracking.trackers[0], server.uri, marks, stream.getvalue())
    _SHARED[server.uri] = study
    return study


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout_s, f"timed out waiting for {what}"
        time.sleep(0.2)
    return time.monotonic() - t0


def outage(
    server: MlflowServer, when: Callable[[], bool], down_s: float, marks: dict[str, float]
) -> None:
    """Once ``when()`` holds, stop the server for ``down_s`` seconds, then start it again on
    the same port and database; note the times in ``marks``."""
    wait_for(when, 180, "the outage's start condition")
    marks["down"] = time.time()
    server.stop()
    time.sleep(down_s)
    marks["restart"] = time.time()
    server.start()
    marks["up"] = time.time()


def reported_trials(state_file: Path) -> int:
    """How many trials the tracker's state file says have reported a step."""
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return 0
    return sum(t["step"] > 0 for t in state["trials"].values())


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the driver, then what it started (its local Ray: GCS, raylet, workers)."""
    import psutil

    family = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait()
    for child in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


# ``lora-hpo`` in a subprocess, on a fresh local Ray (never a ``ray start`` cluster nearby)
DRIVER = (
    "import sys, torch, ray; ray.init(address='local', num_cpus=2, include_dashboard=False);"
    " from lora_hpo.cli.main import main; sys.exit(main(sys.argv[1:]))"
)
