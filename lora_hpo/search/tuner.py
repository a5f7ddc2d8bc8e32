"""One Ray Tune study: OptunaSearch (+ ConcurrencyLimiter) and ASHA over the trial trainable,
with resources, failure handling, checkpoint retention and storage; run fresh or restored.

This is the single-study runner that every strategy uses; it never imports a strategy.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from lora_hpo.search.failures import FailureWatch, summarize_failures
from lora_hpo.search.result import StudyResult, summarize
from lora_hpo.search.storage import prune_checkpoints, study_dir, write_spec
from lora_hpo.spec.errors import UsageError
from lora_hpo.spec.schema import StudySpec
from lora_hpo.spec.space import compile_space

KEEP_CHECKPOINTS = 2  # per trial, once the study ends (all are kept while it runs)
SYNC_PERIOD_S = 2  # how often the driver's snapshot and result.json files reach storage


def searcher(spec: StudySpec) -> Any:
    """OptunaSearch under a ConcurrencyLimiter; a space with nothing to search (one config, or
    a stage with every value fixed) runs ``num_samples`` repeats through Tune's generator,
    since OptunaSearch refuses an empty space."""
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from lora_hpo.spec.registry import make_sampler

    space, concurrency = compile_space(spec.space), spec.search.max_concurrent
    if not space:
        return BasicVariantGenerator(max_concurrent=concurrency)
    optuna = OptunaSearch(
        space=space,
        sampler=make_sampler(spec.search.sampler, spec.search.seed),
        metric=spec.metric,
        mode=spec.mode,
    )
    return ConcurrencyLimiter(optuna, max_concurrent=concurrency)


def scheduler(spec: StudySpec) -> Any:
    """ASHA in training steps (``time_attr="step"``), or None."""
    from ray.tune.schedulers import ASHAScheduler

    sch = spec.search.scheduler
    if sch.type != "asha":
        return None
    return ASHAScheduler(
        time_attr="step",
        max_t=spec.training.max_steps,
        grace_period=sch.grace_period,
        reduction_factor=sch.reduction_factor,
    )


def trainable_for(
    spec: StudySpec, packs: list[str] | None = None, threads_file: str | None = None
) -> Any:
    """The trial trainable with one trial's resources; with ``packs``, the thin client of
    those packs (which hold the resources). With ``threads_file``, trials follow the thread
    count the driver lends them there (``lora_hpo.search.threads``)."""
    from ray import tune

    if packs:
        from lora_hpo.search.packs import NAMESPACE, client_resources
        from lora_hpo.training.pack.client import packed_trainable

        client = tune.with_parameters(packed_trainable, spec=spec, packs=packs, namespace=NAMESPACE)
        return tune.with_resources(client, client_resources(spec))
    from lora_hpo.training.trainable import tune_trainable

    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    trainable = tune.with_parameters(tune_trainable, spec=spec, threads_file=threads_file)
    return tune.with_resources(trainable, resources)


def run_config(spec: StudySpec, storage: str, callbacks: list[Any]) -> Any:
    from ray import tune

    return tune.RunConfig(
        name=spec.name,
        storage_path=storage,
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


def snapshot_often() -> None:
    """Tune snapshots the experiment every SYNC_PERIOD_S instead of at least every 10 s
    ("auto"), unless the user set TUNE_GLOBAL_CHECKPOINT_S."""
    import os

    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", str(SYNC_PERIOD_S))


def build_tuner(
    spec: StudySpec,
    storage: str,
    callbacks: list[Any],
    packs: list[str] | None = None,
    threads_file: str | None = None,
) -> Any:
    from ray import tune

    return tune.Tuner(
        trainable_for(spec, packs, threads_file),
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=searcher(spec),
            scheduler=scheduler(spec),
            num_samples=spec.search.num_samples,
            reuse_actors=True,
        ),
        run_config=run_config(spec, storage, callbacks),
    )


def can_restore(directory: str) -> bool:
    from ray import tune

    return bool(tune.Tuner.can_restore(directory))


def run_one(spec: StudySpec, storage: str, callbacks: list[Any], *, restore: bool) -> StudyResult:
    """Run the study ``spec`` under ``storage`` (fresh), or continue it from its directory
    (``restore``): finished trials kept, errored and unfinished ones resumed, searcher and
    scheduler state restored by Tune. A packed study (``search.pack`` > 1) starts its packs
    first and stops them after."""
    if spec.search.pack > 1:
        from lora_hpo.search.packs import started_packs

        with started_packs(spec) as packs:
            return _run(spec, storage, callbacks, restore=restore, packs=packs)
    return _run(spec, storage, callbacks, restore=restore, packs=None)


def _run(
    spec: StudySpec,
    storage: str,
    callbacks: list[Any],
    *,
    restore: bool,
    packs: list[str] | None,
) -> StudyResult:
    from ray import tune

    from lora_hpo.search.ray_internals import plain_trial_actors, replace_callbacks
    from lora_hpo.search.runtime import started_local
    from lora_hpo.search.threads import ThreadLending

    where = study_dir(storage, spec.name)
    snapshot_often()
    start, watch = time.monotonic(), FailureWatch(storage=storage)
    actors = plain_trial_actors() if started_local() else contextlib.nullcontext()
    with ThreadLending(spec) as lending, actors:
        callbacks = [*callbacks, *lending.callbacks, watch]
        trainable = trainable_for(spec, packs, lending.file)
        if restore:
            tuner = tune.Tuner.restore(
                where, trainable=trainable, resume_unfinished=True, resume_errored=True
            )
            replace_callbacks(tuner, callbacks)  # this driver's view and tracker, not the pickled
        else:
            write_spec(spec, where)
            tuner = build_tuner(spec, storage, callbacks, packs, lending.file)
        return _fit(spec, tuner, where, callbacks, watch, start)


def _fit(
    spec: StudySpec, tuner: Any, where: str, callbacks: list[Any], watch: Any, start: float
) -> StudyResult:
    try:
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
    result = summarize(spec, grid, where, time.monotonic() - start)
    prune_checkpoints(where, KEEP_CHECKPOINTS)
    return result
