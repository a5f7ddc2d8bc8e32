"""What every strategy gets from the study entry point: the storage root, how trials execute,
the tracking (or None), the factory of a study's live view, and extra Tune callbacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lora_hpo.search.study_storage import study_dir
from lora_hpo.search.trial_execution import ExecutionFor
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.tracking.study_tracking import StudyTracking

View = Callable[[StudySpec], Any]  # a study's live view: a Tune callback, made per study


@dataclass(frozen=True)
class StudyContext:
    """What every strategy gets: the storage root, how each study's trials execute (chosen
    once: ``trial_execution.execution_for``), the tracking (or None), the view factory and
    extra Tune callbacks."""

    storage: str
    execution: ExecutionFor
    tracking: StudyTracking | None = None
    view: View | None = None
    callbacks: tuple[Any, ...] = ()
    say: Callable[[str], None] = print  # the study's lines before its live view

    def callbacks_for(self, spec: StudySpec, parent_run_id: str | None = None) -> list[Any]:
        """The Tune callbacks of one study: its tracker, the extra ones, its view."""
        where = study_dir(self.storage, spec.name)
        cbs = self.tracking.callbacks(spec, where, parent_run_id) if self.tracking else []
        cbs += list(self.callbacks)
        return cbs + ([self.view(spec)] if self.view else [])
