"""``strategy: single``: the whole search in one Ray Tune study."""

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
    return run_one(spec, ctx.storage, ctx.callbacks_for(spec), ctx.execution(spec), restore=restore)
