"""One Ray Tune study: OptunaSearch (+ ConcurrencyLimiter) and ASHA over the trainable that
the study's execution gives (``trial_execution``), with failure handling, checkpoint retention
and storage; run fresh or restored. Only Ray Tune's objects are assembled here.

This is the single-study runner that every strategy uses; it never imports a strategy.
"""

from __future__ import annotations

import time
from typing import Any

from lora_hpo.search.driver_signals import Interrupted, StopOnSignal
from lora_hpo.search.optuna_export import keep_optuna_study
from lora_hpo.search.ray_internals import replace_callbacks
from lora_hpo.search.study_result import StudyResult, summarize
from lora_hpo.search.study_storage import prune_checkpoints, study_dir, write_spec
from lora_hpo.search.trial_execution import TrialExecution
from lora_hpo.search.trial_failures import FailureWatch, summarize_failures
from lora_hpo.spec.search_space import compile_space
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.tracking.warm_start import WarmStart

KEEP_CHECKPOINTS = 2  # per trial, once the study ends (all are kept while it runs)
SYNC_PERIOD_S = 2  # how often the driver's snapshot and result.json files reach storage


def searcher(spec: StudySpec, warm: WarmStart | None = None) -> Any:
    """OptunaSearch under a ConcurrencyLimiter; a space with nothing to search (one config, or
    a stage with every value fixed) runs ``num_samples`` repeats through Tune's generator,
    since OptunaSearch refuses an empty space. A warm start (``tracking.warm_start``) gives
    the searcher its earlier configs with their results, or moves the ``lora`` sampler's prior
    (another sampler runs those configs first)."""
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from lora_hpo.search.optuna_samplers import study_sampler

    space, concurrency = compile_space(spec.space), spec.search.max_concurrent
    if not space:
        return BasicVariantGenerator(max_concurrent=concurrency)
    points, rewards, step = [], None, None
    if warm is not None and warm.mode == "results":
        points, rewards = [t.point for t in warm.trials], [t.value for t in warm.trials]
    elif warm is not None and warm.mode == "prior":
        step = warm.step_size if spec.search.sampler == "lora" else None
        points = [] if step is not None else [t.point for t in warm.trials if t.point]
    optuna = OptunaSearch(
        space=space,
        sampler=study_sampler(spec, step),
        metric=spec.metric,
        mode=spec.mode,
        points_to_evaluate=points or None,
        evaluated_rewards=rewards,
    )
    return ConcurrencyLimiter(optuna, max_concurrent=concurrency)


def scheduler(spec: StudySpec) -> Any:
    """ASHA in training steps (``time_attr="step"``), the learning-curve stopper, or None."""
    from ray.tune.schedulers import ASHAScheduler

    from lora_hpo.search.curve_stopping import CurveStopper

    sch = spec.search.scheduler
    if sch.type == "curve":
        return CurveStopper("step", max_t=spec.training.max_steps, min_t=sch.grace_period)
    if sch.type != "asha":
        return None
    return ASHAScheduler(
        time_attr="step",
        max_t=spec.training.max_steps,
        grace_period=sch.grace_period,
        reduction_factor=sch.reduction_factor,
    )


def run_config(spec: StudySpec, storage: str, callbacks: list[Any]) -> Any:
    from ray import tune

    path, filesystem = tune_storage(storage)
    return tune.RunConfig(
        name=spec.name,
        storage_path=path,
        storage_filesystem=filesystem,
        failure_config=tune.FailureConfig(max_failures=spec.search.max_failures),
        # num_to_keep=None: Tune restores a trial from the checkpoint its last experiment
        # snapshot names, and fails if a newer report has rotated that one away (Tune's own
        # forced sync every num_to_keep checkpoints is asynchronous, so a killed driver can
        # leave such a snapshot); the study prunes to KEEP_CHECKPOINTS when it ends
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
        # the snapshot and result.json files reach storage every SYNC_PERIOD_S (at most; a sync
        # still running is not started again), about as often as Tune's forced sync with a
        # num_to_keep would: a killed driver loses little, and readers of the study directory
        # see fresh results
        sync_config=tune.SyncConfig(sync_period=SYNC_PERIOD_S),
        callbacks=callbacks,
        verbose=0,
    )


def tune_storage(root: str) -> tuple[str, Any]:
    """(path, filesystem) as Tune takes a local path or URI: an object store through the
    filesystem that rides out its outages (``files.storage_filesystem``)."""
    from lora_hpo.files.storage_filesystem import storage_filesystem

    if "://" not in root:
        return root, None
    filesystem, path = storage_filesystem(root)
    return path, filesystem


def snapshot_often() -> None:
    """Tune snapshots the experiment every SYNC_PERIOD_S instead of at least every 10 s
    ("auto"), unless the user set TUNE_GLOBAL_CHECKPOINT_S."""
    import os

    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", str(SYNC_PERIOD_S))


def build_tuner(
    spec: StudySpec,
    storage: str,
    trainable: Any,
    callbacks: list[Any],
    warm: WarmStart | None = None,
) -> Any:
    from ray import tune

    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=searcher(spec, warm),
            scheduler=scheduler(spec),
            num_samples=spec.search.num_samples,
            reuse_actors=True,
        ),
        run_config=run_config(spec, storage, callbacks),
    )


def can_restore(directory: str) -> bool:
    from ray import tune

    path, filesystem = tune_storage(directory)
    return bool(tune.Tuner.can_restore(path, storage_filesystem=filesystem))


def run_one(
    spec: StudySpec,
    storage: str,
    callbacks: list[Any],
    execution: TrialExecution,
    *,
    restore: bool,
    warm: WarmStart | None = None,
) -> StudyResult:
    """Run the study ``spec`` under ``storage`` (fresh), or continue it from its directory
    (``restore``): finished trials kept, errored and unfinished ones resumed, searcher and
    scheduler state restored by Tune. ``execution`` says how its trials run
    (``trial_execution``); it is open for the study's run. ``warm``: what a fresh study
    starts from (``tracking.warm_start``); a restored one has it in its searcher already."""
    from ray import tune

    where = study_dir(storage, spec.name)
    snapshot_often()
    start, watch = time.monotonic(), FailureWatch(storage=storage)
    with execution:
        callbacks = [*callbacks, *execution.callbacks(), watch]
        stop = StopOnSignal(callbacks)  # first: it notes a stop signal for the others
        callbacks = [stop, *callbacks]
        if restore:
            path, filesystem = tune_storage(where)
            tuner = tune.Tuner.restore(
                path,
                trainable=execution.trainable(),
                resume_unfinished=True,
                resume_errored=True,
                storage_filesystem=filesystem,
            )
            replace_callbacks(tuner, callbacks)  # this driver's view and tracker, not the pickled
        else:
            write_spec(spec, where)
            tuner = build_tuner(spec, storage, execution.trainable(), callbacks, warm)
        return _fit(spec, tuner, where, callbacks, watch, start)


def _fit(
    spec: StudySpec, tuner: Any, where: str, callbacks: list[Any], watch: Any, start: float
) -> StudyResult:
    """``fit``, then the study's result; Interrupted when SIGINT or SIGTERM stopped it (Tune
    saved its state: ``resume`` continues it)."""
    stop = callbacks[0]
    try:
        with stop.fitting():
            grid = tuner.fit()
    except Exception:
        if not watch.reason:
            raise
        for callback in callbacks:  # no experiment end came: let trackers close their runs
            if hasattr(callback, "abort"):
                callback.abort()
        if watch.bad_input:
            raise UsageError(watch.reason) from None
        failures = summarize_failures(watch.errors)  # the watch ended it: resumable as is
        return StudyResult(
            spec, where, [], time.monotonic() - start, failures=failures, stopped=watch.reason
        )
    if stop.signum is not None:
        raise Interrupted(stop.signum, where)
    result = summarize(spec, grid, where, time.monotonic() - start)
    prune_checkpoints(where, KEEP_CHECKPOINTS)
    result.optuna_study = keep_optuna_study(result)
    return result
