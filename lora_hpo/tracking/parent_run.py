"""A multi-stage study in MLflow (the staged strategy): one parent run for the whole study,
each stage's study run (and its trial runs below it) nested under it.

The parent is found again by its key (kept in the staged state file), so ``resume`` reuses it.
When the study ends, the parent holds the rank sweep (``stage1_<metric>`` at step r, so
MLflow's chart of it is the plateau curve), the plateau rank, the decision in words and
stage 2's best. If MLflow cannot be reached when the study starts, the stages are still
tracked, as separate studies, and the run goes on.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, TextIO

import yaml

from lora_hpo.spec.spec_loader import spec_to_dict
from lora_hpo.spec.spec_schema import StudySpec
from lora_hpo.spec.trial_outcome import ranked
from lora_hpo.tracking.filter_strings import equals
from lora_hpo.tracking.mlflow_store import ALIAS, SPEC_NAME, Store, resolve_tracking_uri
from lora_hpo.tracking.run_lineage import Redactor, lineage_tags, study_params, study_tags

ROLE = "staged"  # lora_hpo.role of the parent run


class StagedFacts(Protocol):
    """What the parent run records at the end (the staged strategy's state)."""

    scores: dict[int, float]
    plateau_rank: int | None
    decision: str
    stage2_best: float | None
    done: bool


class ParentRun:
    """The parent run of a multi-stage study: found again by its key on resume."""

    def __init__(
        self, spec: StudySpec, tracking_uri: str | None = None, stream: TextIO | None = None
    ) -> None:
        self.spec, self.tracking_uri = spec, tracking_uri
        self.stream = stream or sys.stderr
        self.uri, self.artifact_location = resolve_tracking_uri(
            tracking_uri, spec.tracking.tracking_uri
        )
        self.redact = Redactor()
        self.run_id: str | None = None
        self._store: Store | None = None
        self.champion: dict[str, str] | None = None  # set by ``crown``

    def start(self, key: str) -> None:
        """Find (on resume) or create the parent run, and mark it RUNNING."""
        spec = self.spec
        try:
            store = Store(self.uri, self.artifact_location)
            experiment_id = store.experiment_id(spec.experiment)
            match = {"lora_hpo.role": ROLE, "lora_hpo.study_key": key}
            tags = self.redact.mapping({**study_tags(spec), **lineage_tags(spec)})
            run_id = store.get_or_create_run(experiment_id, match, spec.name, tags)
            params = self.redact.mapping(study_params(spec))
            store.log(run_id, {"params": params, "tags": tags})
            text = yaml.safe_dump(spec_to_dict(spec), sort_keys=False)
            store.log_text(run_id, self.redact(text), SPEC_NAME)
            store.set_status(run_id, "RUNNING")
        except Exception as exc:  # tracking must not stop a study; the stages still track
            self._say(f"could not open the staged parent run ({exc}); stages are tracked alone")
            return
        self._store, self.run_id = store, run_id

    def finish(self, state: StagedFacts) -> None:
        """Log the rank sweep, the plateau rank, the decision and stage 2's best; close."""
        if self._store is None or self.run_id is None:
            return
        metric = self.spec.metric  # no timestamps: logged again after a resume, MLflow dedups
        points = [
            {"metrics": {f"stage1_{metric}": score}, "step": r}
            for r, score in sorted(state.scores.items())
        ]
        tags = {"lora_hpo.decision": state.decision}
        if state.plateau_rank is not None:
            tags["lora_hpo.plateau_rank"] = str(state.plateau_rank)
        final: dict[str, Any] = {"tags": tags}
        if state.stage2_best is not None:
            final["metrics"] = {f"stage2_best_{metric}": state.stage2_best}
        try:
            for record in [*points, final]:
                self._store.log(self.run_id, record)
            if state.done:
                self.crown()
            self._store.set_status(self.run_id, "FINISHED" if state.done else "KILLED")
        except Exception as exc:
            self._say(f"could not record the staged decision on run {self.run_id}: {exc}")

    def crown(self) -> None:
        """Point the ``champion`` alias at the best trial of the whole staged study. Each
        stage registers its own best as it ends, so the alias ends on stage 2's best; a rank
        sweep trial can be better. Candidates: the registered versions whose trial run sits
        under one of this parent's stage runs; ranked by the shared rule."""
        assert self._store is not None and self.run_id is not None
        client, spec = self._store.client, self.spec
        name = spec.tracking.registered_model or spec.experiment
        candidates = []
        for version in client.search_model_versions(equals("name", name)):
            run = client.get_run(str(version.run_id))
            stage = run.data.tags.get("mlflow.parentRunId")
            if stage and client.get_run(stage).data.tags.get("mlflow.parentRunId") == self.run_id:
                candidates.append((version, run))
        best = ranked(
            candidates,
            lambda c: (
                c[1].data.tags.get("lora_hpo.trial_id", ""),
                c[1].data.tags.get("status", ""),
                c[1].data.metrics.get(spec.metric),
            ),
            spec.mode,
        )
        if best:
            version, run = best[0]
            client.set_registered_model_alias(name, ALIAS, version.version)
            self.champion = {
                "name": name,
                "version": str(version.version),
                "trial_id": run.data.tags.get("lora_hpo.trial_id", ""),
                "run_id": run.info.run_id,
            }
            self._store.log(self.run_id, {"tags": {"lora_hpo.champion_run_id": run.info.run_id}})

    def summary(self) -> str:
        where = self.redact(self.uri)
        if self.run_id is None:
            return f"MLflow: experiment {self.spec.experiment!r} at {where}"
        line = f"MLflow: experiment {self.spec.experiment!r} at {where}, parent run {self.run_id}"
        if self.champion:
            c = self.champion
            line += (
                f"\nchampion of all stages: models:/{c['name']}@champion (version {c['version']},"
                f" trial {c['trial_id']}, run {c['run_id']})"
            )
        return line

    def _say(self, text: str) -> None:
        print(f"lora-hpo tracking: {text}", file=self.stream, flush=True)
