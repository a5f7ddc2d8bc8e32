"""Build and run a study on Ray Tune: OptunaSearch (+ ConcurrencyLimiter) and ASHA over the
trial runner, with resources, failure handling, checkpoint retention, storage and resume."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch  # noqa: F401  (import torch before ray.init: oneMKL aborts otherwise in job drivers)

from lora_hpo.errors import UsageError
from lora_hpo.loader import load_spec, spec_to_dict
from lora_hpo.outcome import trial_status
from lora_hpo.spec import StudySpec

SPEC_FILE = "lora_hpo_spec.yaml"  # the resolved spec, kept in the study directory for resume
DEFAULT_STORAGE = "lora-hpo-results"
KEEP_CHECKPOINTS = 2
STARTED_RAY = False  # True once connect() started (or joined) Ray in this process


@dataclass
class TrialSummary:
    trial_id: str
    status: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    checkpoint: str | None
    step_time_s: float = 0.0


@dataclass
class StudyResult:
    spec: StudySpec
    path: str  # the study directory (local path or URI)
    trials: list[TrialSummary]
    wall_s: float
    best: TrialSummary | None = None
    counts: dict[str, int] = field(default_factory=dict)
    decision: str = ""  # staged studies: why stage 2 used the rank it did


def storage_root(storage_path: str | None) -> str:
    """An absolute local path (default under the working directory) or a URI (s3://, ...)."""
    root = storage_path or os.environ.get("LORA_HPO_STORAGE") or DEFAULT_STORAGE
    if "://" in root:
        return root
    path = Path(root).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".lora-hpo-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"--storage-path: cannot write to {str(path)!r} ({exc.strerror or exc})"
        ) from None
    return str(path)


def connect(address: str | None, spec: StudySpec) -> None:
    """Join RAY_ADDRESS / --address, or start a local Ray; check the trial fits the cluster."""
    import ray

    global STARTED_RAY
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "30")
    if not ray.is_initialized():
        target = address or os.environ.get("RAY_ADDRESS") or None
        if target is not None:
            probe_address(target)
        try:
            ray.init(
                address=target or "local",  # never join a stray `ray start` cluster silently
                logging_level=logging.WARNING,
                include_dashboard=False if target is None else None,
                log_to_driver=True,
                runtime_env={"env_vars": {"TUNE_FUNCTION_THREAD_TIMEOUT_S": "30"}},
            )
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UsageError(
                f"--address: cannot reach a Ray cluster at {target!r}: {exc}"
            ) from None
        STARTED_RAY = True
    have = ray.cluster_resources()
    for kind, want in (("CPU", spec.resources.cpu), ("GPU", spec.resources.gpu)):
        if want > have.get(kind, 0):
            raise UsageError(
                f"resources.{kind.lower()}: each trial asks for {want:g} {kind}, but the Ray"
                f" cluster has {have.get(kind, 0):g}; trials would wait forever"
            )


def probe_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an address nobody listens on (ray.init would retry for minutes)."""
    import socket

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


def build_tuner(spec: StudySpec, storage: str, callbacks: list[Any]) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from lora_hpo.registry import make_sampler
    from lora_hpo.space import compile_space

    space, concurrency = compile_space(spec.space), spec.search.max_concurrent
    if space:
        searcher = OptunaSearch(
            space=space,
            sampler=make_sampler(spec.search.sampler, spec.search.seed),
            metric=spec.metric,
            mode=spec.mode,
        )
        limited: Any = ConcurrencyLimiter(searcher, max_concurrent=concurrency)
    else:  # every value fixed (one config, or a staged stage with lr fixed): Optuna needs a
        # space to search, so num_samples repeats of the config run through Tune's generator
        limited = BasicVariantGenerator(max_concurrent=concurrency)
    scheduler = None
    if spec.search.scheduler.type == "asha":
        scheduler = ASHAScheduler(
            time_attr="step",
            max_t=spec.training.max_steps,
            grace_period=spec.search.scheduler.grace_period,
            reduction_factor=spec.search.scheduler.reduction_factor,
        )
    return tune.Tuner(
        trainable_for(spec),
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=limited,
            scheduler=scheduler,
            num_samples=spec.search.num_samples,
            reuse_actors=True,
        ),
        run_config=run_config(spec, storage, callbacks),
    )


def trainable_for(spec: StudySpec) -> Any:
    from ray import tune

    from lora_hpo.trainable import tune_trainable

    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    return tune.with_resources(tune.with_parameters(tune_trainable, spec=spec), resources)


def run_config(spec: StudySpec, storage: str, callbacks: list[Any]) -> Any:
    from ray import tune

    return tune.RunConfig(
        name=spec.name,
        storage_path=storage,
        failure_config=tune.FailureConfig(max_failures=spec.search.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=KEEP_CHECKPOINTS),
        callbacks=callbacks,
        verbose=0,
    )


def write_spec(spec: StudySpec, study_dir: str) -> None:
    import yaml
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(study_dir)
    filesystem.create_dir(path, recursive=True)
    with filesystem.open_output_stream(f"{path}/{SPEC_FILE}") as out:
        out.write(yaml.safe_dump(spec_to_dict(spec), sort_keys=False).encode())


def summarize(spec: StudySpec, results: Any, path: str, wall_s: float) -> StudyResult:
    from lora_hpo.space import derive

    trials = []
    for r in results:
        last = dict(r.metrics or {})
        tune_status = "ERROR" if r.error else "TERMINATED"
        ckpt = r.checkpoint.path if r.checkpoint else None
        params = derive(spec.space, r.config).as_dict()
        status = trial_status(tune_status, last, spec.training.max_steps)
        trial_id = str(last.get("trial_id") or Path(r.path).name)
        trials.append(
            TrialSummary(trial_id, status, params, last, ckpt, float(last.get("step_time_s", 0)))
        )
    scored = [t for t in trials if t.status != "failed" and spec.metric in t.metrics]
    sign = -1 if spec.mode == "max" else 1
    scored.sort(key=lambda t: sign * float(t.metrics[spec.metric]))
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    best = scored[0] if scored else None
    return StudyResult(
        spec, path, scored + [t for t in trials if t not in scored], wall_s, best, counts
    )


def run_study(
    spec: StudySpec,
    *,
    storage_path: str | None = None,
    address: str | None = None,
    callbacks: list[Any] | None = None,
    progress: bool = True,
) -> StudyResult:
    """Run a study end to end and return its trials, best first (the notebook API).

    A ``strategy: staged`` spec runs its stages (see ``staged.py``) and returns stage 2's."""
    from lora_hpo.progress import ProgressView

    if spec.search.strategy == "staged":
        from lora_hpo.staged import run_staged_study

        return run_staged_study(  # type: ignore[no-any-return]
            spec,
            storage_path=storage_path,
            address=address,
            callbacks=callbacks,
            progress=progress,
        )

    storage = storage_root(storage_path)
    connect(address, spec)
    study_dir = f"{storage.rstrip('/')}/{spec.name}"
    write_spec(spec, study_dir)
    cbs = list(callbacks or []) + ([ProgressView(spec)] if progress else [])
    start = time.monotonic()
    results = build_tuner(spec, storage, cbs).fit()
    return summarize(spec, results, study_dir, time.monotonic() - start)


def run_or_resume(
    spec: StudySpec,
    storage: str,
    address: str | None,
    callbacks: list[Any],
    progress: bool = True,
) -> StudyResult:
    """Run a study, or resume it when its directory already holds one (a stage of a staged
    study after a crash)."""
    from ray import tune

    study_dir = f"{storage.rstrip('/')}/{spec.name}"
    if tune.Tuner.can_restore(study_dir):
        return resume_study(study_dir, address=address, callbacks=callbacks, progress=progress)
    return run_study(
        spec, storage_path=storage, address=address, callbacks=callbacks, progress=progress
    )


def locate_study(name_or_path: str, storage_path: str | None = None) -> str:
    """The study directory for a name (under the storage root) or a path/URI."""
    if "://" in name_or_path or Path(name_or_path).is_dir():
        return name_or_path if "://" in name_or_path else str(Path(name_or_path).resolve())
    candidate = Path(storage_root(storage_path)) / name_or_path
    if not candidate.is_dir():
        raise UsageError(
            f"NAME_OR_PATH: no study {name_or_path!r}: {str(candidate)!r} is not a directory"
        )
    return str(candidate)


def storage_of(study_dir: str) -> str:
    """The storage root that holds a study directory (a path or a URI)."""
    return study_dir.rstrip("/").rsplit("/", 1)[0]


def resume_study(
    name_or_path: str,
    *,
    storage_path: str | None = None,
    address: str | None = None,
    callbacks: list[Any] | None = None,
    progress: bool = True,
) -> StudyResult:
    """Continue a killed study: finished trials kept, errored and unfinished ones resumed,
    searcher and scheduler state restored by Tune."""
    from ray import tune

    from lora_hpo.progress import ProgressView

    study_dir = locate_study(name_or_path, storage_path)
    spec = load_spec(_local_copy(study_dir))
    if spec.search.strategy == "staged":
        from lora_hpo.staged import run_staged_study

        return run_staged_study(  # type: ignore[no-any-return]
            spec,
            storage_path=storage_of(study_dir),
            address=address,
            callbacks=callbacks,
            progress=progress,
        )
    connect(address, spec)
    if not tune.Tuner.can_restore(study_dir):
        raise UsageError(f"NAME_OR_PATH: {study_dir!r} holds no Ray Tune experiment to resume")
    cbs = list(callbacks or []) + ([ProgressView(spec)] if progress else [])
    tuner = tune.Tuner.restore(
        study_dir, trainable=trainable_for(spec), resume_unfinished=True, resume_errored=True
    )
    # The run config (callbacks included) comes back from the study's pickle; give this
    # process's callbacks instead, so the view and the tracker write to this driver.
    tuner._local_tuner._run_config.callbacks = cbs  # type: ignore[union-attr]
    start = time.monotonic()
    results = tuner.fit()
    return summarize(spec, results, study_dir, time.monotonic() - start)


def _local_copy(study_dir: str) -> str:
    """The study's spec file as a local path (downloaded when the study lives on a URI)."""
    if "://" not in study_dir:
        return str(Path(study_dir) / SPEC_FILE)
    import tempfile

    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(study_dir)
    local = Path(tempfile.mkdtemp()) / SPEC_FILE
    with filesystem.open_input_stream(f"{path}/{SPEC_FILE}") as src:
        local.write_bytes(src.read())
    return str(local)
