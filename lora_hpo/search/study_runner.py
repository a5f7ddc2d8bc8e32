"""THE study entry point: ``run_study`` and ``resume_study`` pick the strategy named by
``search.strategy`` and run it. ``lora-hpo run``, ``lora-hpo resume``, the job on a cluster
and the Python API all come through here; nothing else knows "single or staged".

A strategy is a function ``(spec, context, restore) -> StudyResult`` that runs one or more
studies through the single-study runner (``tune_study.run_one``). A new strategy is one module in
``strategies/`` and one line in ``STRATEGIES``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from lora_hpo.search.cluster_capacity import DEFAULT_WAIT_S, bundle, release
from lora_hpo.search.driver_signals import Interrupted, sigterm_stops_gracefully
from lora_hpo.search.ray_runtime import RayRuntime, check_gpu_memory, ensure_capacity, start
from lora_hpo.search.shared_storage import check_shared
from lora_hpo.search.strategies import single_study, staged_study
from lora_hpo.search.study_context import StudyContext, View
from lora_hpo.search.study_lock import RETRY_WAIT_S, hold_study
from lora_hpo.search.study_result import StudyResult, TrialSummary
from lora_hpo.search.study_storage import (
    holds_study,
    locate_study,
    spec_file,
    storage_of,
    storage_root,
    study_dir,
)
from lora_hpo.search.trial_execution import execution_for
from lora_hpo.search.tune_study import can_restore
from lora_hpo.spec.spec_loader import load_spec
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.tracking.study_plots import Trial
from lora_hpo.tracking.study_tracking import StudyTracking
from lora_hpo.tracking.tracker_state import check_state

Say = Callable[[str], None]


class Strategy(Protocol):
    def __call__(self, spec: StudySpec, ctx: StudyContext, restore: bool) -> StudyResult: ...


STRATEGIES: dict[str, Strategy] = {"single": single_study.run, "staged": staged_study.run}


def _preflight(spec: StudySpec, say: Say, on_cluster: bool) -> int:
    """The preflight on this machine (the driver): bad input fails here, before Ray starts.
    Returns the per-trial memory estimate in bytes."""
    from lora_hpo.training.preflight import preflight

    report = preflight(spec, on_cluster=on_cluster)
    say(report.line())
    return report.memory_bytes


@dataclass(frozen=True)
class Launch:
    """How a study starts: on which Ray, with which checks, waiting how long for capacity."""

    address: str | None = None
    check: bool = True  # run the preflight (model, tokenizer, data, labels, target modules)
    say: Say = print
    wait_for_resources: float = DEFAULT_WAIT_S
    on_cluster: bool = False  # this driver is a submitted job's: the files are the cluster's


@contextmanager
def _ray_for(spec: StudySpec, launch: Launch, storage: tuple[str, str | None]) -> Iterator[Any]:
    """Ray's start and the preflight at once (each takes seconds); then, with the preflight
    passed, the capacity the study needs, that every node that can run a trial reads the
    storage root (``storage``: the root, and the ``--storage-path`` given), and the GPU share
    check; then, on a local Ray whose workers preload the trial's modules, the end of that
    preload (a trial actor asked for earlier would boot a process of its own). Yields the
    runtime; on the way out, withdraws the study's resource request and stops a Ray it
    started."""
    found: dict[str, Any] = {"need": 0}
    check_state(study_dir(storage[0], spec.name))  # a corrupt tracker state: exit 2, now

    def run_preflight() -> None:
        try:
            found["need"] = _preflight(spec, launch.say, launch.on_cluster)
        except BaseException as exc:  # re-raised below, on the caller's thread
            found["error"] = exc

    worker = threading.Thread(target=run_preflight, name="lora-hpo-preflight")
    if launch.check:
        worker.start()
    runtime = start(launch.address, spec, in_job=launch.on_cluster)
    try:
        with sigterm_stops_gracefully():  # replaces ray.init's, which only exits
            if launch.check:
                worker.join()
            if "error" in found:
                raise found["error"]
            ensure_capacity(spec, runtime.joined, launch.wait_for_resources)
            check_shared(storage[0], bundle(spec), storage[1])
            check_gpu_memory(spec, found["need"])
            runtime.wait_preloaded()  # a local Ray's first workers import the trial's modules
            yield runtime
    finally:
        release()
        runtime.close()


@dataclass
class _Stopped:
    """What a parent run records when a signal stopped its study (``resume`` continues it)."""

    scores: dict[int, float] = field(default_factory=dict)
    plateau_rank: int | None = None
    decision: str = "interrupted: `lora-hpo resume` continues the study"
    stage2_best: float | None = None
    done: bool = False


def _strategy(
    spec: StudySpec,
    storage: str,
    runtime: RayRuntime,
    tracking: StudyTracking | bool,
    view: View | None,
    callbacks: Any,
    restore: bool,
    say: Say = print,
) -> StudyResult:
    """The strategy ``search.strategy`` names, run with how trials execute on ``runtime``."""
    track = StudyTracking() if tracking is True else (tracking or None)
    extra = tuple(callbacks or ())
    ctx = StudyContext(storage, execution_for(runtime), track, view, extra, say)
    try:
        result = STRATEGIES[spec.search.strategy](spec, ctx, restore)
    except Interrupted as exc:  # each study's runs ended KILLED; a parent run (staged) does too
        if track is not None:
            track.close_parent(_Stopped())
        exc.where = study_dir(storage, spec.name)  # what `resume` takes: the study, not a stage
        raise
    if track is not None:  # the study's pictures, on its own MLflow run
        track.log_report(spec, [plot_trial(spec, t) for t in [*result.trials, *result.earlier]])
    return result


def plot_trial(spec: StudySpec, trial: TrialSummary) -> Trial:
    """A trial as the study's pictures draw it."""
    value = trial.metrics.get(f"{spec.metric}_raw", trial.metrics.get(spec.metric, math.nan))
    return Trial(trial.trial_id, trial.status, trial.params, float(value), trial.curve)


def run_study(
    spec: StudySpec,
    *,
    storage_path: str | None = None,
    tracking: StudyTracking | bool = True,
    view: View | None = None,
    callbacks: list[Any] | None = None,
    resume_if_exists: bool = False,
    launch: Launch = Launch(),
) -> StudyResult:
    """Run a study end to end; its trials come back best first.

    ``tracking``: True records it in MLflow at the default store (the spec's
    ``tracking.tracking_uri``, else MLFLOW_TRACKING_URI, else ./mlflow.db); a StudyTracking
    picks the store; False records nothing. ``view`` makes a live view per study;
    ``callbacks`` are more Ray Tune callbacks. ``launch`` says on which Ray and how the study
    starts (on a cluster it joins, it waits for a node to fit a trial).
    ``resume_if_exists``: when the storage root already holds this study (the same spec), it
    continues there, as ``resume`` would (a retried job picks up where its killed driver
    stopped; it waits up to RETRY_WAIT_S for the killed driver's hold on the study to free); a
    different study under the same name is refused. One driver runs a study at a time: another
    one running it is a UsageError (``study_lock``)."""
    storage = storage_root(storage_path)
    where = study_dir(storage, spec.name)
    wait = RETRY_WAIT_S if resume_if_exists else 0.0
    with hold_study(where, spec.name, wait_s=wait, say=launch.say):
        again = resume_if_exists and holds_study(spec, storage)
        with _ray_for(spec, launch, (storage, storage_path)) as runtime:
            restore = again and can_restore(where)
            if restore:
                launch.say(f"continuing study {spec.name!r} from {where}")
            return _strategy(spec, storage, runtime, tracking, view, callbacks, restore, launch.say)


def resume_study(
    name_or_path: str,
    *,
    storage_path: str | None = None,
    tracking: StudyTracking | bool = True,
    view: View | None = None,
    callbacks: list[Any] | None = None,
    launch: Launch = Launch(),
) -> StudyResult:
    """Continue a killed study from its directory (a name under the storage root, a path or
    a URI): finished trials are kept, the rest resumed."""
    directory = locate_study(name_or_path, storage_path)
    spec = load_spec(spec_file(directory))
    storage = storage_of(directory)
    named = storage_path or (None if directory == study_dir(storage, name_or_path) else storage)
    with (
        hold_study(directory, spec.name, say=launch.say),
        _ray_for(spec, launch, (storage, named)) as runtime,
    ):
        return _strategy(spec, storage, runtime, tracking, view, callbacks, True, launch.say)
