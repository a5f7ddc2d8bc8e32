"""The Ray runtime a study runs on: join ``--address`` / RAY_ADDRESS, or start a local Ray;
make sure one trial fits (waiting for a cluster to grow: ``cluster_capacity.py``) and that a GPU
share holds the trial's memory estimate; stop the Ray this process started.

A local Ray that lora-hpo starts for a CPU study is set up so that the slots' first trials
need not boot a worker process each: the workers inherit the driver's environment (no job
runtime_env), Tune's trial actors are registered without one (``ray_internals``), so they take
the workers Ray prestarts with the node, and those workers import the trial's modules as they
start (Ray's ``preload_python_modules``: ``lora_hpo.training.worker_preload``), while the
driver runs its preflight; the study starts once they are done (``wait_preloaded``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.search.cluster_capacity import DEFAULT_WAIT_S, wait_for_capacity
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_schema import StudySpec

# The settings every trial worker needs: a reused actor waits this long for its finished
# trial's thread before it takes the next. They travel in a submitted job's runtime_env (a job
# ignores its driver's ``ray.init(runtime_env=...)``: ``cluster.job_payload``), in the driver's
# runtime_env on a cluster it joins, and in the environment a local Ray's workers inherit.
WORKER_ENV = {"TUNE_FUNCTION_THREAD_TIMEOUT_S": "30"}

# what a trial's worker imports before its first step (Tune's trainable, then torch,
# transformers, peft: about 7 s of a 2-core machine's CPU per worker), then marks it done
PRELOAD = "lora_hpo.training.worker_preload"
PRELOAD_WAIT_S = 120.0  # the most the driver waits for the slots' workers to preload
IDLE_KILL_MS = 60_000  # an idle worker lives this long on a local Ray (Ray's default: 1 s)


@dataclass
class RayRuntime:
    """The Ray a study runs on. ``joined``: a cluster this process joined (``--address``,
    RAY_ADDRESS, the one a submitted job runs on), which may grow; ``local``: a local Ray this
    process started, where the local speed-ups apply (``trial_execution``); ``started``: this
    process called ``ray.init``, so ``close`` shuts Ray down. ``preloaded``: where a local
    Ray's prestarted workers mark their preload done, and how many the study waits for."""

    joined: bool = False
    local: bool = False
    started: bool = False
    preloaded: Scratch | None = None
    slots: int = 0

    def wait_preloaded(self, timeout_s: float = PRELOAD_WAIT_S) -> int:
        """Wait (up to ``timeout_s``) until as many prestarted workers as the study has slots
        are done preloading; how many are. Ray gives a trial actor only a worker that is done,
        and starts another process for one asked for earlier, so Tune must ask after this.
        Nothing to wait for (0) when this Ray preloads nothing."""
        if self.preloaded is None:
            return 0
        deadline = time.monotonic() + timeout_s
        while True:
            done = len(os.listdir(self.preloaded.name))
            if done >= self.slots or time.monotonic() > deadline:
                return done
            time.sleep(0.1)

    def close(self) -> None:
        """Shut down the Ray this process started (never one the caller already had)."""
        if self.started:
            import ray

            ray.shutdown()
            self.started = False
        if self.preloaded is not None:
            from lora_hpo.training.preload_marks import PRELOADED_ENV

            self.preloaded.cleanup()
            self.preloaded = None
            os.environ.pop(PRELOADED_ENV, None)


def start(
    address: str | None, spec: StudySpec | None = None, *, in_job: bool = False
) -> RayRuntime:
    """Join ``address`` / RAY_ADDRESS, or start a local Ray (nothing when Ray already runs in
    this process); a local Ray for ``spec`` preloads its trial modules in the prestarted
    workers when ``preloads(spec)``. ``in_job``: this driver is a submitted job's, whose
    runtime_env already carries the workers' settings (Ray refuses a driver runtime_env that
    sets the same keys)."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    if ray.is_initialized():
        return RayRuntime()
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target == "local":  # Ray's own word for a new local Ray: not a cluster to join
        target = None
    runtime = RayRuntime(joined=target is not None, local=target is None and not in_job)
    options: dict[str, Any] = {}
    if target is not None:
        probe_address(target)
    if runtime.local:
        options = local_options(spec, runtime)
    else:
        import torch  # noqa: F401  (before ray.init: oneMKL aborts otherwise in job drivers)

        options["runtime_env"] = None if in_job else {"env_vars": dict(WORKER_ENV)}
    try:
        ray.init(
            address=target or "local",  # never join a stray `ray start` cluster silently
            logging_level=logging.WARNING,
            include_dashboard=False if target is None else None,
            log_to_driver=True,
            **options,
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        runtime.close()
        raise UsageError(f"--address: cannot reach a Ray cluster at {target!r}: {exc}") from None
    runtime.started = True
    return runtime


def local_options(spec: StudySpec | None, runtime: RayRuntime) -> dict[str, Any]:
    """``ray.init`` options for a local Ray: the workers' settings go into this process's
    environment (which the node's processes inherit); the prestarted workers stay until the
    trial actors take them; and, when ``preloads(spec)``, they import the trial's modules."""
    from lora_hpo.search.ray_internals import tune_actor_env
    from lora_hpo.training.preload_marks import PRELOADED_ENV

    for key, value in {**WORKER_ENV, **tune_actor_env()}.items():
        os.environ.setdefault(key, value)
    os.environ.pop(PRELOADED_ENV, None)
    # Ray kills an idle worker after 1 s once there are more idle workers than unreserved CPUs,
    # and Tune reserves a trial's CPU (a placement group) before it asks for the actor: the
    # second slot's prestarted worker was killed, and a new one booted in its place
    config: dict[str, Any] = {"idle_worker_killing_time_threshold_ms": IDLE_KILL_MS}
    cpus = local_cpus()
    if spec is not None and preloads(spec, cpus):
        runtime.preloaded = Scratch("preloaded")  # swept by the next study if this one is killed
        runtime.slots = slots(spec, cpus)
        os.environ[PRELOADED_ENV] = runtime.preloaded.name  # read by the workers Ray starts
        config["preload_python_modules"] = [PRELOAD]
    return {"_system_config": config}


def local_cpus() -> int:
    """The CPUs this process may use: a local Ray counts no more, and prestarts a worker
    for each one it counts."""
    from lora_hpo.training.trial_threads import usable_cpus

    return usable_cpus()


def preloads(spec: StudySpec, cpus: int) -> bool:
    """Whether a local Ray of ``cpus`` CPUs should preload the trial modules in every worker
    it prestarts (one per CPU, about 0.5 GiB each once loaded): for unpacked CPU trials (a
    worker that imports torch before Ray assigns it a GPU could see the wrong devices), and
    only where the study's slots would take at least half of those workers. Not when Tune
    would give the trial actors a runtime_env anyway (a variable it copies from the driver
    is set), since those never take a prestarted worker."""
    from lora_hpo.search.ray_internals import propagated_env

    if spec.resources.gpu > 0 or spec.search.pack > 1 or propagated_env():
        return False
    return cpus <= 2 * slots(spec, cpus)


def slots(spec: StudySpec, cpus: int) -> int:
    """The trials that run at once on ``cpus`` CPUs."""
    return min(spec.search.max_concurrent, int(cpus // max(spec.resources.cpu, 1e-9)))


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
    import torch

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
