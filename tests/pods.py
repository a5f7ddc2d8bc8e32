"""A Ray cluster shaped as Kubernetes runs it, on one machine: pods that share no disk.

Each pod is a process tree in its own mount and PID namespaces (``unshare``), and all pods sit
in one private network namespace (``ip netns``), where loopback is the only address: Ray turns
127.0.0.1 into the host's address, so outside such a namespace a worker cannot join a
loopback-only head. A pod sees the host's files as its image (the venv, the checkout, the
harness's ``image/`` folder, and ``shared/``, which stands for an NFS mount every pod has);
its ``/tmp``, ``/dev/shm`` and ``HOME`` (``/tmp/home``) are
tmpfs of its own, as a pod's emptyDirs are; ``/etc/hosts`` maps the service names of the
manifests to the namespace's loopback; the services' own folder is hidden from it.

What the pods share is what a Kubernetes cluster shares, the network: moto's S3 server and an
``mlflow server`` on the namespace's loopback, at the ports the manifests name (9000, 5000),
and the Ray head's ports (6379, 8265). The test process reaches them by entering the network
namespace for a moment (``Harness.inside``).

A pod dies with its PID namespace: ``kill`` is SIGKILL to its first process (a lost node),
``stop`` is SIGTERM (``ray start --block`` then stops its node, which the head sees at once).
Clean-up goes by process id; nothing here calls ``ray stop``, which kills every Ray on the
machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.mlflow_server import MlflowServer

CLONE_NEWNET = 0x40000000
GCS_PORT, DASHBOARD_PORT, MLFLOW_PORT, S3_PORT = 6379, 8265, 5000, 9000
HEAD = f"127.0.0.1:{GCS_PORT}"
DASHBOARD = f"http://127.0.0.1:{DASHBOARD_PORT}"
MLFLOW = f"http://127.0.0.1:{MLFLOW_PORT}"
S3_ENDPOINT = f"http://127.0.0.1:{S3_PORT}"
BUCKET = "lora-hpo-studies"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 120.0

# Runs as the first process of a pod: its own tmpfs folders, its hosts file, a folder mounted
# read-only as a ConfigMap would be (its files can change, as a ConfigMap's do), then the pod's
# command (the POD_* settings are not passed on). The image's folders that lie under a masked
# one (a checkout and its venv in /tmp, as CI may clone it) are held on /mnt and mounted back.
POD_SCRIPT = r"""
set -e
if [ -n "$POD_KEEP" ]; then
  mount -t tmpfs tmpfs /mnt
  i=0; for k in $POD_KEEP; do mkdir "/mnt/$i"; mount --bind "$k" "/mnt/$i"; i=$((i+1)); done
fi
for m in $POD_MASKS; do mount -t tmpfs -o mode=1777 tmpfs "$m"; done
i=0; for k in $POD_KEEP; do mkdir -p "$k"; mount --bind "/mnt/$i" "$k"; i=$((i+1)); done
mount --bind "$POD_HOSTS" /etc/hosts
if [ -n "$POD_FILES" ]; then
  mount --bind "$POD_FILES" "$POD_FILES_AT" && mount -o remount,ro,bind "$POD_FILES_AT"
fi
mkdir -p "$HOME" /tmp/work && cd /tmp/work
unset POD_MASKS POD_KEEP POD_HOSTS POD_FILES POD_FILES_AT
exec "$@"
"""


def wait_until(check: Callable[[], Any], timeout: float, what: str, poll: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; its value. AssertionError naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)  # the pause between polls of the condition, not a wait that assumes it


class Pod:
    """One pod: ``proc`` is the ``unshare`` process outside it; its output goes to ``log``."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.name, self.proc, self.log = name, proc, log
        self.node_id = ""  # a Ray node's id, once the head has counted it

    @property
    def init_pid(self) -> int:
        """The pod's first process (PID 1 inside it), as the host sees it."""

        def child() -> int | None:
            path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            with contextlib.suppress(OSError):
                found = path.read_text().split()
                return int(found[0]) if found else None
            return None

        return int(wait_until(child, 10, f"pod {self.name}'s first process", poll=0.02))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def enter(self) -> list[str]:
        """The command prefix that runs a command inside the pod (its files, processes and
        network, its working directory), as ``kubectl exec`` would."""
        return ["nsenter", "-t", str(self.init_pid), "-m", "-p", "-n", "--wd", "--"]

    def exec(self, argv: list[str], env: dict[str, str], **popen: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the pod, in a session of its own (to be killed as a group)."""
        return subprocess.Popen([*self.enter(), *argv], env=env, start_new_session=True, **popen)

    def run(self, argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, float]:
        """(exit status, stdout + stderr, seconds) of ``argv`` run inside the pod."""
        start = time.monotonic()
        proc = self.exec(argv, env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            raise AssertionError(
                f"{argv} in pod {self.name} ran over {timeout} s:\n{out}"
            ) from None
        return proc.returncode, out, time.monotonic() - start

    def kill(self) -> None:
        """SIGKILL the pod's first process: the kernel ends every process of the pod."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM the pod's first process (``ray start --block`` stops its node), then wait."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class Harness:
    """The network namespace, its services, and the pods started in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.image, self.services, self.logs = root / "image", root / "services", root / "logs"
        self.shared = root / "shared"  # a folder every pod sees: a shared mount, as NFS is
        for folder in (self.image, self.services, self.logs, self.shared):
            folder.mkdir(parents=True)
        self.netns = f"lhp{secrets.token_hex(3)}"
        self.token = secrets.token_hex(32)  # the Ray auth token (KubeRay's authOptions Secret)
        self.hosts = root / "hosts"
        self.hosts.write_text(f"127.0.0.1 localhost {socket.gethostname()}\n")
        self.pods: list[Pod] = []
        self.services_procs: list[subprocess.Popen[bytes]] = []
        self.mlflow: MlflowServer | None = None
        self.made_specs_dir = False

    # --- the namespace and its services ----------------------------------------------------

    @property
    def wrap(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]

    def start(self, mlflow_args: list[str] | None = None) -> None:
        """The namespace, moto's S3 server with the bucket, and the ``mlflow server`` (with
        ``mlflow_args``, e.g. the ``--allowed-hosts`` its Deployment gives it)."""
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run([*self.wrap, "ip", "link", "set", "lo", "up"], check=True)
        if not Path("/specs").exists():  # where the RayJob mounts its study ConfigMap
            Path("/specs").mkdir()
            self.made_specs_dir = True
        s3_log = (self.logs / "s3.log").open("wb")
        moto = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(S3_PORT)]
        self.services_procs.append(
            subprocess.Popen([*self.wrap, *moto], stdout=s3_log, stderr=subprocess.STDOUT)
        )
        self.mlflow = MlflowServer(
            self.services / "mlflow", port=MLFLOW_PORT, wrap=self.wrap, args=mlflow_args
        )
        self.mlflow.root.mkdir()
        self.mlflow.start()
        wait_until(self._bucket, 60, "moto's S3 server")

    def _bucket(self) -> bool:
        try:
            with self.inside():
                self.s3().create_bucket(Bucket=BUCKET)
        except Exception as exc:  # not up yet
            return "BucketAlreadyOwnedByYou" in str(exc)
        return True

    def add_hosts(self, names: set[str]) -> None:
        """Resolve these service names to the namespace's loopback in pods started later."""
        known = set(self.hosts.read_text().split())
        self.hosts.write_text(f"127.0.0.1 {' '.join(sorted(known - {'127.0.0.1'} | names))}\n")

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Run this thread's network calls in the pods' network namespace."""
        libc = ctypes.CDLL(None, use_errno=True)
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the pods' network namespace")
            try:
                yield
            finally:
                if libc.setns(own, CLONE_NEWNET) != 0:  # never leave this thread inside
                    print(f"cannot leave network namespace {self.netns}", file=sys.stderr)
                    os._exit(70)
        finally:
            os.close(own)
            os.close(target)

    def s3(self) -> Any:
        """A boto3 client of the harness's S3 server (use it ``inside()``)."""
        import boto3

        return boto3.client("s3", endpoint_url=S3_ENDPOINT, region_name="us-east-1", **_boto_keys())

    def s3_keys(self, prefix: str) -> list[str]:
        with self.inside():
            pages = (
                self.s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
            )
            return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def s3_modified(self, prefix: str) -> dict[str, float]:
        """key -> when it was last written (a timestamp), for every object under ``prefix``."""
        with self.inside():
            pages = (
                self.s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
            )
            return {
                o["Key"]: o["LastModified"].timestamp()
                for page in pages
                for o in page.get("Contents", [])
            }

    def s3_results(self, prefix: str) -> dict[str, list[dict[str, Any]]]:
        """trial id -> its reports, from the result.json objects under ``prefix``."""
        out: dict[str, list[dict[str, Any]]] = {}
        with self.inside():
            client = self.s3()
            for key in self.s3_keys(prefix):
                if key.endswith("/result.json"):
                    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
                    rows = [json.loads(x) for x in body.splitlines() if x.strip()]
                    if rows:
                        out.setdefault(rows[0]["trial_id"], []).extend(rows)
        return out

    def mlflow_runs(self, experiment: str) -> list[Any]:
        """Every run of an experiment, through the server's HTTP API."""
        from mlflow import MlflowClient

        with self.inside():
            client = MlflowClient(MLFLOW)
            exp = client.get_experiment_by_name(experiment)
            return [] if exp is None else list(client.search_runs([exp.experiment_id]))

    def champion(self, name: str) -> str | None:
        """The version the ``champion`` alias names, or None."""
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        with self.inside():
            try:
                return str(
                    MlflowClient(MLFLOW).get_model_version_by_alias(name, "champion").version
                )
            except MlflowException:
                return None

    # --- pods -------------------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        """What the image gives every container."""
        return {
            "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp/home",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",  # this machine has no Hub; a real pod may
        }

    def ray_env(self, address: str = HEAD) -> dict[str, str]:
        """What KubeRay adds to every Ray container: token auth (authOptions) and RAY_ADDRESS."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token, "RAY_ADDRESS": address}

    def pod(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        files: Path | None = None,
        files_at: str = "/specs",
    ) -> Pod:
        """Start a pod running ``argv``; the host folder ``files`` is mounted read-only at
        ``files_at`` inside it (a ConfigMap's mount)."""
        masks = ["/tmp", "/dev/shm", str(self.services)]
        control = {
            "POD_MASKS": " ".join(masks),
            "POD_KEEP": " ".join(image_under(masks)),
            "POD_HOSTS": str(self.hosts),
            "POD_FILES": str(files or ""),
            "POD_FILES_AT": files_at,
        }
        log = self.logs / f"{name}-{len(self.pods)}.log"
        unshare = [
            "unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
            "--propagation", "private",
        ]  # fmt: skip
        cmd = [*self.wrap, *unshare, "sh", "-c", POD_SCRIPT, "pod", *argv]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, env={**env, **control}, stdout=out, stderr=subprocess.STDOUT
            )
        pod = Pod(name, proc, log)
        self.pods.append(pod)
        return pod

    def ray_start(self, *args: str) -> list[str]:
        return [str(BIN / "ray"), "start", "--block", "--disable-usage-stats", *args]

    def start_head(self, env: dict[str, str], params: dict[str, str], files: Path | None) -> Pod:
        """The Ray head pod (``params``: its rayStartParams); waits for its dashboard."""
        flags = [f"--{k}={v}" for k, v in params.items()]
        argv = self.ray_start(
            "--head", f"--port={GCS_PORT}", "--dashboard-host=127.0.0.1",
            f"--dashboard-port={DASHBOARD_PORT}", *flags,
        )  # fmt: skip
        pod = self.pod("head", argv, env, files)
        wait_until(lambda: self._up(pod), START_TIMEOUT_S, f"the Ray head (log: {pod.log})")
        return pod

    def _up(self, pod: Pod) -> bool:
        if not pod.alive():
            raise AssertionError(f"pod {pod.name} exited:\n{pod.output()[-3000:]}")
        try:
            self.nodes()
        except OSError:
            return False
        return True

    def add_worker(self, env: dict[str, str], params: dict[str, str]) -> Pod:
        """A Ray worker pod, named by ``--node-name`` (its pod's name, as Kubernetes would
        name it); waits until the head counts it alive and sets ``pod.node_id``."""
        name = f"worker-{secrets.token_hex(3)}"
        flags = [f"--{k}={v}" for k, v in params.items()]
        pod = self.pod(
            "worker", self.ray_start(f"--address={HEAD}", f"--node-name={name}", *flags), env
        )

        def joined() -> str | None:
            self._up(pod)
            return next((n["node_id"] for n in self.alive_nodes() if n["node_name"] == name), None)

        pod.node_id = wait_until(joined, START_TIMEOUT_S, f"worker {name} (log: {pod.log})")
        return pod

    def nodes(self) -> list[dict[str, Any]]:
        """The cluster's nodes, from Ray's state API on the head's dashboard (which lags the
        cluster by a few seconds)."""
        req = urllib.request.Request(
            f"{DASHBOARD}/api/v0/nodes", headers={"Authorization": f"Bearer {self.token}"}
        )
        with self.inside(), urllib.request.urlopen(req, timeout=5) as resp:
            return list(json.load(resp)["data"]["result"]["result"])

    def alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes() if n["state"] == "ALIVE"]

    def workers(self) -> list[Pod]:
        return [p for p in self.pods if p.name == "worker" and p.alive()]

    def head(self) -> Pod | None:
        return next((p for p in self.pods if p.name == "head" and p.alive()), None)

    def kill_pods(self) -> None:
        for pod in self.pods:
            pod.kill()
        self.pods = []

    def close(self) -> None:
        self.kill_pods()
        if self.mlflow is not None:
            self.mlflow.stop()
        for proc in self.services_procs:
            proc.kill()
            proc.wait()
        found = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True)
        for pid in found.stdout.split():  # anything left in the namespace, by process id
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", self.netns], check=False)
        if self.made_specs_dir:
            with contextlib.suppress(OSError):
                Path("/specs").rmdir()
        shutil.rmtree(self.root, ignore_errors=True)


def image_under(masks: list[str]) -> list[str]:
    """The image's folders (this checkout, its Python environment) that lie under one of the
    ``masks``: each pod mounts them back over its own tmpfs, as a container image has them."""
    from tests.conftest import REPO

    image = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), REPO.resolve()}
    under = {p for p in image if any(p.is_relative_to(m) for m in masks)}
    return sorted(str(p) for p in under if not any(p != q and p.is_relative_to(q) for q in under))


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    }
