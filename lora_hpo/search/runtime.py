"""The Ray runtime a study runs on: join ``--address`` / RAY_ADDRESS, or start a local Ray;
make sure one trial fits (waiting for a cluster to grow: ``capacity.py``) and that a GPU
share holds the trial's memory estimate; stop the Ray this process started."""

from __future__ import annotations

import logging
import os
import socket

import torch  # import torch before ray.init: oneMKL aborts otherwise in job drivers

from lora_hpo.search.capacity import DEFAULT_WAIT_S, wait_for_capacity
from lora_hpo.spec.env import JOB_ENV, WORKER_ENV
from lora_hpo.spec.errors import UsageError
from lora_hpo.spec.schema import StudySpec

_STARTED = {"ray": False}  # True once start() started (or joined) Ray in this process


def start(address: str | None) -> bool:
    """Join RAY_ADDRESS / --address, or start a local Ray (nothing when Ray already runs in
    this process). True when this process joined a cluster, which can grow."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    for key, value in WORKER_ENV.items():
        os.environ.setdefault(key, value)
    if ray.is_initialized():
        return False
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target is not None:
        probe_address(target)
    # In a submitted job the job's runtime_env carries WORKER_ENV, and Ray refuses a driver
    # runtime_env that sets the same keys; everywhere else the driver passes them.
    in_job = os.environ.get(JOB_ENV) == "1"
    try:
        ray.init(
            address=target or "local",  # never join a stray `ray start` cluster silently
            logging_level=logging.WARNING,
            include_dashboard=False if target is None else None,
            log_to_driver=True,
            runtime_env=None if in_job else {"env_vars": dict(WORKER_ENV)},
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise UsageError(f"--address: cannot reach a Ray cluster at {target!r}: {exc}") from None
    _STARTED["ray"] = True
    return target is not None


def ensure_capacity(spec: StudySpec, joined: bool, wait_s: float = DEFAULT_WAIT_S) -> None:
    """On a cluster this process joined, wait (up to ``wait_s``, asking the autoscaler) until
    a node can run one trial; elsewhere a trial that does not fit fails at once."""
    if joined:
        wait_for_capacity(spec, wait_s)
    check_fits(spec)


def check_fits(spec: StudySpec) -> None:
    """One trial's resources must fit the cluster, or trials would wait forever."""
    import ray

    have = ray.cluster_resources()
    for kind, want in (("CPU", spec.resources.cpu), ("GPU", spec.resources.gpu)):
        if want > have.get(kind, 0):
            raise UsageError(
                f"resources.{kind.lower()}: each trial asks for {want:g} {kind}, but the Ray"
                f" cluster has {have.get(kind, 0):g}; trials would wait forever"
            )


def _device_memory() -> int | None:
    """Total memory of the CUDA device this task got (None without one)."""
    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(0).total_memory)


def gpu_memory(fraction: float, timeout_s: float = 30.0) -> int | None:
    """The memory of a GPU a trial would get, asked of the cluster by a task that takes the
    trial's share of one; None when no CUDA device answers in time (logical GPUs, a busy or
    scaling cluster): the check is skipped then."""
    import ray

    task = ray.remote(num_gpus=min(fraction, 1.0), num_cpus=0)(_device_memory)
    ref = task.remote()
    try:
        return ray.get(ref, timeout=timeout_s)  # type: ignore[no-any-return]
    except (ray.exceptions.GetTimeoutError, ray.exceptions.RayError):
        ray.cancel(ref, force=True)
        return None


def fits_share(need: int, fraction: float, total: int) -> str:
    """ "" when ``need`` bytes fit ``fraction`` of a ``total``-byte GPU, else why not."""
    share = min(fraction, 1.0) * total
    if need <= share:
        return ""
    gib = 1 << 30
    return (
        f"resources.gpu: a trial gets {fraction:g} of a {total / gib:.0f} GiB GPU,"
        f" {share / gib:.1f} GiB, but needs about {need / gib:.1f} GiB (the preflight's"
        " estimate); ask for a larger share, quantize the base (model.quantization) or turn on"
        " training.gradient_checkpointing"
    )


def check_gpu_memory(spec: StudySpec, need: int) -> None:
    """A fractional (or whole) GPU share that cannot hold a trial is bad input."""
    if spec.resources.gpu <= 0 or need <= 0:
        return
    total = gpu_memory(spec.resources.gpu)
    problem = fits_share(need, spec.resources.gpu, total) if total else ""
    if problem:
        raise UsageError(problem)


def probe_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an address nobody listens on (ray.init would retry for minutes)."""
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address: must look like HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UsageError(
            f"--address: cannot reach a Ray cluster at {address!r}: {exc.strerror or exc}"
        ) from None


def shutdown_started() -> None:
    """Stop the Ray runtime that ``connect`` started (not one the caller already had)."""
    if _STARTED["ray"]:
        import ray

        ray.shutdown()
        _STARTED["ray"] = False
