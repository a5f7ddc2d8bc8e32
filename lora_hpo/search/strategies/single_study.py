"""``strategy: single``: the whole search in one Ray Tune study, started from earlier studies
in the MLflow store when the spec asks (``search.warm_start``)."""

from __future__ import annotations

from lora_hpo.search.study_context import StudyContext
from lora_hpo.search.study_result import StudyResult
from lora_hpo.search.study_storage import study_dir
from lora_hpo.search.tune_study import can_restore, run_one
from lora_hpo.spec.spec_errors import UsageError
from lora_hpo.spec.spec_schema import StudySpec


def run(spec: StudySpec, ctx: StudyContext, restore: bool) -> StudyResult:
    """Run the study, or (``restore``) continue it from its directory."""
    where = study_dir(ctx.storage, spec.name)
    if restore and not can_restore(where):
        raise UsageError(f"NAME_OR_PATH: {where!r} holds no Ray Tune experiment to resume")
    warm = None
    if spec.search.warm_start and not restore and ctx.tracking is not None:
        warm = ctx.tracking.warm_start(spec)
        for line in warm.lines(spec.metric):
            ctx.say(line)
    callbacks = ctx.callbacks_for(spec)
    return run_one(spec, ctx.storage, callbacks, ctx.execution(spec), restore=restore, warm=warm)
